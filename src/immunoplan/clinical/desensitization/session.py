"""The rules of a rapid drug desensitization session: which step may be recorded, when, and what a
breakthrough reaction does to the protocol (pure: the service layer builds a `SessionState` from the
registry, asks these functions, and writes only what they allow).

Rules (each `Rule` has an id and a source; the service refuses a write that breaks one, nothing is saved):

- ``rdd-session-unverified-needs-override``: a plan that uses UNVERIFIED reference data (``kind``
  ``needs-override``, `plan.generate`) is never given without an explicit, recorded clinician override
  (docs/protocols.md status table; docs/conventions.md; ``rdd_protocols`` schemes' statuses).
- ``rdd-session-engine-plan``: a planned session's steps are those of the plan the engine computed and stored
  with it (dose, bag, rate, minutes; a caller's different dose is refused); a session recorded without a plan
  takes the caller's doses under the rules that can apply (finished, once, in order, stop after a reaction).
- ``rdd-session-steps-in-order``: the steps of the protocol are given one after another, each at the next rate
  of the escalation (``rdd_protocols`` 12-step scheme: UpToDate ceftazidime example, Castells 2008): the next
  step is the first one of the active protocol not recorded yet.
- ``rdd-session-step-time``: each step runs for its planned minutes (``rdd_protocols`` ``step_minutes``: "Each
  step is administered over 15 minutes"): a step started before the previous one's planned minutes have passed
  needs a reason, recorded with the step.
- ``rdd-session-breakthrough-stops-protocol``: after a breakthrough reaction the infusion is interrupted and
  treated; it resumes only as re-planned (one or two steps back, Horizon Health Network guideline; or a
  clinician's recorded choice), never by continuing the original protocol; a severe reaction stops it
  (``rdd_breakthrough`` options ``stop``, ``treat-mild-skin``, ``resume-steps-back``).
- ``rdd-session-step-once``: a step is recorded once (the registry's live natural key session + re-plan +
  step; issue 10: one clinical act, one row); a second record names the first.
- ``rdd-session-finished``: a finished session (completed or stopped) takes no more steps or reactions.
- ``rdd-session-complete-needs-last-step``: a session is completed only when the last step of its active
  protocol was given (``rdd_protocols``: the final bag is corrected so that the last step completes the
  target dose); otherwise it is stopped.

A re-planned continuation keeps the protocol's step numbers: "resume at step 10" after a reaction at step 11
gives steps 10, 11, 12 of continuation 1 (``replan_no`` 1), recorded one by one like the others.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from immunoplan import clock, reference
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.reference import Basis

from . import breakthrough
from .plan import RddPlan

STEP_STATUSES = ("given", "paused", "skipped", "stopped")
"""How a step ended: ``given`` (as planned), ``skipped`` (not given; the next step follows), ``paused`` or
``stopped`` (the infusion was interrupted at this step: the protocol does not go on without a re-plan)."""
INTERRUPTED = ("paused", "stopped")
OUTCOMES = ("completed", "completed-with-reactions", "stopped")
"""How a session ends: the last step given (without / with breakthrough reactions), or stopped before it."""
SESSION_STATUS = {"completed": "completed", "completed-with-reactions": "completed", "stopped": "stopped"}


@dataclass(frozen=True)
class Rule:
    """A session rule: ``id``, what it says, the reference file it rests on, its source and status (the
    file's status unless the rule names its own)."""

    id: str
    text: str
    data: str
    source: str
    status: str | None = None

    def basis(self) -> Basis:
        return reference.basis(self.data, self.id, source=self.source, status=self.status)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "basis": self.basis().to_dict()}


RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule(
            "rdd-session-unverified-needs-override",
            "A plan that uses UNVERIFIED data is not given without a recorded override.",
            "rdd_protocols",
            "docs/protocols.md status table (UNVERIFIED never doses without an explicit, recorded override); "
            "rdd_protocols schemes' statuses",
        ),
        Rule(
            "rdd-session-engine-plan",
            "A planned session's steps are the stored plan's (dose, bag, rate, minutes), never a caller's.",
            "rdd_protocols",
            "docs/conventions.md: UNVERIFIED data never doses without an override; the plan shown is the "
            "engine's (docs/protocols.md section 1)",
        ),
        Rule(
            "rdd-session-steps-in-order",
            "Steps are given one after another in the order of the protocol.",
            "rdd_protocols",
            "UpToDate 'Example of 12-step desensitization protocol for 2000 mg of ceftazidime' (steps 1-12 "
            "at escalating rates); Castells MC et al. JACI 2008;122:574-80",
        ),
        Rule(
            "rdd-session-step-time",
            "Each step runs for its planned minutes; a step started early needs a recorded reason.",
            "rdd_protocols",
            "UpToDate ceftazidime example: 'Each step is administered over 15 minutes' (rdd_protocols "
            "step_minutes)",
        ),
        Rule(
            "rdd-session-breakthrough-stops-protocol",
            "After a breakthrough reaction the original protocol stops; only the re-planned continuation "
            "is given (none after a severe reaction).",
            "rdd_breakthrough",
            "Horizon Health Network guideline, reactions during desensitization (stop / interrupt and "
            "treat / restart one or two steps back); rdd_breakthrough options stop, treat-mild-skin, "
            "resume-steps-back",
        ),
        Rule(
            "rdd-session-step-once",
            "A step is recorded once; a second record of it names the first.",
            "rdd_protocols",
            "issue 10 (one clinical act, one row; the registry's live natural key session + re-plan + step)",
        ),
        Rule(
            "rdd-session-finished",
            "A finished session takes no more steps or reactions.",
            "rdd_protocols",
            "docs/protocols.md section 1 (a session ends completed or stopped)",
        ),
        Rule(
            "rdd-session-complete-needs-last-step",
            "A session is completed only when the last step of its active protocol was given.",
            "rdd_protocols",
            "rdd_protocols final_bag_correction: the last step completes the target dose "
            "(docs/protocols.md section 1.2, rule 4)",
        ),
    )
}


def _refuse(rule: str, field_name: str, message: str, accepted: str | None = None) -> InvalidInput:
    return InvalidInput(field_name, f"{message} [rule {rule}]", accepted)


# ------------------------------------------------------------------------------------------ the state


@dataclass(frozen=True)
class PlannedStep:
    """One step to give: of the original protocol (``replan_no`` 0) or of a re-planned continuation."""

    replan_no: int
    step_no: int
    bag: int
    rate_ml_h: Decimal
    minutes: Decimal
    volume_ml: Decimal
    dose_mg: Decimal
    cumulative_mg: Decimal
    start_clock: str | None = None
    end_clock: str | None = None


@dataclass(frozen=True)
class RecordedStep:
    """A live (not voided) step row."""

    id: int
    replan_no: int
    step_no: int
    status: str
    dose_mg: Decimal
    started_at: datetime | None = None
    cumulative_dose_mg: Decimal | None = None


@dataclass(frozen=True)
class Continuation:
    """What a breakthrough reaction left to give: the re-planned steps (empty when the protocol stopped)."""

    replan_no: int
    reaction_id: int
    from_replan_no: int
    reaction_step: int
    severity: str
    steps: tuple[PlannedStep, ...]
    dose_before_mg: Decimal
    live: bool = True  # False once its reaction was voided


