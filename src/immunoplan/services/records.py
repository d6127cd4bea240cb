"""Registry use cases shared by the CLI, the web app and the tests.

Each function runs in exactly one audited transaction (`Registry.transaction(actor, use_case)`): it validates
its input first (`InvalidInput` naming the field, nothing written), writes, and returns a JSON-able dict.
Patients are addressed by their pseudonymous id (``pseudo_id``).

Use cases: `register_patient`, `record_measurement`, `record_questionnaire`, `record_visit`, `assess`,
`plan_course`, `record_injection`, `record_omalizumab`, `start_desensitization`, `record_step`,
`record_reaction`, `record_dose_decision`, `list_due_injections`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import checks as ck
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry


def _patient(s: Session, pseudo_id: Any) -> m.Patient:
    pid = ck.not_empty("pseudo_id", pseudo_id)
    p = s.scalar(select(m.Patient).where(m.Patient.pseudo_id == pid))
    if p is None:
        raise InvalidInput("pseudo_id", f"no patient {pid!r} in the registry")
    return p


def _course(s: Session, course_id: Any) -> m.Course:
    c = s.get(m.Course, int(ck.to_float("course_id", course_id)))
    if c is None:
        raise InvalidInput("course_id", f"no course {course_id!r} in the registry")
    return c


def _visit(s: Session, patient: m.Patient, code: Any) -> m.Visit | None:
    if code in (None, ""):
        return None
    code = ck.choice("visit_code", code, m.VISIT_CODES)
    v = s.scalar(
        select(m.Visit)
        .where(m.Visit.patient_id == patient.id, m.Visit.code == code)
        .order_by(m.Visit.visit_on.desc())
    )
    if v is None:
        raise InvalidInput("visit_code", f"patient {patient.pseudo_id} has no {code} visit; record it first")
    return v


def _row(obj: m.Base) -> dict[str, Any]:
    return {c.key: to_jsonable(getattr(obj, c.key)) for c in obj.__mapper__.column_attrs}


def _save(s: Session, row: m.Base) -> dict[str, Any]:
    """Add ``row``, flush (so it gets its id) and return it as a JSON-able dict."""
    s.add(row)
    s.flush()
    return _row(row)


def _blank(value: Any) -> bool:
    return value in (None, "")


def _opt_int(field: str, value: Any) -> int | None:
    return None if _blank(value) else int(ck.to_float(field, value))


def _opt_float(field: str, value: Any) -> float | None:
    return None if _blank(value) else ck.to_float(field, value)


def _opt_decimal(field: str, value: Any, *, allow_zero: bool = False) -> Decimal | None:
    return None if _blank(value) else ck.positive_decimal(field, value, allow_zero=allow_zero)


def _opt_course_id(s: Session, course_id: Any) -> int | None:
    return None if _blank(course_id) else _course(s, course_id).id


def _basis_json(basis: Any) -> Any:
    """The caller's basis as a JSON-able list (a single item is wrapped; None stays None)."""
    return to_jsonable(basis if isinstance(basis, list) or basis is None else [basis])


def _result_basis(basis: Any) -> list[Any] | None:
    """The basis found in a stored result, as a list (None when empty)."""
    return basis if isinstance(basis, list) else ([basis] if basis else None)


