"""Rapid drug desensitization sessions: plan, run step by step, breakthrough reactions, finish.

Every write is one use case in ONE transaction (`immunoplan.services.unit_of_work.write`: audited, replayed
for an idempotency key already used, a concurrent write becomes `Conflict`); the rules are those of the
clinical core (`immunoplan.clinical.desensitization.session`, each with its id and source), checked inside the
transaction after the session row is locked, so every caller (page, API, CLI, import, test) gets the same.

- `start_session` plans with the engine (`services.protocols.plan_desensitization`) and opens the session on
  the patient's desensitization course for that drug (one course per patient and drug, its sessions the
  cycles; created with the first session).
- `record_step` records one step of the stored plan (or of the re-planned continuation) at the clinic's time.
- `record_breakthrough` records a breakthrough reaction at a step (the final one included) and, in the same
  transaction, stops the protocol and stores the engine's re-plan (its continuation steps keep their place).
- `finish_session` ends the session completed (with or without reactions) or stopped, with the dose given.
- `start_desensitization` (keyword style, kept for the importer, the demo and the tests) opens a session on an
  existing course; ``record_step(..., imported=True)`` loads a step of history as it happened (audited as
  ``import_desensitization_step``).
- Reads: `plan_session` (a plan, nothing stored), `session_view` (steps, statuses, reactions, re-plans).

Input models are declared once here and used by the API bodies, the form parsers and the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from immunoplan import clock, reference
from immunoplan.clinical import vocabularies
from immunoplan.clinical.desensitization import session as rules
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.reference import limits
from immunoplan.registry import checks as ck
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services import protocols
from immunoplan.services.inputs import InputModel, validate
from immunoplan.services.records.common import basis_json, find_course, find_patient
from immunoplan.services.unit_of_work import write

KIND = "drug_desensitization"
BREAKTHROUGH_SCALE = "brown2004"  # rdd_breakthrough options are keyed by the Brown 2004 grades
OPEN_COURSE = ("planned", "active")


def _vocabulary(value: Any, choices: tuple[str, ...]) -> Any:
    if value is None or value in choices:
        return value
    raise PydanticCustomError("vocabulary", "unknown value {value}", {"value": repr(value)})


def _accepted(choices: tuple[str, ...]) -> Any:
    return {"accepted": ", ".join(choices)}


def _clinic_time(v: datetime | None) -> datetime | None:
    """A typed time as aware UTC (naive = clinic-local wall time), years 1900-2100."""
    if v is None:
        return None
    if not clock.EARLIEST_DATE <= v.date() <= clock.LATEST_DATE:
        raise PydanticCustomError("date_range", "{day} is outside the accepted range", {"day": str(v.date())})
    return clock.to_utc(v)


def _split(v: Any) -> Any:
    if isinstance(v, str):
        return [x.strip() for x in v.replace(";", ",").split(",") if x.strip()]
    return v


# -------------------------------------------------------------------------------------------- input models


class PlanIn(InputModel):
    """A planning request (names as in `services.protocols.plan_desensitization`)."""

    drug: str = Field(min_length=1, max_length=120)
    dose_mg: Decimal = limits.limit("desensitization_dose_mg").pydantic()
    bag_volume_ml: Decimal = limits.limit("bag_volume_ml").pydantic()
    final_rate_ml_h: Decimal = limits.limit("rate_ml_h").pydantic()
    bags: int = Field(3, ge=1, le=4)
    dilution_bag_volume_ml: Decimal | None = limits.limit("bag_volume_ml").pydantic(None)
    step_minutes: Decimal | None = limits.limit("step_minutes").pydantic(None)
    first_rate_variant: bool = False
    rates: str | None = Field(None, max_length=200, description="mL/h per bag, e.g. 2,5,10,20|5,10,20,40")
    start: str | None = Field(None, max_length=20, description="HH:MM (clinic time) or YYYY-MM-DDTHH:MM")
    stock_mg_ml: Decimal | None = limits.limit("stock_mg_ml").pydantic(None)
    premedication_regimen: str | None = Field(None, max_length=64)
    initial_symptoms: list[str] = Field(default_factory=list, max_length=10)
    override_reason: str | None = Field(None, max_length=500)

    @field_validator("initial_symptoms", mode="before")
    @classmethod
    def _symptoms_text(cls, v: Any) -> Any:
        return _split(v)

    def request(self) -> dict[str, Any]:
        """Keyword arguments of `plan_desensitization`, JSON-able (numbers as exact text): stored with the
        session so the plan can be regenerated with the same inputs."""
        out: dict[str, Any] = {}
        for k, v in self.model_dump(exclude_none=True).items():
            if k == "initial_symptoms":
                if v:
                    out[k] = list(v)
            elif k == "first_rate_variant":
                if v:
                    out[k] = True
            elif k == "premedication_regimen":
                out[k] = v
            else:
                out[k] = str(v) if isinstance(v, Decimal) else v
        return out


class SessionFields(PlanIn):
    """The planning request and the session's date (the API body; the patient comes from the path)."""

    session_on: date
    course_id: int | None = Field(
        None,
        ge=1,
        description="the patient's desensitization course (default: "
        "the open one for this drug, created with the first session)",
    )

    @field_validator("session_on")
    @classmethod
    def _day(cls, v: date) -> date:
        if not clock.EARLIEST_DATE <= v <= clock.LATEST_DATE:
            raise PydanticCustomError("date_range", "{day} is outside the accepted range", {"day": str(v)})
        return v

    def plan_in(self) -> PlanIn:
        return PlanIn(**self.model_dump(exclude={"patient_id", "pseudo_id", "session_on", "course_id"}))


