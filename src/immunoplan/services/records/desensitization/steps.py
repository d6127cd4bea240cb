"""Record one step of a session: `mark_step` (typed input: a step of the stored plan or of the re-planned
continuation, at the clinic's time) and `record_step` (keyword style; ``imported=True`` loads a step of
history as it happened)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from immunoplan import clock
from immunoplan.clinical.desensitization import session as rules
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.registry import checks as ck
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.inputs import validate
from immunoplan.services.records.common import as_input, columns
from immunoplan.services.records.desensitization.inputs import StepIn
from immunoplan.services.records.desensitization.state import (
    cumulative_dose_mg,
    locked_state,
    session_state,
    write_view,
)

RECORD_STEP = "record_desensitization_step"


def _step_result(s: Session, sess: m.DesensitizationSession, row: m.DesensitizationStep) -> dict[str, Any]:
    state, _ = session_state(s, sess)
    nxt = state.next_step()
    earliest = rules.earliest_start(state, nxt) if nxt is not None else None
    return {
        **columns(row),
        "session_id": sess.id,
        "next_step": None
        if nxt is None
        else {"replan_no": nxt.replan_no, "step_no": nxt.step_no, "earliest_at": clock.iso_local(earliest)},
    }


def _dose_mg(dose_mg: Any, why: str) -> Any:
    if dose_mg in (None, ""):
        raise InvalidInput("dose_mg", why, "mg")
    return ck.positive_decimal("dose_mg", dose_mg, allow_zero=True)


def _caller_numbers(bag: Any, rate_ml_h: Any, minutes: Any) -> dict[str, Any]:
    """A step's bag, rate and minutes as the caller gives them (a session without a stored plan, history)."""
    return {
        "bag": None if bag in (None, "") else int(ck.to_float("bag", bag)),
        "rate_ml_h": None if rate_ml_h in (None, "") else ck.positive_decimal("rate_ml_h", rate_ml_h),
        "minutes": None if minutes in (None, "") else ck.positive_decimal("minutes", minutes),
    }


def _add_step(
    s: Session,
    sess: m.DesensitizationSession,
    state: rules.SessionState,
    inp: StepIn,
    *,
    dose_mg: Any = None,
) -> m.DesensitizationStep:
    """Check every rule for ``inp`` and add the step row (the plan's numbers, the clinic's time)."""
    if state.engine_plan:
        planned = rules.step_to_record(state, inp.step_no, inp.status, inp.replan_no)
        if (
            dose_mg not in (None, "")
            and ck.positive_decimal("dose_mg", dose_mg, allow_zero=True) != planned.dose_mg
        ):
            raise InvalidInput(
                "dose_mg",
                f"step {planned.step_no} of the stored plan is {planned.dose_mg} mg: a planned session's "
                "steps are the plan's [rule rdd-session-engine-plan]",
                str(planned.dose_mg),
            )
        replan_no, bag, rate, minutes, dose = (
            planned.replan_no,
            planned.bag,
            planned.rate_ml_h,
            planned.minutes,
            planned.dose_mg,
        )
        now = clock.now()
        at = None if inp.status == "skipped" else (inp.given_at or now)
        if at is not None:
            rules.check_step_time(state, planned, at, now, inp.early_reason)
    else:
        rules.history_step(state, inp.step_no, inp.status)
        dose = _dose_mg(dose_mg, "is required for a session without a stored plan")
        replan_no, bag, rate, minutes = 0, None, None, None
        at = None if inp.status == "skipped" else (inp.given_at or clock.now())
    row = m.DesensitizationStep(
        session_id=sess.id,
        replan_no=replan_no,
        step_no=inp.step_no,
        bag=bag,
        rate_ml_h=rate,
        minutes=minutes,
        dose_mg=dose,
        cumulative_dose_mg=cumulative_dose_mg(state, replan_no, inp.step_no, dose, inp.status),
        started_at=at,
        status=inp.status,
        early_reason=(inp.early_reason or None) if inp.status != "skipped" else None,
    )
    s.add(row)
    s.flush()
    return row


def mark_step(
    reg: Registry, actor: str, data: StepIn | Mapping[str, Any], *, idempotency_key: Any = None
) -> dict[str, Any]:
    """Record one step of the session's plan (or continuation) at the clinic's time (typed input)."""
    inp = as_input(StepIn, data)

    def run(s: Session) -> dict[str, Any]:
        sess, state, _ = locked_state(s, inp.session_id)
        row = _add_step(s, sess, state, inp)
        return _step_result(s, sess, row)

    return write_view(reg, actor, RECORD_STEP, run, idempotency_key)


def _import_step(
    s: Session, inp: StepIn, dose: Any, bag: Any, rate_ml_h: Any, minutes: Any
) -> m.DesensitizationStep:
    """A step of history as it happened (the caller's numbers, any order): only the once and finished
    rules apply."""
    sess, state, _ = locked_state(s, inp.session_id)
    rules.check_open(state)
    part = inp.replan_no or 0
    first = state.recorded(part).get(inp.step_no)
    if first is not None:
        raise Conflict(
            "step_no",
            f"step {inp.step_no} was already recorded {first.status} [rule rdd-session-step-once]",
            f"desensitization step {first.id}",
        )
    row = m.DesensitizationStep(
        session_id=sess.id,
        replan_no=part,
        step_no=inp.step_no,
        **_caller_numbers(bag, rate_ml_h, minutes),
        dose_mg=dose,
        cumulative_dose_mg=cumulative_dose_mg(state, part, inp.step_no, dose, inp.status),
        started_at=inp.given_at,
        status=inp.status,
        early_reason=inp.early_reason,
    )
    s.add(row)
    s.flush()
    return row


def record_step(
    reg: Registry,
    actor: str,
    *,
    session_id: Any,
    step_no: Any,
    dose_mg: Any = None,
    bag: Any = None,
    rate_ml_h: Any = None,
    minutes: Any = None,
    started_at: Any = None,
    status: str = "given",
    replan_no: Any = None,
    early_reason: str | None = None,
    imported: bool = False,
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Record one step (keyword style). On a planned session the step is the plan's (a different
    ``dose_mg`` is refused) under every session rule; on a session without a plan the caller's dose is
    recorded under the rules that apply (finished, once, in order, stop after a reaction).

    ``imported=True`` loads a step of history as it happened (the caller's numbers, any order, continuation
    ``replan_no``): only the once and finished rules apply; audited as ``import_desensitization_step``."""
    inp = validate(
        StepIn,
        {
            "session_id": session_id,
            "step_no": step_no,
            "status": status,
            "replan_no": replan_no,
            "given_at": started_at,
            "early_reason": early_reason,
        },
    )
    if imported:
        dose = _dose_mg(dose_mg, "is required to import a step")

        def run_import(s: Session) -> dict[str, Any]:
            return columns(_import_step(s, inp, dose, bag, rate_ml_h, minutes))

        return write_view(reg, actor, "import_desensitization_step", run_import, idempotency_key)

    def run(s: Session) -> dict[str, Any]:
        sess, state, _ = locked_state(s, inp.session_id)
        row = _add_step(s, sess, state, inp, dose_mg=dose_mg)
        if not state.engine_plan:
            for name, value in _caller_numbers(bag, rate_ml_h, minutes).items():
                setattr(row, name, value)
            s.flush()
        return _step_result(s, sess, row)

    return write_view(reg, actor, RECORD_STEP, run, idempotency_key)
