"""What every session use case shares: the session as the rules see it (`session_state`), its row locked for
the transaction, cumulative doses, the stored plan regenerated, and results as clinic-local JSON."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from immunoplan import clock
from immunoplan.clinical.desensitization import session as rules
from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services import protocols
from immunoplan.services.records.common import live_rows, plain_decimal
from immunoplan.services.unit_of_work import write


def view_json(view: Any) -> Any:
    """A view with its times as clinic-local ISO text with offset (API and ``--json``)."""
    if isinstance(view, datetime):
        return clock.iso_local(view)
    if isinstance(view, Mapping):
        return {str(k): view_json(v) for k, v in view.items()}
    if isinstance(view, (list, tuple)):
        return [view_json(v) for v in view]
    return to_jsonable(view)


def write_view(
    reg: Registry, actor: str, use_case: str, fn: Callable[[Session], Any], idempotency_key: Any
) -> dict[str, Any]:
    """`unit_of_work.write` with the result's times as clinic-local ISO text (stored so for a replay)."""
    return write(reg, actor, use_case, lambda s: view_json(fn(s)), idempotency_key=idempotency_key)


def regenerate_plan(request: Mapping[str, Any]) -> protocols.DesensitizationResult:
    """The engine's plan for a stored planning request (`PlanIn.request`)."""
    req = dict(request)
    if "initial_symptoms" in req:
        req["initial_symptoms"] = tuple(req["initial_symptoms"])
    return protocols.plan_desensitization(**req)


def locked_state(
    s: Session, session_id: int
) -> tuple[m.DesensitizationSession, rules.SessionState, dict[str, Any]]:
    """The session row, locked for this transaction (PostgreSQL ``FOR UPDATE``; SQLite holds the write lock
    from ``BEGIN IMMEDIATE``) so the checks see every committed step, and `session_state` of it."""
    sess = s.get(m.DesensitizationSession, session_id, with_for_update=True)
    if sess is None:
        raise InvalidInput("session_id", f"no desensitization session {session_id}")
    state, rows = session_state(s, sess)
    return sess, state, rows


def session_cycle(s: Session, sess: m.DesensitizationSession) -> int:
    """The session's number in its course (1 for the first)."""
    n = s.scalar(
        select(func.count())
        .select_from(m.DesensitizationSession)
        .where(m.DesensitizationSession.course_id == sess.course_id, m.DesensitizationSession.id <= sess.id)
    )
    return int(n or 1)


def _engine_plan(sess: m.DesensitizationSession) -> bool:
    plan = sess.plan or {}
    return (
        bool(plan.get("request"))
        and bool((plan.get("result") or {}).get("steps"))
        and not plan.get("imported")
    )


def _live_steps(s: Session, session_id: int) -> list[m.DesensitizationStep]:
    Step = m.DesensitizationStep
    return live_rows(s, Step, Step.session_id == session_id, order_by=(Step.replan_no, Step.step_no))


def _live_reactions(s: Session, step_ids: list[int]) -> list[m.Reaction]:
    if not step_ids:
        return []
    return live_rows(
        s, m.Reaction, m.Reaction.desensitization_step_id.in_(step_ids), order_by=(m.Reaction.id,)
    )


def _continuation_steps(c: Mapping[str, Any]) -> tuple[rules.PlannedStep, ...]:
    """A stored continuation's steps (already numbered in the session)."""
    return tuple(
        rules.PlannedStep(
            int(c["replan_no"]),
            int(st["step_no"]),
            int(st["bag"]),
            Decimal(str(st["rate_ml_h"])),
            Decimal(str(st["minutes"])),
            Decimal(str(st["volume_ml"])),
            Decimal(str(st["dose_mg"])),
            Decimal(str(st["cumulative_mg"])),
        )
        for st in c.get("steps") or []
    )


def session_state(s: Session, sess: m.DesensitizationSession) -> tuple[rules.SessionState, dict[str, Any]]:
    """The rules' view of the session, and the rows it was built from (``steps``, ``reactions``: live)."""
    plan = sess.plan or {}
    rows = _live_steps(s, sess.id)
    reactions = _live_reactions(s, [r.id for r in rows])
    live_reaction_ids = {r.id for r in reactions}
    engine = _engine_plan(sess)
    result = plan.get("result") or {}
    continuations = tuple(
        rules.Continuation(
            replan_no=int(c["replan_no"]),
            reaction_id=int(c["reaction_id"]),
            from_replan_no=int(c.get("from_replan_no", 0)),
            reaction_step=int(c["reaction_step"]),
            severity=str(c["severity"]),
            steps=_continuation_steps(c),
            dose_before_mg=Decimal(str(c.get("dose_before_mg") or 0)),
            live=int(c["reaction_id"]) in live_reaction_ids,
        )
        for c in plan.get("replans") or []
    )
    state = rules.SessionState(
        session_id=sess.id,
        status=sess.status,
        engine_plan=engine,
        dosing_allowed=bool(result.get("dosing_allowed")) if engine else False,
        plan_steps=tuple(rules.planned_steps(result)) if engine else (),
        continuations=continuations,
        steps=tuple(
            rules.RecordedStep(
                r.id,
                r.replan_no,
                r.step_no,
                r.status,
                r.dose_mg,
                clock.to_utc_stored(r.started_at) if r.started_at else None,
                r.cumulative_dose_mg,
            )
            for r in rows
        ),
        reaction_step_ids=frozenset(
            r.desensitization_step_id for r in reactions if r.desensitization_step_id
        ),
        uncovered_reaction_step_ids=frozenset(
            r.desensitization_step_id
            for r in reactions
            if r.desensitization_step_id and r.id not in {c.reaction_id for c in continuations}
        ),
    )
    return state, {"steps": rows, "reactions": reactions}


def step_numbers(st: rules.PlannedStep) -> dict[str, Any]:
    """A planned step's bag, rate, minutes, volume and doses (as a page, the API and a stored re-plan show
    them)."""
    return {
        "bag": st.bag,
        "rate_ml_h": st.rate_ml_h,
        "minutes": st.minutes,
        "volume_ml": st.volume_ml,
        "dose_mg": st.dose_mg,
        "cumulative_mg": st.cumulative_mg,
    }


def cumulative_dose_mg(
    state: rules.SessionState, replan_no: int, step_no: int, dose: Decimal, status: str
) -> Decimal:
    """Cumulative dose after this step: the dose before the protocol (a continuation counts the reaction
    step's given part, `breakthrough.resume`) + the steps given before it in the same protocol."""
    before = next((c.dose_before_mg for c in state.continuations if c.replan_no == replan_no), Decimal(0))
    earlier = sum(
        (
            r.dose_mg
            for r in state.steps
            if r.replan_no == replan_no and r.step_no < step_no and r.status == "given"
        ),
        Decimal(0),
    )
    return plain_decimal(before + earlier + (dose if status == "given" else Decimal(0)))