@dataclass(frozen=True)
class SessionState:
    """Everything the rules read about one session (built by the service from the registry)."""

    session_id: int
    status: str  # in-progress, completed, stopped
    engine_plan: bool  # a plan computed by the engine is stored with the session
    dosing_allowed: bool
    plan_steps: tuple[PlannedStep, ...]
    continuations: tuple[Continuation, ...] = ()
    steps: tuple[RecordedStep, ...] = ()  # live rows only
    reaction_step_ids: frozenset[int] = field(default_factory=frozenset)  # steps with a live reaction
    #: steps with a live reaction that no re-plan answers (recorded outside the breakthrough use case)
    uncovered_reaction_step_ids: frozenset[int] = field(default_factory=frozenset)

    @property
    def finished(self) -> bool:
        return self.status != "in-progress"

    @property
    def live_continuations(self) -> tuple[Continuation, ...]:
        return tuple(c for c in self.continuations if c.live)

    @property
    def active_replan_no(self) -> int:
        live = self.live_continuations
        return live[-1].replan_no if live else 0

    def protocol(self, replan_no: int) -> tuple[PlannedStep, ...]:
        if replan_no == 0:
            return self.plan_steps
        return next((c.steps for c in self.continuations if c.replan_no == replan_no), ())

    @property
    def active_steps(self) -> tuple[PlannedStep, ...]:
        return self.protocol(self.active_replan_no)

    def recorded(self, replan_no: int) -> dict[int, RecordedStep]:
        return {r.step_no: r for r in self.steps if r.replan_no == replan_no}

    def next_step(self) -> PlannedStep | None:
        """The first step of the active protocol not recorded yet (None when all are, or it stopped)."""
        if self.interrupted() is not None:
            return None
        done = self.recorded(self.active_replan_no)
        return next((p for p in self.active_steps if p.step_no not in done), None)

    def interrupted(self) -> RecordedStep | None:
        """The step of the active protocol recorded paused/stopped (the infusion was interrupted there)."""
        return next(
            (r for r in self.recorded(self.active_replan_no).values() if r.status in INTERRUPTED), None
        )

    def last_recorded(self) -> RecordedStep | None:
        rows = sorted(self.recorded(self.active_replan_no).values(), key=lambda r: r.step_no)
        return rows[-1] if rows else None

    def dose_given_mg(self) -> Decimal:
        """Cumulative dose given: that of the last step given (continuations count the reaction step's
        given part, `breakthrough.resume`)."""
        given = [r for r in self.steps if r.status == "given" and r.cumulative_dose_mg is not None]
        if not given:
            return Decimal(0)
        last = max(given, key=lambda r: (r.replan_no, r.step_no))
        return last.cumulative_dose_mg or Decimal(0)


def planned_steps(
    plan: dict[str, Any] | RddPlan, replan_no: int = 0, first_step: int = 1
) -> list[PlannedStep]:
    """The steps of a plan (a `RddPlan` or its JSON form), numbered from ``first_step``."""
    rows = plan.steps if isinstance(plan, RddPlan) else plan.get("steps") or []
    out = []
    for i, row in enumerate(rows):
        st: dict[str, Any] = asdict(row) if is_dataclass(row) and not isinstance(row, type) else dict(row)
        out.append(
            PlannedStep(
                replan_no,
                first_step + i,
                int(st["bag"]),
                Decimal(str(st["rate_ml_h"])),
                Decimal(str(st["minutes"])),
                Decimal(str(st["volume_ml"])),
                Decimal(str(st["dose_mg"])),
                Decimal(str(st["cumulative_mg"])),
                st.get("start_clock"),
                st.get("end_clock"),
            )
        )
    return out


# ---------------------------------------------------------------------------------------------- the rules


def check_open(state: SessionState) -> None:
    """``rdd-session-finished``."""
    if state.finished:
        raise Conflict(
            "session_id",
            f"the session was finished ({state.status}): it takes no more steps or reactions "
            "[rule rdd-session-finished]",
            f"desensitization session {state.session_id}",
        )


def check_dosing_allowed(state: SessionState) -> None:
    """``rdd-session-engine-plan`` and ``rdd-session-unverified-needs-override``."""
    if not state.engine_plan:
        raise _refuse(
            "rdd-session-engine-plan",
            "session_id",
            "this session has no plan computed by the engine: its steps cannot be given here (plan a "
            "session, or load history as an import)",
        )
    if not state.dosing_allowed:
        raise _refuse(
            "rdd-session-unverified-needs-override",
            "step_no",
            "this plan uses UNVERIFIED data and has no recorded override: it cannot be given (re-plan "
            "with an override reason)",
        )


