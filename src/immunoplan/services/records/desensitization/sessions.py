"""Open and finish a session: `plan_session` (nothing stored), `start_session` (plan with the engine and open
the session on the patient's course for the drug), `start_desensitization` (keyword style, an existing
course), `finish_session`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from immunoplan import clock
from immunoplan.clinical.desensitization import session as rules
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import checks as ck
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services import protocols
from immunoplan.services.inputs import validate
from immunoplan.services.records.common import (
    as_input,
    basis_json,
    columns,
    find_course,
    find_patient,
    plain_decimal,
)
from immunoplan.services.records.desensitization.course import cycle_choice_for
from immunoplan.services.records.desensitization.inputs import FinishIn, PlanIn, SessionStartIn
from immunoplan.services.records.desensitization.state import (
    locked_state,
    regenerate_plan,
    session_cycle,
    write_view,
)
from immunoplan.services.records.patients import latest_measurement

KIND = "drug_desensitization"
OPEN_COURSE = ("planned", "active")


def plan_session(data: PlanIn | Mapping[str, Any]) -> protocols.DesensitizationResult:
    """The engine's plan for a request (preview, API, CLI); stores nothing."""
    return protocols.plan_desensitization(**as_input(PlanIn, data).request())


def _refuse_not_desensitization(c: m.Course) -> None:
    if c.kind != KIND:
        raise InvalidInput("course_id", f"course {c.id} is {c.kind}, not a drug desensitization course")


def _course_for(
    s: Session, p: m.Patient, drug: str, day: date, course_id: int | None, result: dict[str, Any]
) -> m.Course:
    """The patient's open desensitization course for ``drug`` (created with the first session)."""
    if course_id is not None:
        c = s.get(m.Course, course_id)
        if c is None or c.patient_id != p.id:
            raise InvalidInput("course_id", f"no course {course_id} for patient {p.pseudo_id}")
        _refuse_not_desensitization(c)
        if c.status not in OPEN_COURSE:
            raise InvalidInput(
                "course_id", f"course {c.id} is {c.status}: plan a new course", "an open course"
            )
        if (c.drug or "").strip().lower() != drug.lower():
            raise InvalidInput("course_id", f"course {c.id} is for {c.drug}, not {drug}", c.drug)
        return c
    c = s.scalars(
        select(m.Course)
        .where(
            m.Course.patient_id == p.id,
            m.Course.kind == KIND,
            func.lower(m.Course.drug) == drug.lower(),
            m.Course.status.in_(OPEN_COURSE),
        )
        .order_by(m.Course.id.desc())
    ).first()
    if c is None:
        c = m.Course(
            patient_id=p.id,
            kind=KIND,
            drug=drug,
            regimen=result.get("scheme"),
            status="active",
            started_on=day,
            target_dose=Decimal(str(result.get("target_mg")))
            if result.get("target_mg") is not None
            else None,
            dose_unit="mg",
            basis=basis_json(result.get("basis")),
        )
        s.add(c)
        s.flush()
    return c


def _open_session(
    s: Session,
    c: m.Course,
    day: date,
    drug: str,
    target: Decimal,
    protocol: str | None,
    plan: dict[str, Any] | None,
    basis: Any,
) -> m.DesensitizationSession:
    same_day = s.scalars(
        select(m.DesensitizationSession).where(
            m.DesensitizationSession.course_id == c.id,
            m.DesensitizationSession.session_on == day,
            m.DesensitizationSession.status == "in-progress",
        )
    ).first()
    if same_day is not None:
        raise Conflict(
            "session_on",
            f"a session of this course is already in progress on {day.isoformat()}: finish it first",
            f"desensitization session {same_day.id}",
        )
    row = m.DesensitizationSession(
        course_id=c.id,
        patient_id=c.patient_id,
        session_on=day,
        drug=drug,
        target_dose_mg=target,
        protocol=protocol,
        status="in-progress",
        plan=plan,
        basis=basis_json(basis),
    )
    s.add(row)
    if c.status == "planned":
        c.status = "active"
    s.flush()
    return row


def _with_body_size(reg: Registry, inp: SessionStartIn, request: dict[str, Any]) -> dict[str, Any]:
    """The request with the patient's latest weight and height (for the usual-dose check per m2) where the
    request gives none; stored with the session so a re-plan checks the same numbers."""
    if "weight_kg" in request and "height_cm" in request:
        return request
    with reg.session() as s:
        if inp.patient_id is not None:
            p = s.get(m.Patient, inp.patient_id)
        else:
            try:
                p = find_patient(s, inp.pseudo_id)
            except InvalidInput:
                return request  # refused inside the transaction, naming the patient
        if p is None:
            return request
        weight = latest_measurement(s, p.id, "weight_kg")
        height = latest_measurement(s, p.id, "height_cm") or p.height_cm
    out = dict(request)
    if "weight_kg" not in out and weight is not None:
        out["weight_kg"] = plain_text(weight)
    if "height_cm" not in out and height is not None:
        out["height_cm"] = plain_text(height)
    return out


def plain_text(x: float) -> str:
    """A measurement (stored as float) as short exact text for the stored request."""
    return format(Decimal(str(x)).normalize(), "f")