class SessionStartIn(SessionFields):
    """Plan and open a session: the planning request, the date and the patient (registry id or pseudonym)."""

    patient_id: int | None = Field(None, ge=1)
    pseudo_id: str | None = Field(None, max_length=64)


class StepFields(InputModel):
    """Mark one step: given (default), skipped, paused or stopped (the API body; the session from the
    path)."""

    step_no: int = Field(ge=1, le=100)
    status: str = Field("given", json_schema_extra=_accepted(rules.STEP_STATUSES))
    replan_no: int | None = Field(
        None, ge=0, le=100, description="the protocol shown: 0 = original, n = n-th re-planned continuation"
    )
    given_at: datetime | None = Field(
        None,
        description="when the step started (clinic time; default now)",
        json_schema_extra={"accepted": "YYYY-MM-DDTHH:MM (clinic time)"},
    )
    early_reason: str | None = Field(None, max_length=500)

    @field_validator("status")
    @classmethod
    def _status(cls, v: str) -> str:
        return _vocabulary(v, rules.STEP_STATUSES)  # type: ignore[no-any-return]

    @field_validator("given_at")
    @classmethod
    def _at(cls, v: datetime | None) -> datetime | None:
        return _clinic_time(v)


class StepIn(StepFields):
    """`StepFields` of one session."""

    session_id: int = Field(ge=1)


class BreakthroughFields(InputModel):
    """A breakthrough reaction at a step: its findings (graded on Brown 2004: the severity is computed, never
    typed, unless no finding can be placed on the scale), the symptoms that drive the next course's
    premedication, vital signs, the minutes into the step when it started."""

    step_no: int = Field(ge=1, le=100)
    findings: list[str] = Field(
        default_factory=list,
        max_length=len(vocabularies.REACTION_SYMPTOMS),
        json_schema_extra=_accepted(vocabularies.REACTION_SYMPTOMS),
        description="structured findings (grading_symptoms codes), graded on Brown 2004",
    )
    severity: str | None = Field(
        None,
        json_schema_extra=_accepted(vocabularies.BROWN_SEVERITIES),
        description="Brown 2004 grade: only when the findings cannot be graded (else it must match them)",
    )
    spo2_pct: Decimal | None = limits.limit("spo2_pct").pydantic(None)
    systolic_bp_mmhg: Decimal | None = limits.limit("systolic_bp_mmhg").pydantic(None)
    heart_rate_bpm: Decimal | None = limits.limit("heart_rate_bpm").pydantic(None)
    symptoms: list[str] = Field(
        default_factory=list,
        max_length=20,
        json_schema_extra=_accepted(vocabularies.DESENSITIZATION_SYMPTOMS),
    )
    minutes_into_step: Decimal | None = Field(
        None, ge=0, le=240, json_schema_extra={"unit": "min", "accepted": "[0, the step's minutes] min"}
    )
    steps_back: int = Field(1, ge=1, le=2)
    chosen: str | None = Field(None, max_length=64, description="a clinician's chosen option id (recorded)")
    onset_at: datetime | None = Field(None, json_schema_extra={"accepted": "YYYY-MM-DDTHH:MM (clinic time)"})
    treatment: str | None = Field(None, max_length=2000)
    replan_no: int | None = Field(None, ge=0, le=100)

    @field_validator("severity")
    @classmethod
    def _severity(cls, v: str | None) -> str | None:
        return _vocabulary(v, vocabularies.BROWN_SEVERITIES)  # type: ignore[no-any-return]

    @field_validator("findings", mode="before")
    @classmethod
    def _findings_text(cls, v: Any) -> Any:
        return _split(v)

    @field_validator("findings")
    @classmethod
    def _findings(cls, v: list[str]) -> list[str]:
        for x in v:
            _vocabulary(x, vocabularies.REACTION_SYMPTOMS)
        return list(dict.fromkeys(v))

    @field_validator("symptoms", mode="before")
    @classmethod
    def _symptoms_text(cls, v: Any) -> Any:
        return _split(v)

    @field_validator("symptoms")
    @classmethod
    def _symptoms(cls, v: list[str]) -> list[str]:
        for x in v:
            _vocabulary(x, vocabularies.DESENSITIZATION_SYMPTOMS)
        return list(dict.fromkeys(v))

    @field_validator("onset_at")
    @classmethod
    def _at(cls, v: datetime | None) -> datetime | None:
        return _clinic_time(v)