def step_to_record(
    state: SessionState, step_no: int, status: str = "given", replan_no: int | None = None
) -> PlannedStep:
    """The planned step that may be recorded now as ``step_no`` (of the active protocol), or the refusal.

    ``replan_no`` is the protocol the caller saw (a form's hidden field): a stale page still showing the
    original protocol after a breakthrough was recorded gets a `Conflict`, not a step of another protocol.
    """
    if status not in STEP_STATUSES:
        raise InvalidInput("status", f"unknown value {status!r}", ", ".join(STEP_STATUSES))
    active = state.active_replan_no
    steps = state.active_steps
    numbers = [p.step_no for p in steps]
    check_open(state)
    check_dosing_allowed(state)
    live = state.live_continuations
    if replan_no is not None and replan_no != active:
        if replan_no < active:
            c = live[-1]
            raise Conflict(
                "replan_no",
                f"a breakthrough reaction at step {c.reaction_step} stopped that protocol: reload "
                "the session and follow the re-planned continuation "
                "[rule rdd-session-breakthrough-stops-protocol]",
                f"reaction {c.reaction_id}",
            )
        raise InvalidInput("replan_no", f"no re-planned continuation {replan_no}", str(active))
    if active and not steps:
        c = live[-1]
        raise _refuse(
            "rdd-session-breakthrough-stops-protocol",
            "step_no",
            f"the {c.severity} reaction at step {c.reaction_step} stopped the protocol and no continuation "
            "was re-planned: no further step can be given (finish the session as stopped)",
        )
    if step_no not in numbers:
        if active:
            c = live[-1]
            raise _refuse(
                "rdd-session-breakthrough-stops-protocol",
                "step_no",
                f"a breakthrough reaction at step {c.reaction_step} stopped the original protocol: only the "
                f"re-planned steps {numbers[0]}-{numbers[-1]} can be given",
                f"{numbers[0]}-{numbers[-1]}",
            )
        raise InvalidInput("step_no", f"no step {step_no}", f"1-{len(numbers)}" if numbers else None)
    done = state.recorded(active)
    if step_no in done:
        first = done[step_no]
        when = f" at {clock.format_local(first.started_at)}" if first.started_at else ""
        raise Conflict(
            "step_no",
            f"step {step_no} was already recorded {first.status}{when} [rule rdd-session-step-once]",
            f"desensitization step {first.id}",
        )
    stopped = state.interrupted()
    if stopped is not None:
        raise _refuse(
            "rdd-session-breakthrough-stops-protocol",
            "step_no",
            f"the infusion was {stopped.status} at step {stopped.step_no}: record the reaction at that "
            "step to re-plan, or finish the session",
        )
    check_no_unanswered_reaction(state)
    expected = state.next_step()
    if expected is None or step_no != expected.step_no:
        nxt = "none" if expected is None else str(expected.step_no)
        prefix = "a breakthrough reaction stopped the original protocol; " if active else ""
        raise _refuse(
            "rdd-session-steps-in-order",
            "step_no",
            f"{prefix}steps are given in order: the next step is {nxt}",
            nxt,
        )
    return next(p for p in steps if p.step_no == step_no)


def check_no_unanswered_reaction(state: SessionState) -> None:
    """``rdd-session-breakthrough-stops-protocol`` for a reaction recorded at a step of the active protocol
    without a re-plan (e.g. with the patient's reactions): the protocol waits for the re-plan."""
    for r in state.recorded(state.active_replan_no).values():
        if r.id in state.uncovered_reaction_step_ids:
            raise _refuse(
                "rdd-session-breakthrough-stops-protocol",
                "step_no",
                f"a reaction was recorded at step {r.step_no} without a re-plan: record it as a breakthrough "
                "reaction at that step to get the re-planned continuation",
            )


def history_step(state: SessionState, step_no: int, status: str = "given") -> None:
    """The rules for a step of a session without a stored plan (the caller's doses): finished, once, in
    order (the step after the last one recorded), stopped after an interruption or a reaction."""
    if status not in STEP_STATUSES:
        raise InvalidInput("status", f"unknown value {status!r}", ", ".join(STEP_STATUSES))
    check_open(state)
    done = state.recorded(0)
    if step_no in done:
        first = done[step_no]
        raise Conflict(
            "step_no",
            f"step {step_no} was already recorded {first.status} [rule rdd-session-step-once]",
            f"desensitization step {first.id}",
        )
    stopped = state.interrupted()
    reacted = next((r for r in done.values() if r.id in state.reaction_step_ids), None)
    if stopped is not None or reacted is not None:
        at = (stopped or reacted).step_no  # type: ignore[union-attr]
        raise _refuse(
            "rdd-session-breakthrough-stops-protocol",
            "step_no",
            f"the protocol stopped at step {at} (interrupted or a reaction): no further step can be given",
        )
    expected = max(done, default=0) + 1
    if step_no != expected:
        raise _refuse(
            "rdd-session-steps-in-order",
            "step_no",
            f"steps are given in order: the next step is {expected}",
            str(expected),
        )