def start_session(
    reg: Registry, actor: str, data: SessionStartIn | Mapping[str, Any], *, idempotency_key: Any = None
) -> dict[str, Any]:
    """Plan with the engine and open the session on the patient's course for the drug, in one transaction.
    Returns ``session_id``, ``course_id``, ``cycle`` and the ``plan`` (steps, bags, basis, warnings)."""
    inp = as_input(SessionStartIn, data)
    if inp.patient_id is None and not inp.pseudo_id:
        raise InvalidInput("patient_id", "is required", "a patient's registry id")
    request = _with_body_size(reg, inp, inp.plan_in().request())
    result = to_jsonable(regenerate_plan(request))  # the engine's refusals (InvalidInput) before any write

    def run(s: Session) -> dict[str, Any]:
        if inp.patient_id is not None:
            p = s.get(m.Patient, inp.patient_id, with_for_update=True)
            if p is None:
                raise InvalidInput("patient_id", f"no patient {inp.patient_id} in the registry")
        else:
            p = find_patient(s, inp.pseudo_id)
        drug = str(request["drug"])
        c = _course_for(s, p, drug, inp.session_on, inp.course_id, result)
        bags = request.get("bags")
        choice = cycle_choice_for(
            s, c, inp.cycle_choice, inp.from_session_id, int(bags) if bags not in (None, "") else None
        )
        sess = _open_session(
            s,
            c,
            inp.session_on,
            drug,
            Decimal(str(request["dose_mg"])),
            result.get("scheme"),
            {"request": request, "result": result, "replans": [], "cycle_choice": choice},
            result.get("basis"),
        )
        return {
            "session_id": sess.id,
            "id": sess.id,
            "course_id": c.id,
            "patient_id": p.id,
            "cycle": session_cycle(s, sess),
            "cycle_choice": choice,
            "session_on": inp.session_on,
            "status": sess.status,
            "dosing_allowed": bool(result.get("dosing_allowed")),
            "plan": result,
            "steps": result.get("steps"),
        }

    return write_view(reg, actor, "start_desensitization_session", run, idempotency_key)


def start_desensitization(
    reg: Registry,
    actor: str,
    *,
    course_id: Any,
    session_on: Any,
    drug: str,
    target_dose_mg: Any,
    protocol: str | None = None,
    plan: Any = None,
    basis: Any = None,
    imported: bool = False,
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Open a session on an existing course (keyword style: importer, demo, tests).

    A ``plan`` holding a planning ``request`` is re-planned by the engine (what is stored is what the engine
    computes, never the caller's numbers); a session without one records steps with the caller's doses under
    the same rules (order, once, stop after a reaction, finished). ``imported=True`` stores ``plan`` as given
    (history), marked ``imported``; audited as ``import_desensitization_session``."""
    day = ck.to_date("session_on", session_on)
    clock.check_date("session_on", day)
    target = ck.positive_decimal("target_dose_mg", target_dose_mg)
    name = ck.not_empty("drug", drug)
    stored: dict[str, Any] | None = None
    if plan is not None:
        if imported:
            stored = {**to_jsonable(plan), "imported": True}
        elif isinstance(plan, Mapping) and isinstance(plan.get("request"), Mapping):
            req = validate(PlanIn, plan["request"]).request()
            result = to_jsonable(regenerate_plan(req))
            stored = {"request": req, "result": result, "replans": []}
            protocol = protocol or result.get("scheme")
            basis = basis if basis is not None else result.get("basis")
        else:
            raise InvalidInput(
                "plan",
                "a session's plan is computed by the engine from its planning request",
                '{"request": {...planning request...}} (or imported=True for history)',
            )

    def run(s: Session) -> dict[str, Any]:
        c = find_course(s, course_id)
        _refuse_not_desensitization(c)
        return columns(_open_session(s, c, day, name, target, protocol, stored, basis))

    use_case = "import_desensitization_session" if imported else "start_desensitization_session"
    return write_view(reg, actor, use_case, run, idempotency_key)


def finish_session(
    reg: Registry, actor: str, data: FinishIn | Mapping[str, Any], *, idempotency_key: Any = None
) -> dict[str, Any]:
    """End the session (``rdd-session-complete-needs-last-step``): status, outcome, end time, dose given."""
    inp = as_input(FinishIn, data)

    def run(s: Session) -> dict[str, Any]:
        sess, state, rows = locked_state(s, inp.session_id)
        outcome = rules.finish_outcome(state, inp.outcome, bool(rows["reactions"]))
        now = clock.now()
        ended = inp.ended_at or now
        if ended > now + timedelta(minutes=1):
            raise InvalidInput("ended_at", "is in the future", f"at most now ({clock.format_local(now)})")
        times = [r.started_at for r in state.steps if r.started_at is not None]
        if times and ended < max(times):
            raise InvalidInput(
                "ended_at", "is before the last step's time", f"from {clock.format_local(max(times))}"
            )
        sess.status = rules.SESSION_STATUS[outcome]
        sess.outcome = outcome
        sess.completed = sess.status == "completed"
        sess.ended_at = ended
        sess.dose_given_mg = plain_decimal(state.dose_given_mg())
        s.flush()
        return {
            "session_id": sess.id,
            "status": sess.status,
            "outcome": outcome,
            "ended_at": clock.iso_local(ended),
            "dose_given_mg": sess.dose_given_mg,
            "target_dose_mg": sess.target_dose_mg,
        }

    return write_view(reg, actor, "finish_desensitization_session", run, idempotency_key)