def register_patient(
    reg: Registry,
    actor: str,
    *,
    pseudo_id: str,
    sex: str = "unknown",
    birth_date: Any = None,
    age_years: Any = None,
    age_group: str | None = None,
    height_cm: Any = None,
    display_name: str | None = None,
    smoking: str | None = None,
    asthma_step: Any = None,
    cohort: str = "clinic",
    study_group: str | None = None,
    enrolled_on: Any = None,
    diagnoses: Iterable[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Register a pseudonymous patient (with optional coded diagnoses)."""
    pid = ck.not_empty("pseudo_id", pseudo_id)
    values = dict(
        pseudo_id=pid,
        display_name=display_name or None,
        sex=ck.choice("sex", sex, m.SEXES),
        birth_date=ck.to_date("birth_date", birth_date) if birth_date else None,
        age_years=_int(ck.patient_number("age_years", age_years)),
        age_group=ck.optional_choice("age_group", age_group, m.AGE_GROUPS),
        height_cm=ck.patient_number("height_cm", height_cm),
        smoking=ck.optional_choice("smoking", smoking, m.SMOKING),
        asthma_step=_int(ck.patient_number("asthma_step", asthma_step)),
        cohort=ck.not_empty("cohort", cohort),
        study_group=study_group or None,
        enrolled_on=ck.to_date("enrolled_on", enrolled_on) if enrolled_on else None,
    )
    with reg.transaction(actor, "register_patient") as s:
        if s.scalar(select(m.Patient.id).where(m.Patient.pseudo_id == pid)) is not None:
            raise InvalidInput("pseudo_id", f"patient {pid!r} already exists")
        p = m.Patient(**values)
        s.add(p)
        s.flush()
        for d in diagnoses:
            s.add(
                m.Diagnosis(
                    patient_id=p.id,
                    code=ck.not_empty("diagnosis.code", d.get("code")),
                    system=d.get("system", "immunoplan"),
                    label=d.get("label"),
                    allergen=d.get("allergen"),
                    severity=d.get("severity"),
                )
            )
        s.flush()
        return _row(p)


def _int(x: float | None) -> int | None:
    return None if x is None else int(x)


def record_visit(
    reg: Registry,
    actor: str,
    *,
    pseudo_id: str,
    code: str,
    visit_on: Any,
    week: Any = None,
    course_id: Any = None,
    asthma_step: Any = None,
    medication_score: Any = None,
    notes: str | None = None,
) -> dict[str, Any]:
    """Record a visit (baseline, week12, week24, week48, month12 ...)."""
    code = ck.choice("code", code, m.VISIT_CODES)
    day = ck.to_date("visit_on", visit_on)
    wk = _opt_int("week", week)
    med = _opt_float("medication_score", medication_score)
    if med is not None and med < 0:
        raise InvalidInput("medication_score", "must not be negative", "[0, inf)")
    with reg.transaction(actor, "record_visit") as s:
        p = _patient(s, pseudo_id)
        v = m.Visit(
            patient_id=p.id,
            code=code,
            visit_on=day,
            week=wk,
            medication_score=med,
            notes=notes,
            asthma_step=_int(ck.patient_number("asthma_step", asthma_step)),
            course_id=_opt_course_id(s, course_id),
        )
        return _save(s, v)


def record_measurement(
    reg: Registry,
    actor: str,
    *,
    pseudo_id: str,
    kind: str,
    value: Any,
    measured_on: Any,
    allergen: str = "",
    unit: str | None = None,
    visit_code: str | None = None,
    pct_predicted: Any = None,
    z_score: Any = None,
    reference_equation: str | None = None,
    method: str | None = None,
) -> dict[str, Any]:
    """Record one laboratory or lung-function result (unit and plausible range checked)."""
    kind, v, allergen, unit = ck.measurement(kind, value, allergen, unit)
    day = ck.to_date("measured_on", measured_on)
    with reg.transaction(actor, "record_measurement") as s:
        p = _patient(s, pseudo_id)
        visit = _visit(s, p, visit_code)
        row = m.Measurement(
            patient_id=p.id,
            visit_id=visit.id if visit else None,
            kind=kind,
            allergen=allergen,
            value=v,
            unit=unit,
            measured_on=day,
            reference_equation=reference_equation,
            method=method,
            pct_predicted=_opt_float("pct_predicted", pct_predicted),
            z_score=_opt_float("z_score", z_score),
        )
        return _save(s, row)


def record_questionnaire(
    reg: Registry,
    actor: str,
    *,
    pseudo_id: str,
    instrument: str,
    score: Any,
    completed_on: Any,
    items: list[Any] | None = None,
    visit_code: str | None = None,
) -> dict[str, Any]:
    """Record a questionnaire score (ACT, C-ACT, ACQ-5/6/7, AQLQ, mini-AQLQ) with optional item answers."""
    instrument, sc = ck.questionnaire_score(instrument, score)
    day = ck.to_date("completed_on", completed_on)
    with reg.transaction(actor, "record_questionnaire") as s:
        p = _patient(s, pseudo_id)
        visit = _visit(s, p, visit_code)
        row = m.Questionnaire(
            patient_id=p.id,
            visit_id=visit.id if visit else None,
            instrument=instrument,
            score=sc,
            completed_on=day,
            items=items,
        )
        return _save(s, row)


def _assessment_engine() -> Any:
    """Engineer A's `services.assessment.assess_patient`, if it is installed."""
    try:
        from immunoplan.services import assessment  # type: ignore[attr-defined]
    except ImportError:
        return None
    return getattr(assessment, "assess_patient", None)


def _find(result: Any, *keys: str) -> Any:
    """First value found under any of ``keys`` in a nested result dict."""
    if isinstance(result, dict):
        for k in keys:
            if k in result and not isinstance(result[k], (dict, list)):
                return result[k]
        for v in result.values():
            found = _find(v, *keys)
            if found is not None:
                return found
    return None


def assess(
    reg: Registry,
    actor: str,
    *,
    pseudo_id: str,
    inputs: dict[str, Any],
    result: Any = None,
    course_id: Any = None,
) -> dict[str, Any]:
    """Store the risk assessment that was shown.

    Without ``result`` the assessment engine (`immunoplan.services.assessment.assess_patient`) computes it
    from ``inputs``; when that engine is not installed the caller must pass the result it showed.
    """
    if result is None:
        engine = _assessment_engine()
        if engine is None:
            raise InvalidInput("result", "no assessment engine installed: pass the result that was shown")
        result = engine(**inputs)
    data = to_jsonable(result)
    if not isinstance(data, dict):
        raise InvalidInput("result", "must be an object")
    basis = data.get("rules") or data.get("basis")
    with reg.transaction(actor, "assess") as s:
        p = _patient(s, pseudo_id)
        row = m.RiskAssessment(
            patient_id=p.id,
            actor=actor,
            inputs=to_jsonable(inputs),
            result=data,
            course_id=_opt_course_id(s, course_id),
            age_group=_find(data, "age_group"),
            risk_tier=_find(data, "risk_tier", "tier"),
            sige_class=_find(data, "sige_class"),
            sige_total_ratio_pct=_find(data, "sige_total_ratio_pct", "ratio_pct", "ratio_percent"),
            sige_kua_l=_num(inputs.get("sige_kua_l", inputs.get("sige"))),
            total_ige_iu_ml=_num(inputs.get("total_ige_iu_ml", inputs.get("total_ige"))),
            advice=_find(data, "advice", "recommendation"),
            basis=_result_basis(basis),
        )
        return _save(s, row)


def _num(x: Any) -> float | None:
    try:
        return None if x in (None, "") else float(x)
    except (TypeError, ValueError):
        return None


def plan_course(
    reg: Registry,
    actor: str,
    *,
    pseudo_id: str,
    kind: str,
    started_on: Any = None,
    product: str | None = None,
    allergen: str | None = None,
    drug: str | None = None,
    regimen: str | None = None,
    with_omalizumab: bool = False,
    omalizumab_timing: str = "none",
    target_dose: Any = None,
    dose_unit: str | None = None,
    interval_days: Any = None,
    plan: Any = None,
    basis: Any = None,
    status: str = "planned",
) -> dict[str, Any]:
    """Store a treatment course and the plan that was shown (with its basis)."""
    kind = ck.choice("kind", kind, m.COURSE_KINDS)
    timing = ck.choice("omalizumab_timing", omalizumab_timing, m.OMALIZUMAB_TIMINGS)
    if with_omalizumab and timing == "none":
        raise InvalidInput(
            "omalizumab_timing", "must be pre or concurrent when with_omalizumab", "pre, concurrent"
        )
    start = ck.to_date("started_on", started_on) if started_on else None
    interval = _opt_int("interval_days", interval_days)
    if interval is not None and interval < 1:
        raise InvalidInput("interval_days", "must be at least 1", "[1, inf)")
    with reg.transaction(actor, "plan_course") as s:
        p = _patient(s, pseudo_id)
        c = m.Course(
            patient_id=p.id,
            kind=kind,
            product=product,
            allergen=allergen,
            drug=drug,
            regimen=regimen,
            with_omalizumab=bool(with_omalizumab),
            omalizumab_timing=timing,
            status=ck.choice("status", status, m.COURSE_STATUSES),
            started_on=start,
            target_dose=_opt_decimal("target_dose", target_dose),
            dose_unit=dose_unit,
            interval_days=interval,
            next_due_on=start,
            plan=to_jsonable(plan) if plan is not None else None,
            basis=_basis_json(basis),
        )
        return _save(s, c)


def record_injection(
    reg: Registry,
    actor: str,
    *,
    course_id: Any,
    given_at: Any,
    dose: Any,
    dose_unit: str,
    volume_ml: Any = None,
    vial: str | None = None,
    site: str | None = None,
    lot: str | None = None,
    phase: str | None = None,
    observed_minutes: Any = None,
    next_due_on: Any = None,
) -> dict[str, Any]:
    """Record an immunotherapy injection; the course becomes active and its next due date moves on
    (``next_due_on`` if given, else given date + the course's planned ``interval_days``). Reaching the
    course's target dose marks ``target_reached``."""
    when = ck.to_datetime("given_at", given_at)
    d = ck.positive_decimal("dose", dose)
    vol = _opt_decimal("volume_ml", volume_ml)
    unit = ck.not_empty("dose_unit", dose_unit)
    with reg.transaction(actor, "record_injection") as s:
        c = _course(s, course_id)
        if c.kind not in ("SCIT", "RIT", "cluster", "OIT"):
            raise InvalidInput("course_id", f"course {c.id} is {c.kind}, not an immunotherapy course")
        seq = (s.scalar(select(func.count()).where(m.Injection.course_id == c.id)) or 0) + 1
        inj = m.Injection(
            course_id=c.id,
            patient_id=c.patient_id,
            sequence=seq,
            given_at=when,
            dose=d,
            dose_unit=unit,
            volume_ml=vol,
            vial=vial,
            site=site,
            lot=lot,
            given_by=actor,
            phase=ck.optional_choice("phase", phase, m.INJECTION_PHASES),
            observed_minutes=None if observed_minutes in (None, "") else int(observed_minutes),
        )
        s.add(inj)
        if c.status == "planned":
            c.status = "active"
            c.started_on = c.started_on or when.date()
        if next_due_on not in (None, ""):
            c.next_due_on = ck.to_date("next_due_on", next_due_on)
        elif c.interval_days:
            c.next_due_on = when.date() + timedelta(days=c.interval_days)
        if c.target_dose is not None and c.dose_unit == unit and d >= c.target_dose and not c.target_reached:
            c.target_reached, c.target_reached_on = True, when.date()
        s.flush()
        return _row(inj)


def record_omalizumab(
    reg: Registry,
    actor: str,
    *,
    pseudo_id: str,
    given_at: Any,
    dose_mg: Any,
    course_id: Any = None,
    interval_weeks: Any = None,
    site: str | None = None,
    lot: str | None = None,
    basis: Any = None,
) -> dict[str, Any]:
    """Record an omalizumab administration."""
    when = ck.to_datetime("given_at", given_at)
    dose = ck.positive_decimal("dose_mg", dose_mg)
    with reg.transaction(actor, "record_omalizumab") as s:
        p = _patient(s, pseudo_id)
        row = m.OmalizumabAdministration(
            patient_id=p.id,
            given_at=when,
            dose_mg=dose,
            site=site,
            lot=lot,
            course_id=_opt_course_id(s, course_id),
            interval_weeks=_opt_int("interval_weeks", interval_weeks),
            basis=_basis_json(basis),
        )
        return _save(s, row)


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
) -> dict[str, Any]:
    """Open a rapid drug desensitization session (the plan shown is stored with it)."""
    day = ck.to_date("session_on", session_on)
    target = ck.positive_decimal("target_dose_mg", target_dose_mg)
    with reg.transaction(actor, "start_desensitization") as s:
        c = _course(s, course_id)
        if c.kind != "drug_desensitization":
            raise InvalidInput("course_id", f"course {c.id} is {c.kind}, not a drug desensitization course")
        row = m.DesensitizationSession(
            course_id=c.id,
            patient_id=c.patient_id,
            session_on=day,
            drug=ck.not_empty("drug", drug),
            target_dose_mg=target,
            protocol=protocol,
            plan=to_jsonable(plan) if plan is not None else None,
            basis=_basis_json(basis),
        )
        s.add(row)
        if c.status == "planned":
            c.status = "active"
        s.flush()
        return _row(row)


def record_step(
    reg: Registry,
    actor: str,
    *,
    session_id: Any,
    step_no: Any,
    dose_mg: Any,
    bag: Any = None,
    rate_ml_h: Any = None,
    minutes: Any = None,
    started_at: Any = None,
    status: str = "given",
) -> dict[str, Any]:
    """Record one desensitization step given (cumulative dose computed exactly from earlier steps)."""
    n = int(ck.to_float("step_no", step_no))
    if n < 1:
        raise InvalidInput("step_no", "must be at least 1", "[1, inf)")
    dose = ck.positive_decimal("dose_mg", dose_mg, allow_zero=True)
    status = ck.choice("status", status, ("given", "paused", "skipped", "stopped"))
    with reg.transaction(actor, "record_step") as s:
        sess = s.get(m.DesensitizationSession, int(ck.to_float("session_id", session_id)))
        if sess is None:
            raise InvalidInput("session_id", f"no desensitization session {session_id!r}")
        earlier = s.scalars(
            select(m.DesensitizationStep.dose_mg).where(
                m.DesensitizationStep.session_id == sess.id,
                m.DesensitizationStep.step_no < n,
                m.DesensitizationStep.status == "given",
            )
        ).all()
        cumulative = sum(earlier, Decimal(0)) + (dose if status == "given" else Decimal(0))
        row = m.DesensitizationStep(
            session_id=sess.id,
            step_no=n,
            dose_mg=dose,
            cumulative_dose_mg=cumulative,
            status=status,
            bag=_opt_int("bag", bag),
            rate_ml_h=_opt_decimal("rate_ml_h", rate_ml_h),
            minutes=_opt_decimal("minutes", minutes),
            started_at=ck.to_datetime("started_at", started_at) if started_at else None,
        )
        return _save(s, row)


def _grade(scale: str, findings: list[str], treatments: list[str]) -> dict[str, Any] | None:
    """Grade with `immunoplan.clinical.reactions.grade` when it knows ``scale`` (else None)."""
    try:
        from immunoplan.clinical import reactions
    except ImportError:  # pragma: no cover - engine not installed
        return None
    if scale not in reactions.SCALES:
        return None
    g = reactions.grade(
        scale, reactions.Findings(symptoms=frozenset(findings), treatments=frozenset(treatments))
    )
    return {"grade": g.grade, "scale_version": g.scale_version, "basis": g.basis.to_dict()}


def record_reaction(
    reg: Registry,
    actor: str,
    *,
    pseudo_id: str,
    kind: str,
    grade: str | None = None,
    scale: str | None = None,
    scale_version: str | None = None,
    findings: list[str] | None = None,
    onset_at: Any = None,
    injection_id: Any = None,
    omalizumab_administration_id: Any = None,
    desensitization_step_id: Any = None,
    visit_code: str | None = None,
    treatment: str | None = None,
    treatments: list[str] | None = None,
    outcome: str | None = None,
    basis: Any = None,
) -> dict[str, Any]:
    """Record a reaction linked to its cause. Timing is derived: minutes after the causing dose and days from
    the course's first dose. Without ``grade``, the findings (symptom codes) and ``treatments`` are graded on
    ``scale`` by `immunoplan.clinical.reactions.grade` (wao2010, wao2017, brown2004, ctcae-*, seed001), which
    also supplies the scale version and basis; otherwise the caller's grade on its named scale is stored."""
    kind = ck.choice("kind", kind, m.REACTION_KINDS)
    onset = ck.to_datetime("onset_at", onset_at) if onset_at else None
    if grade in (None, "") and findings and scale:
        graded = _grade(scale, findings, treatments or [])
        if graded is not None:
            grade, scale_version = graded["grade"], graded["scale_version"]
            basis = basis or graded["basis"]
    if treatment is None and treatments:
        treatment = ", ".join(treatments)
    if grade not in (None, "") and not scale:
        raise InvalidInput("scale", "a grade needs the name of its scale", "e.g. wao2010, brown2004, seed001")
    with reg.transaction(actor, "record_reaction") as s:
        p = _patient(s, pseudo_id)
        course_id, dose_time = None, None
        if injection_id not in (None, ""):
            inj = s.get(m.Injection, int(ck.to_float("injection_id", injection_id)))
            if inj is None or inj.patient_id != p.id:
                raise InvalidInput("injection_id", f"no injection {injection_id!r} for patient {p.pseudo_id}")
            course_id, dose_time = inj.course_id, inj.given_at
        if omalizumab_administration_id not in (None, ""):
            om = s.get(
                m.OmalizumabAdministration,
                int(ck.to_float("omalizumab_administration_id", omalizumab_administration_id)),
            )
            if om is None or om.patient_id != p.id:
                raise InvalidInput("omalizumab_administration_id", "no such administration for this patient")
            course_id, dose_time = course_id or om.course_id, dose_time or om.given_at
        step_id = None
        if desensitization_step_id not in (None, ""):
            st = s.get(
                m.DesensitizationStep, int(ck.to_float("desensitization_step_id", desensitization_step_id))
            )
            if st is None:
                raise InvalidInput("desensitization_step_id", "no such desensitization step")
            sess = s.get(m.DesensitizationSession, st.session_id)
            if sess is None or sess.patient_id != p.id:
                raise InvalidInput("desensitization_step_id", "step belongs to another patient")
            step_id, course_id, dose_time = st.id, course_id or sess.course_id, dose_time or st.started_at
        minutes = days = None
        if onset is not None and dose_time is not None:
            dt = dose_time if dose_time.tzinfo else dose_time.replace(tzinfo=onset.tzinfo)
            minutes = int((onset - dt).total_seconds() // 60)
            if minutes < 0:
                raise InvalidInput("onset_at", "is before the dose that caused it")
        if onset is not None and course_id is not None:
            first = s.scalar(select(func.min(m.Injection.given_at)).where(m.Injection.course_id == course_id))
            if first is not None:
                days = (onset.date() - first.date()).days
        visit = _visit(s, p, visit_code)
        row = m.Reaction(
            patient_id=p.id,
            course_id=course_id,
            visit_id=visit.id if visit else None,
            injection_id=int(injection_id) if injection_id not in (None, "") else None,
            omalizumab_administration_id=int(omalizumab_administration_id)
            if omalizumab_administration_id not in (None, "")
            else None,
            desensitization_step_id=step_id,
            kind=kind,
            onset_at=onset,
            minutes_after_dose=minutes,
            days_from_first_dose=days,
            findings=findings,
            grade=None if grade in (None, "") else str(grade),
            scale=scale,
            scale_version=scale_version,
            treatment=treatment,
            outcome=outcome,
            basis=_basis_json(basis),
        )
        return _save(s, row)


def record_dose_decision(
    reg: Registry,
    actor: str,
    *,
    pseudo_id: str,
    kind: str,
    result: Any,
    inputs: dict[str, Any] | None = None,
    course_id: Any = None,
    dose: Any = None,
    dose_unit: str | None = None,
    override_reason: str | None = None,
) -> dict[str, Any]:
    """Store the dose decision that was shown (dose, do-not-dose, outside-table, override ...).
    An override must say why (UNVERIFIED data never doses without a recorded override)."""
    kind = ck.not_empty("kind", kind)
    if kind == "override" and not (override_reason or "").strip():
        raise InvalidInput("override_reason", "an override must record its reason")
    data = to_jsonable(result)
    basis = data.get("basis") if isinstance(data, dict) else None
    with reg.transaction(actor, "record_dose_decision") as s:
        p = _patient(s, pseudo_id)
        row = m.DoseDecision(
            patient_id=p.id,
            actor=actor,
            kind=kind,
            result=data if isinstance(data, dict) else {"value": data},
            inputs=to_jsonable(inputs),
            override_reason=override_reason,
            dose_unit=dose_unit,
            dose=_opt_decimal("dose", dose, allow_zero=True),
            course_id=_opt_course_id(s, course_id),
            basis=_result_basis(basis),
        )
        return _save(s, row)


def list_due_injections(
    reg: Registry, *, as_of: Any = None, window_days: int = 0, grace_days: int = 0
) -> list[dict[str, Any]]:
    """Active immunotherapy courses whose next injection is due by ``as_of + window_days``.

    ``status`` is ``late`` when more than ``grace_days`` past the due date, else ``due``. Both windows are the
    caller's (clinic policy), not clinical thresholds; the missed-dose rules live in the protocol engine.
    """
    day = ck.to_date("as_of", as_of) if as_of else date.today()
    for name, val in (("window_days", window_days), ("grace_days", grace_days)):
        if int(val) < 0:
            raise InvalidInput(name, "must not be negative", "[0, inf)")
    horizon = day + timedelta(days=int(window_days))
    with reg.session() as s:
        rows = s.execute(
            select(m.Course, m.Patient.pseudo_id)
            .join(m.Patient, m.Patient.id == m.Course.patient_id)
            .where(
                m.Course.status == "active",
                m.Course.kind.in_(("SCIT", "RIT", "cluster", "OIT")),
                m.Course.next_due_on.is_not(None),
                m.Course.next_due_on <= horizon,
            )
            .order_by(m.Course.next_due_on, m.Course.id)
        ).all()
        out = []
        for c, pid in rows:
            assert c.next_due_on is not None  # filtered above
            overdue = (day - c.next_due_on).days
            last = s.scalar(select(func.max(m.Injection.given_at)).where(m.Injection.course_id == c.id))
            out.append(
                dict(
                    pseudo_id=pid,
                    course_id=c.id,
                    kind=c.kind,
                    product=c.product,
                    next_due_on=c.next_due_on.isoformat(),
                    days_overdue=max(overdue, 0),
                    last_injection_at=last.isoformat() if isinstance(last, datetime) else None,
                    status="late" if overdue > int(grace_days) else "due",
                )
            )
        return out