def earliest_start(state: SessionState, step: PlannedStep) -> datetime | None:
    """When ``step`` may start: the previous step given in the same protocol + its planned minutes
    (``rdd-session-step-time``). None for a protocol's first step (a continuation starts when the reaction
    has resolved: the clinician's call)."""
    done = state.recorded(step.replan_no)
    prior = [r for r in done.values() if r.step_no < step.step_no and r.status == "given" and r.started_at]
    if not prior:
        return None
    prev = max(prior, key=lambda r: r.step_no)
    planned = {p.step_no: p for p in state.protocol(step.replan_no)}
    minutes = planned[prev.step_no].minutes if prev.step_no in planned else Decimal(0)
    assert prev.started_at is not None
    return prev.started_at + timedelta(seconds=float(minutes * 60))


def check_step_time(
    state: SessionState, step: PlannedStep, given_at: datetime, now: datetime, early_reason: str | None
) -> None:
    """``rdd-session-step-time``: not in the future, not before the previous step, not early without a
    reason."""
    if given_at > now + timedelta(minutes=1):
        raise InvalidInput("given_at", "is in the future", f"at most now ({clock.format_local(now)})")
    done = state.recorded(step.replan_no)
    prior = [r.started_at for r in done.values() if r.step_no < step.step_no and r.started_at]
    if prior and given_at < max(prior):
        raise InvalidInput(
            "given_at", "is before the previous step's time", f"from {clock.format_local(max(prior))}"
        )
    earliest = earliest_start(state, step)
    if earliest is not None and given_at < earliest and not (early_reason or "").strip():
        raise _refuse(
            "rdd-session-step-time",
            "early_reason",
            f"step {step.step_no} starts before the previous step's planned minutes have passed (earliest "
            f"{clock.format_local(earliest)}): give the reason",
            "a reason (recorded with the step)",
        )


def reaction_at(state: SessionState, step_no: int) -> tuple[PlannedStep, RecordedStep | None]:
    """The step a breakthrough reaction is recorded at: the last step recorded in the active protocol (the
    one running) or the next one (then recorded ``stopped``). A reaction at any step is accepted, the final
    one included."""
    check_open(state)
    check_dosing_allowed(state)  # no step of a plan that cannot be given was running
    steps = {p.step_no: p for p in state.active_steps}
    if not steps:
        if state.active_replan_no:
            c = state.live_continuations[-1]
            raise _refuse(
                "rdd-session-breakthrough-stops-protocol",
                "step_no",
                f"the protocol stopped after the {c.severity} reaction at step {c.reaction_step}: no step is "
                "running (record a later reaction with the patient's reactions)",
            )
        raise InvalidInput("step_no", "this session has no planned steps", None)
    if step_no not in steps:
        lo, hi = min(steps), max(steps)
        raise InvalidInput("step_no", f"no step {step_no}", f"{lo}-{hi}")
    last = state.last_recorded()
    nxt = state.next_step()
    allowed = {x.step_no for x in (last, nxt) if x is not None}
    if (
        last is not None
        and last.id in state.reaction_step_ids
        and last.id not in state.uncovered_reaction_step_ids
    ):
        allowed.discard(last.step_no)  # already has its breakthrough: the continuation follows
    if step_no not in allowed:
        accepted = ", ".join(str(x) for x in sorted(allowed)) or "none"
        raise InvalidInput(
            "step_no",
            "a breakthrough reaction is recorded at the step running (the last one recorded) or the next one",
            accepted,
        )
    recorded = state.recorded(state.active_replan_no).get(step_no)
    return steps[step_no], recorded