class BreakthroughIn(BreakthroughFields):
    """`BreakthroughFields` of one session."""

    session_id: int = Field(ge=1)


class FinishFields(InputModel):
    """End the session: completed (the last step given), completed-with-reactions, or stopped."""

    outcome: str = Field(json_schema_extra=_accepted(rules.OUTCOMES))
    ended_at: datetime | None = Field(None, json_schema_extra={"accepted": "YYYY-MM-DDTHH:MM (clinic time)"})

    @field_validator("outcome")
    @classmethod
    def _outcome(cls, v: str) -> str:
        return _vocabulary(v, rules.OUTCOMES)  # type: ignore[no-any-return]

    @field_validator("ended_at")
    @classmethod
    def _at(cls, v: datetime | None) -> datetime | None:
        return _clinic_time(v)


class FinishIn(FinishFields):
    """`FinishFields` of one session."""

    session_id: int = Field(ge=1)


def _row(obj: m.Base) -> dict[str, Any]:
    """A row's columns (times stay datetimes: `view_json` prints them in clinic time)."""
    return {c.key: getattr(obj, c.key) for c in obj.__mapper__.column_attrs}


def _write(reg: Registry, actor: str, use_case: str, fn: Any, key: Any) -> dict[str, Any]:
    """`unit_of_work.write` with the result's times as clinic-local ISO text (stored so for a replay)."""
    return write(reg, actor, use_case, lambda s: view_json(fn(s)), idempotency_key=key)


def _model(model: type[Any], data: Any) -> Any:
    return data if isinstance(data, model) else validate(model, data)


# ----------------------------------------------------------------------------------------- plan (no write)


def plan_session(data: PlanIn | Mapping[str, Any]) -> protocols.DesensitizationResult:
    """The engine's plan for a request (preview, API, CLI); stores nothing."""
    return protocols.plan_desensitization(**_model(PlanIn, data).request())


def _regenerate(request: Mapping[str, Any]) -> protocols.DesensitizationResult:
    req = dict(request)
    if "initial_symptoms" in req:
        req["initial_symptoms"] = tuple(req["initial_symptoms"])
    return protocols.plan_desensitization(**req)


# ------------------------------------------------------------------------------------------ session state


def _engine_plan(sess: m.DesensitizationSession) -> bool:
    plan = sess.plan or {}
    return (
        bool(plan.get("request"))
        and bool((plan.get("result") or {}).get("steps"))
        and not plan.get("imported")
    )


def _live_steps(s: Session, session_id: int) -> list[m.DesensitizationStep]:
    return list(
        s.scalars(
            select(m.DesensitizationStep)
            .where(m.DesensitizationStep.session_id == session_id, m.DesensitizationStep.voided_at.is_(None))
            .order_by(m.DesensitizationStep.replan_no, m.DesensitizationStep.step_no)
        )
    )


def _live_reactions(s: Session, step_ids: list[int]) -> list[m.Reaction]:
    if not step_ids:
        return []
    return list(
        s.scalars(
            select(m.Reaction)
            .where(m.Reaction.desensitization_step_id.in_(step_ids), m.Reaction.voided_at.is_(None))
            .order_by(m.Reaction.id)
        )
    )


def _state(s: Session, sess: m.DesensitizationSession) -> tuple[rules.SessionState, dict[str, Any]]:
    """The rules' view of the session, and the rows it was built from."""
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


def _locked_session(s: Session, session_id: int) -> m.DesensitizationSession:
    """The session row, locked for this transaction (PostgreSQL ``FOR UPDATE``; SQLite holds the write lock
    from ``BEGIN IMMEDIATE``), so the checks below see every committed step."""
    sess = s.get(m.DesensitizationSession, session_id, with_for_update=True)
    if sess is None:
        raise InvalidInput("session_id", f"no desensitization session {session_id}")
    return sess