def replan_after(
    plan: RddPlan,
    state: SessionState,
    *,
    step_no: int,
    severity: str,
    symptoms: tuple[str, ...] = (),
    minutes_into_step: Decimal | None = None,
    steps_back: int = 1,
    chosen: str | None = None,
    new_replan_no: int | None = None,
) -> tuple[breakthrough.Replan, list[PlannedStep]]:
    """The engine's re-plan for a reaction at ``step_no`` and the continuation's steps, numbered in the
    session (protocols.md section 1.7).

    The reaction is recorded whatever the step. Two cases get the options without a resumption (the
    engine cannot compute one, and nothing is invented): a reaction during the final step without the
    minutes into it (the engine needs them to know what is left in the final bag), and a reaction during a
    continuation (a second resumption from the same bags is not modelled)."""
    active = state.active_replan_no
    final = step_no == len(plan.steps)
    reason = None
    if active:
        reason = (
            "Reaction during a re-planned continuation: a second resumption from the same bags is not "
            "computed; the protocol stops here (finish the session, plan the next course)."
        )
    elif final and minutes_into_step is None and severity == "mild" and chosen is None:
        reason = (
            "Reaction during the final step without the minutes into the step: no resumption is computed "
            "(the engine needs them to know what is left in the final bag)."
        )
    if reason is None:
        rp = breakthrough.replan(
            plan,
            reaction_step=step_no,
            severity=severity,
            minutes_into_step=minutes_into_step,
            symptoms=symptoms,
            steps_back=steps_back,
            chosen=chosen,
        )
    else:
        rp = options_only(plan, min(step_no, len(plan.steps)), severity, symptoms, reason, chosen)
    steps: list[PlannedStep] = []
    if rp.resumption is not None:
        steps = planned_steps(
            {"steps": rp.resumption.steps},
            replan_no=active + 1 if new_replan_no is None else new_replan_no,
            first_step=rp.resumption.restart_at_step,
        )
    return rp, steps


TODAY_RESUMPTIONS = ("resume-same-step", "resume-steps-back", "slow-final-step")


def options_only(
    plan: RddPlan,
    step_no: int,
    severity: str,
    symptoms: tuple[str, ...],
    reason: str,
    chosen: str | None = None,
) -> breakthrough.Replan:
    """The documented options for the reaction (``rdd_breakthrough``), with no resumption computed today."""
    from immunoplan.validation import check_choice

    check_choice("severity", severity, breakthrough.SEVERITIES)
    options = breakthrough.options_for(severity, step_no, plan)
    if chosen is not None:
        check_choice("chosen", chosen, [o.id for o in options])
        if chosen in TODAY_RESUMPTIONS:
            raise InvalidInput(
                "chosen", f"no resumption can be computed here: {reason}", "a next-course option"
            )
    applied = [
        o.id
        for o in options
        if o.applies and o.automatic and o.basis.verified and o.id not in TODAY_RESUMPTIONS
    ]
    if chosen and chosen not in applied:
        applied.append(chosen)
    warnings = [reason]
    if not symptoms:
        warnings.append(
            "Record the symptoms: next-course premedication depends on them (flushing, respiratory)."
        )
    return breakthrough.Replan(
        step_no,
        severity,
        options,
        applied,
        None,
        None,
        chosen,
        warnings,
        breakthrough.next_premedication_for(symptoms),
    )


def finish_outcome(state: SessionState, outcome: str, has_reactions: bool) -> str:
    """``rdd-session-complete-needs-last-step``: the outcome recorded (``completed`` becomes
    ``completed-with-reactions`` when the session had a breakthrough reaction)."""
    if outcome not in OUTCOMES:
        raise InvalidInput("outcome", f"unknown value {outcome!r}", ", ".join(OUTCOMES))
    check_open(state)
    if outcome == "stopped":
        return outcome
    if outcome == "completed-with-reactions" and not has_reactions:
        raise InvalidInput(
            "outcome", "no breakthrough reaction was recorded in this session", "completed, stopped"
        )
    steps = state.active_steps
    if steps:
        last = steps[-1]
        rec = state.recorded(state.active_replan_no).get(last.step_no)
        if rec is None or rec.status != "given":
            raise _refuse(
                "rdd-session-complete-needs-last-step",
                "outcome",
                f"the last step ({last.step_no}) of the active protocol was not given: the session can "
                "only be finished as stopped",
                "stopped",
            )
    elif state.engine_plan or state.active_replan_no:
        raise _refuse(
            "rdd-session-complete-needs-last-step",
            "outcome",
            "the protocol stopped without a continuation: the session can only be finished as stopped",
            "stopped",
        )
    elif not any(r.status == "given" for r in state.steps):
        raise InvalidInput("outcome", "no step was recorded given", "stopped")
    return "completed-with-reactions" if has_reactions else "completed"