def _plain(d: Decimal) -> Decimal:
    """``d`` without trailing zeros and never in exponent form (0.110000000000 -> 0.11, 5E+2 -> 500)."""
    return Decimal(format(d.normalize(), "f"))


def _cumulative(
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
    return _plain(before + earlier + (dose if status == "given" else Decimal(0)))


def _step_result(s: Session, sess: m.DesensitizationSession, row: m.DesensitizationStep) -> dict[str, Any]:
    state, _ = _state(s, sess)
    nxt = state.next_step()
    earliest = rules.earliest_start(state, nxt) if nxt is not None else None
    return {
        **_row(row),
        "session_id": sess.id,
        "next_step": None
        if nxt is None
        else {"replan_no": nxt.replan_no, "step_no": nxt.step_no, "earliest_at": clock.iso_local(earliest)},
    }


# ------------------------------------------------------------------------------------------------ start


def _course_for(
    s: Session, p: m.Patient, drug: str, day: date, course_id: int | None, result: dict[str, Any]
) -> m.Course:
    """The patient's open desensitization course for ``drug`` (created with the first session)."""
    if course_id is not None:
        c = s.get(m.Course, course_id)
        if c is None or c.patient_id != p.id:
            raise InvalidInput("course_id", f"no course {course_id} for patient {p.pseudo_id}")
        if c.kind != KIND:
            raise InvalidInput("course_id", f"course {c.id} is {c.kind}, not a drug desensitization course")
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


def start_session(
    reg: Registry, actor: str, data: SessionStartIn | Mapping[str, Any], *, idempotency_key: Any = None
) -> dict[str, Any]:
    """Plan with the engine and open the session on the patient's course for the drug, in one transaction.
    Returns ``session_id``, ``course_id``, ``cycle`` and the ``plan`` (steps, bags, basis, warnings)."""
    inp: SessionStartIn = _model(SessionStartIn, data)
    if inp.patient_id is None and not inp.pseudo_id:
        raise InvalidInput("patient_id", "is required", "a patient's registry id")
    request = inp.plan_in().request()
    result = to_jsonable(_regenerate(request))  # the engine's refusals (InvalidInput) before any write

    def run(s: Session) -> dict[str, Any]:
        if inp.patient_id is not None:
            p = s.get(m.Patient, inp.patient_id, with_for_update=True)
            if p is None:
                raise InvalidInput("patient_id", f"no patient {inp.patient_id} in the registry")
        else:
            p = find_patient(s, inp.pseudo_id)
        drug = str(request["drug"])
        c = _course_for(s, p, drug, inp.session_on, inp.course_id, result)
        sess = _open_session(
            s,
            c,
            inp.session_on,
            drug,
            Decimal(str(request["dose_mg"])),
            result.get("scheme"),
            {"request": request, "result": result, "replans": []},
            result.get("basis"),
        )
        cycle = s.scalar(
            select(func.count())
            .select_from(m.DesensitizationSession)
            .where(m.DesensitizationSession.course_id == c.id)
        )
        return {
            "session_id": sess.id,
            "id": sess.id,
            "course_id": c.id,
            "patient_id": p.id,
            "cycle": int(cycle or 1),
            "session_on": inp.session_on,
            "status": sess.status,
            "dosing_allowed": bool(result.get("dosing_allowed")),
            "plan": result,
            "steps": result.get("steps"),
        }

    return _write(reg, actor, "start_desensitization_session", run, idempotency_key)


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
            result = to_jsonable(_regenerate(req))
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
        if c.kind != KIND:
            raise InvalidInput("course_id", f"course {c.id} is {c.kind}, not a drug desensitization course")
        row = _open_session(s, c, day, name, target, protocol, stored, basis)
        return _row(row)

    use_case = "import_desensitization_session" if imported else "start_desensitization_session"
    return _write(reg, actor, use_case, run, idempotency_key)


# ------------------------------------------------------------------------------------------------- steps


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
        if dose_mg in (None, ""):
            raise InvalidInput("dose_mg", "is required for a session without a stored plan", "mg")
        dose = ck.positive_decimal("dose_mg", dose_mg, allow_zero=True)
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
        cumulative_dose_mg=_cumulative(state, replan_no, inp.step_no, dose, inp.status),
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
    inp: StepIn = _model(StepIn, data)

    def run(s: Session) -> dict[str, Any]:
        sess = _locked_session(s, inp.session_id)
        state, _ = _state(s, sess)
        row = _add_step(s, sess, state, inp)
        return _step_result(s, sess, row)

    return _write(reg, actor, "record_desensitization_step", run, idempotency_key)


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
    inp: StepIn = validate(
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
    if not imported:

        def run(s: Session) -> dict[str, Any]:
            sess = _locked_session(s, inp.session_id)
            state, _ = _state(s, sess)
            row = _add_step(s, sess, state, inp, dose_mg=dose_mg)
            if not state.engine_plan:
                row.bag = None if bag in (None, "") else int(ck.to_float("bag", bag))
                row.rate_ml_h = (
                    None if rate_ml_h in (None, "") else ck.positive_decimal("rate_ml_h", rate_ml_h)
                )
                row.minutes = None if minutes in (None, "") else ck.positive_decimal("minutes", minutes)
                s.flush()
            return _step_result(s, sess, row)

        return _write(reg, actor, "record_desensitization_step", run, idempotency_key)

    if dose_mg in (None, ""):
        raise InvalidInput("dose_mg", "is required to import a step", "mg")
    dose = ck.positive_decimal("dose_mg", dose_mg, allow_zero=True)

    def run_import(s: Session) -> dict[str, Any]:
        sess = _locked_session(s, inp.session_id)
        state, _ = _state(s, sess)
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
            bag=None if bag in (None, "") else int(ck.to_float("bag", bag)),
            rate_ml_h=None if rate_ml_h in (None, "") else ck.positive_decimal("rate_ml_h", rate_ml_h),
            minutes=None if minutes in (None, "") else ck.positive_decimal("minutes", minutes),
            dose_mg=dose,
            cumulative_dose_mg=_cumulative(state, part, inp.step_no, dose, inp.status),
            started_at=inp.given_at,
            status=inp.status,
            early_reason=inp.early_reason,
        )
        s.add(row)
        s.flush()
        return _row(row)

    return _write(reg, actor, "import_desensitization_step", run_import, idempotency_key)


# -------------------------------------------------------------------------------------------- breakthrough


def record_breakthrough(
    reg: Registry, actor: str, data: BreakthroughIn | Mapping[str, Any], *, idempotency_key: Any = None
) -> dict[str, Any]:
    """Record a breakthrough reaction at a step and, in the same transaction, stop the protocol and store the
    engine's re-plan (protocols.md section 1.7). A reaction at any step is accepted, the final one included;
    the re-planned continuation's steps keep their protocol numbers and are recorded like the others."""
    from immunoplan.services.records.reactions import ReactionIn, add_reaction

    inp: BreakthroughIn = _model(BreakthroughIn, data)
    grading = _grade_breakthrough(inp)
    severity = str(grading["grade"])
    symptoms = tuple(dict.fromkeys((*inp.symptoms, *inp.findings)))

    def run(s: Session) -> dict[str, Any]:
        sess = _locked_session(s, inp.session_id)
        state, _ = _state(s, sess)
        if inp.replan_no is not None and inp.replan_no != state.active_replan_no:
            raise Conflict(
                "replan_no",
                "the session's protocol changed since the page was shown (another breakthrough was "
                "recorded): reload the session",
                f"desensitization session {sess.id}",
            )
        if not state.engine_plan:
            raise InvalidInput(
                "session_id",
                "this session has no stored plan to re-plan from: record the reaction with the patient's "
                "reactions (linked to its step)",
            )
        planned, recorded = rules.reaction_at(state, inp.step_no)
        if inp.minutes_into_step is not None and inp.minutes_into_step > planned.minutes:
            raise InvalidInput(
                "minutes_into_step",
                f"step {planned.step_no} lasts {planned.minutes} min",
                f"[0, {planned.minutes}] min",
            )
        base = _regenerate((sess.plan or {})["request"])
        if to_jsonable(base)["steps"] != (sess.plan or {})["result"]["steps"]:
            raise Conflict(
                "session_id",
                "the reference data changed since this session was planned: the re-plan cannot be computed "
                "from the same plan",
                f"desensitization session {sess.id}",
            )
        new_no = max([c.replan_no for c in state.continuations] or [0]) + 1
        rp, steps = rules.replan_after(
            base.plan,
            state,
            step_no=inp.step_no,
            severity=severity,
            symptoms=symptoms,
            minutes_into_step=inp.minutes_into_step,
            steps_back=inp.steps_back,
            chosen=inp.chosen,
            new_replan_no=new_no,
        )
        onset = inp.onset_at or clock.now()
        if recorded is None:  # the reaction came as the next step began: that step is recorded stopped
            started = None
            if inp.minutes_into_step is not None:
                started = onset - timedelta(seconds=float(inp.minutes_into_step * 60))
            row = m.DesensitizationStep(
                session_id=sess.id,
                replan_no=planned.replan_no,
                step_no=planned.step_no,
                bag=planned.bag,
                rate_ml_h=planned.rate_ml_h,
                minutes=planned.minutes,
                dose_mg=planned.dose_mg,
                cumulative_dose_mg=_cumulative(
                    state, planned.replan_no, planned.step_no, planned.dose_mg, "stopped"
                ),
                started_at=started,
                status="stopped",
            )
            s.add(row)
            s.flush()
            step_id = row.id
        else:
            step_id = recorded.id
        p = s.get(m.Patient, sess.patient_id)
        assert p is not None
        reaction = add_reaction(
            s,
            p,
            validate(
                ReactionIn,
                {
                    "kind": "systemic",
                    "grade": severity,
                    "scale": BREAKTHROUGH_SCALE,
                    "scale_version": grading["scale_version"],
                    "findings": list(symptoms) or None,
                    "onset_at": onset,
                    "desensitization_step_id": step_id,
                    "treatment": inp.treatment,
                    "basis": [grading["basis"]],
                },
            ),
        )
        dose_before = (
            rp.resumption.dose_given_before_mg if rp.resumption is not None else state.dose_given_mg()
        )
        entry = {
            "replan_no": new_no,
            "reaction_id": reaction.id,
            "from_replan_no": state.active_replan_no,
            "reaction_step": inp.step_no,
            "severity": severity,
            "symptoms": list(symptoms),
            "grading": grading,
            "vital_signs": {
                k: None if getattr(inp, k) is None else str(getattr(inp, k))
                for k in ("spo2_pct", "systolic_bp_mmhg", "heart_rate_bpm")
            },
            "minutes_into_step": None if inp.minutes_into_step is None else str(inp.minutes_into_step),
            "steps_back": inp.steps_back,
            "chosen": inp.chosen,
            "dose_before_mg": str(dose_before),
            "steps": [
                {
                    "step_no": st.step_no,
                    "bag": st.bag,
                    "rate_ml_h": st.rate_ml_h,
                    "minutes": st.minutes,
                    "volume_ml": st.volume_ml,
                    "dose_mg": st.dose_mg,
                    "cumulative_mg": st.cumulative_mg,
                }
                for st in steps
            ],
            "result": to_jsonable(rp),
            "recorded_at": clock.now(),
        }
        plan = dict(sess.plan or {})
        plan["replans"] = [*(plan.get("replans") or []), to_jsonable(entry)]
        sess.plan = plan
        s.flush()
        return {
            "session_id": sess.id,
            "reaction": _row(reaction),
            "step_id": step_id,
            "replan_no": new_no,
            "grade": grading,
            "replan": to_jsonable(rp),
            "continuation": to_jsonable(entry["steps"]),
            "rule": rules.RULES["rdd-session-breakthrough-stops-protocol"].to_dict(),
        }

    return _write(reg, actor, "record_desensitization_breakthrough", run, idempotency_key)


def _grade_breakthrough(inp: BreakthroughFields) -> dict[str, Any]:
    """The reaction's Brown 2004 grade: computed from the findings (`services.protocols.grade_reaction`,
    ``grading_brown2004``); typed only when no finding can be placed on the scale, and then recorded as the
    clinician's. A typed grade that differs from the findings' is refused; the grader's warnings (vital signs
    are recorded, not graded on: the numeric thresholds are UNVERIFIED) are kept."""
    brown = reference.load("grading_brown2004")
    clinician = {
        "scale": BREAKTHROUGH_SCALE,
        "scale_version": brown["scale_version"],
        "grade": inp.severity,
        "computed": False,
        "basis": reference.basis("grading_brown2004", "clinician's grade").to_dict(),
        "warnings": [],
    }
    if not inp.findings:
        if inp.severity is None:
            raise InvalidInput(
                "findings",
                "give the reaction's findings (graded on Brown 2004) or, when none can be graded, its "
                "severity",
                ", ".join(vocabularies.BROWN_SEVERITIES),
            )
        return clinician
    g = protocols.grade_reaction(
        BREAKTHROUGH_SCALE,
        symptoms=tuple(inp.findings),
        spo2_pct=inp.spo2_pct,
        sbp_mmhg=inp.systolic_bp_mmhg,
        heart_rate_bpm=inp.heart_rate_bpm,
    ).to_dict()
    warnings = list(g.get("warnings") or [])
    if g.get("grade") is None:
        if inp.severity is None:
            raise InvalidInput(
                "severity",
                "none of the findings can be placed on the Brown 2004 scale: give the severity (recorded "
                "as the clinician's)",
                ", ".join(vocabularies.BROWN_SEVERITIES),
            )
        return {**clinician, "warnings": [*warnings, "The findings could not be graded on Brown 2004."]}
    if inp.severity is not None and inp.severity != g["grade"]:
        raise InvalidInput(
            "severity",
            f"the findings grade {g['grade']} on Brown 2004 (the grade is computed, not typed)",
            str(g["grade"]),
        )
    return {
        "scale": BREAKTHROUGH_SCALE,
        "scale_version": g.get("scale_version") or brown["scale_version"],
        "grade": g["grade"],
        "computed": True,
        "basis": g.get("basis"),
        "warnings": warnings,
    }


# ------------------------------------------------------------------------------------------------- finish


def finish_session(
    reg: Registry, actor: str, data: FinishIn | Mapping[str, Any], *, idempotency_key: Any = None
) -> dict[str, Any]:
    """End the session (``rdd-session-complete-needs-last-step``): status, outcome, end time, dose given."""
    inp: FinishIn = _model(FinishIn, data)

    def run(s: Session) -> dict[str, Any]:
        sess = _locked_session(s, inp.session_id)
        state, rows = _state(s, sess)
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
        sess.dose_given_mg = _plain(state.dose_given_mg())
        s.flush()
        return {
            "session_id": sess.id,
            "status": sess.status,
            "outcome": outcome,
            "ended_at": clock.iso_local(ended),
            "dose_given_mg": sess.dose_given_mg,
            "target_dose_mg": sess.target_dose_mg,
        }

    return _write(reg, actor, "finish_desensitization_session", run, idempotency_key)


# -------------------------------------------------------------------------------------------------- reads


def _recorded_json(r: m.DesensitizationStep) -> dict[str, Any]:
    return {
        "id": r.id,
        "replan_no": r.replan_no,
        "step_no": r.step_no,
        "status": r.status,
        "started_at": clock.to_utc_stored(r.started_at) if r.started_at else None,
        "dose_mg": r.dose_mg,
        "cumulative_dose_mg": r.cumulative_dose_mg,
        "early_reason": r.early_reason,
    }


def session_view(reg: Registry, session_id: int) -> dict[str, Any]:
    """Everything a session page shows: the plan, each protocol (original and re-planned continuations)
    with its steps and their recorded status, the reactions and re-plans, the next step and its earliest
    time, and why no step can be given when none can. Times are aware UTC (render with the clinic filters,
    or `view_json` for JSON)."""
    with reg.session() as s:
        sess = s.get(m.DesensitizationSession, session_id)
        if sess is None:
            raise InvalidInput("session_id", f"no desensitization session {session_id}")
        p = s.get(m.Patient, sess.patient_id)
        state, rows = _state(s, sess)
        plan = sess.plan or {}
        result = plan.get("result") or {}
        step_rows = rows["steps"]
        by_step_id = {r.id: r for r in step_rows}
        reactions = [
            {
                "id": x.id,
                "step_id": x.desensitization_step_id,
                "step": by_step_id[x.desensitization_step_id].step_no
                if x.desensitization_step_id in by_step_id
                else None,
                "replan_no": by_step_id[x.desensitization_step_id].replan_no
                if x.desensitization_step_id in by_step_id
                else None,
                "grade": x.grade,
                "scale": x.scale,
                "findings": x.findings or [],
                "onset_at": clock.to_utc_stored(x.onset_at) if x.onset_at else None,
                "minutes_after_dose": x.minutes_after_dose,
                "treatment": x.treatment,
            }
            for x in rows["reactions"]
        ]
        cycle = s.scalar(
            select(func.count())
            .select_from(m.DesensitizationSession)
            .where(
                m.DesensitizationSession.course_id == sess.course_id, m.DesensitizationSession.id <= sess.id
            )
        )
        active = state.active_replan_no
        nxt = state.next_step()
        blocked = _blocked(state)
        protocols_out = []
        parts = [(0, "Protocol", state.plan_steps, True)] + [
            (
                c.replan_no,
                f"Re-planned after a {c.severity} reaction at step {c.reaction_step}",
                c.steps,
                c.live,
            )
            for c in state.continuations
        ]
        for replan_no, title, planned, live in parts:
            recorded = {r.step_no: r for r in step_rows if r.replan_no == replan_no}
            steps = []
            for st in planned:
                rec = recorded.get(st.step_no)
                steps.append(
                    {
                        "step": st.step_no,
                        "bag": st.bag,
                        "rate_ml_h": st.rate_ml_h,
                        "minutes": st.minutes,
                        "volume_ml": st.volume_ml,
                        "dose_mg": st.dose_mg,
                        "cumulative_mg": st.cumulative_mg,
                        "start_clock": st.start_clock,
                        "end_clock": st.end_clock,
                        "recorded": _recorded_json(rec) if rec else None,
                        "reactions": [x for x in reactions if rec is not None and x["step_id"] == rec.id],
                        "next": nxt is not None and nxt.replan_no == replan_no and nxt.step_no == st.step_no,
                    }
                )
            if not planned:  # a session without a stored plan: its recorded steps
                for rec in sorted(recorded.values(), key=lambda r: r.step_no):
                    steps.append(
                        {
                            "step": rec.step_no,
                            "bag": rec.bag,
                            "rate_ml_h": rec.rate_ml_h,
                            "minutes": rec.minutes,
                            "dose_mg": rec.dose_mg,
                            "cumulative_mg": rec.cumulative_dose_mg,
                            "recorded": _recorded_json(rec),
                            "reactions": [x for x in reactions if x["step_id"] == rec.id],
                            "next": False,
                        }
                    )
            protocols_out.append(
                {
                    "replan_no": replan_no,
                    "title": title,
                    "active": replan_no == active,
                    "live": live,
                    "steps": steps,
                }
            )
        replans = [
            {
                **(c.get("result") or {}),
                "replan_no": c["replan_no"],
                "reaction_id": c["reaction_id"],
                "continuation": c.get("steps") or [],
                "from_replan_no": c.get("from_replan_no", 0),
                "grading": c.get("grading"),
                "vital_signs": c.get("vital_signs"),
            }
            for c in plan.get("replans") or []
        ]
        earliest = rules.earliest_start(state, nxt) if nxt is not None else None
        last_step = state.active_steps[-1] if state.active_steps else None
        last_given = (
            last_step is not None
            and (
                state.recorded(active).get(last_step.step_no) or rules.RecordedStep(0, 0, 0, "", Decimal(0))
            ).status
            == "given"
        )
        return {
            "id": sess.id,
            "session_id": sess.id,
            "patient_id": sess.patient_id,
            "pseudo_id": p.pseudo_id if p else "",
            "course_id": sess.course_id,
            "cycle": int(cycle or 1),
            "session_on": sess.session_on,
            "drug": sess.drug,
            "target_dose_mg": sess.target_dose_mg,
            "protocol": sess.protocol,
            "status": sess.status,
            "outcome": sess.outcome,
            "ended_at": clock.to_utc_stored(sess.ended_at) if sess.ended_at else None,
            "dose_given_mg": _plain(
                sess.dose_given_mg if sess.dose_given_mg is not None else state.dose_given_mg()
            ),
            "finished": state.finished,
            "engine_plan": state.engine_plan,
            "imported": bool(plan.get("imported")),
            "dosing_allowed": state.dosing_allowed,
            "request": plan.get("request") or {},
            "result": result,
            "recorded": {r.step_no: _recorded_json(r) for r in step_rows if r.replan_no == 0},
            "protocols": protocols_out,
            "active_replan_no": active,
            "reactions": reactions,
            "replans": replans,
            "next_step": None
            if nxt is None
            else {"replan_no": nxt.replan_no, "step_no": nxt.step_no, "earliest_at": earliest},
            "blocked": blocked,
            "can_complete": bool(last_given) and not state.finished,
            "rules": [r.to_dict() for r in rules.RULES.values()],
        }


def _blocked(state: rules.SessionState) -> str | None:
    """Why no step can be given now (None when the next step can)."""
    if state.finished:
        return f"The session was finished ({state.status})."
    if not state.engine_plan:
        return None
    if not state.dosing_allowed:
        return "This plan uses UNVERIFIED data and has no recorded override: not for administration."
    if state.active_replan_no and not state.active_steps:
        c = state.live_continuations[-1]
        return (
            f"The {c.severity} reaction at step {c.reaction_step} stopped the protocol; no continuation was "
            "re-planned: finish the session as stopped."
        )
    stopped = state.interrupted()
    if stopped is not None:
        return (
            f"The infusion was {stopped.status} at step {stopped.step_no}: record the reaction at that step "
            "to re-plan, or finish the session."
        )
    if state.next_step() is None:
        return "Every step of the protocol was recorded: finish the session."
    return None


def view_json(view: Any) -> Any:
    """A view with its times as clinic-local ISO text with offset (API and ``--json``)."""
    if isinstance(view, datetime):
        return clock.iso_local(view)
    if isinstance(view, Mapping):
        return {str(k): view_json(v) for k, v in view.items()}
    if isinstance(view, (list, tuple)):
        return [view_json(v) for v in view]
    return to_jsonable(view)
