"""FHIR R4 export and import (``fhir.resources.R4B`` models; a ``collection`` Bundle).

Mapping (resource id = ``<table>-<row id>``; local code systems ``urn:immunoplan:*`` carry what FHIR has no
code for, so a Bundle round-trips back into a registry):

- Patient                 <- patients (identifier ``urn:immunoplan:pseudo_id``; cohort/study group extensions)
- Observation             <- measurements (LOINC code when known in ``registry_measurements``, always plus
                             the local kind code; UCUM quantity) and questionnaires (local instrument code)
- AllergyIntolerance      <- diagnoses that name an allergen
- Procedure               <- courses (kind, product, period, status, target dose reached)
- Encounter               <- visits (visit code, date, week, asthma step, medication burden); Observations and
                             AdverseEvents point to the visit as their ``encounter``
- MedicationAdministration<- injections (partOf the course Procedure; dose, vial, volume) and omalizumab doses
- AdverseEvent            <- reactions (kind, findings, grade + scale + version, timing, suspect dose)

Assessments, dose decisions and desensitization sessions/steps are not exported to FHIR yet.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from immunoplan import clock
from immunoplan.errors import InvalidInput
from immunoplan.reference import load
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SYS = "urn:immunoplan:"
EXT = "urn:immunoplan:fhir:"
COURSE_STATUS = {
    "planned": "preparation",
    "active": "in-progress",
    "completed": "completed",
    "stopped": "stopped",
}
COURSE_STATUS_BACK = {v: k for k, v in COURSE_STATUS.items()}
OUTCOME = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome"


def _ext(name: str, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return {"url": EXT + name, "valueBoolean": value}
    if isinstance(value, int):
        return {"url": EXT + name, "valueInteger": value}
    if isinstance(value, (Decimal, float)):
        return {"url": EXT + name, "valueDecimal": value}
    return {"url": EXT + name, "valueString": str(value)}


def _exts(**values: Any) -> list[dict[str, Any]]:
    return [e for k, v in values.items() if (e := _ext(k, v)) is not None]


def _dt(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def _ref(table: str, row_id: int | None) -> dict[str, str] | None:
    return None if row_id is None else {"reference": f"{_rtype(table)}/{_rid_of(table, row_id)}"}


def _rid_of(table: str, row_id: int) -> str:
    """Resource id of a registry row (FHIR ids allow letters, digits, '-' and '.')."""
    return f"{table.replace('_', '-')}-{row_id}"


def _rtype(table: str) -> str:
    return {
        "patients": "Patient",
        "courses": "Procedure",
        "visits": "Encounter",
        "injections": "MedicationAdministration",
        "omalizumab_administrations": "MedicationAdministration",
        "measurements": "Observation",
    }[table]


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v not in (None, [], {})}


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _course_key(course_id: int | None) -> str | None:
    """The course a row belongs to, as the resource id of its Procedure (an extension value)."""
    return f"courses-{course_id}" if course_id else None


def _observation_resource(
    rid: str,
    code: dict[str, Any],
    patient_id: int,
    visit_id: int | None,
    day: date,
    value: dict[str, Any],
    **more: Any,
) -> dict[str, Any]:
    """A final Observation of one patient (optionally at a visit) on ``day``; ``more`` adds elements."""
    return _clean(
        {
            "resourceType": "Observation",
            "id": rid,
            "status": "final",
            "code": code,
            "subject": _ref("patients", patient_id),
            "encounter": _ref("visits", visit_id),
            "effectiveDateTime": day.isoformat(),
            "valueQuantity": value,
            **more,
        }
    )


def _medication_administration(
    rid: str,
    medication: str,
    text: str,
    patient_id: int,
    course_id: int | None,
    given_at: datetime,
    dose: dict[str, Any],
    site: str | None,
    extension: list[dict[str, Any]],
) -> dict[str, Any]:
    """A completed MedicationAdministration (part of its course's Procedure when it has one)."""
    return _clean(
        {
            "resourceType": "MedicationAdministration",
            "id": rid,
            "status": "completed",
            "medicationCodeableConcept": {
                "coding": [{"system": SYS + "medication", "code": medication}],
                "text": text,
            },
            "subject": _ref("patients", patient_id),
            "partOf": [_ref("courses", course_id)] if course_id else None,
            "effectiveDateTime": _dt(given_at),
            "dosage": _clean({"dose": dose, "site": {"text": site} if site else None}),
            "extension": extension,
        }
    )


# ---------------------------------------------------------------------------------------------- export
def _patient(p: m.Patient) -> dict[str, Any]:
    return _clean(
        {
            "resourceType": "Patient",
            "id": f"patients-{p.id}",
            "identifier": [{"system": SYS + "pseudo_id", "value": p.pseudo_id}],
            "name": [{"text": p.display_name}] if p.display_name else None,
            "gender": p.sex,
            "birthDate": _iso(p.birth_date),
            "extension": _exts(
                cohort=p.cohort,
                study_group=p.study_group,
                age_years=p.age_years,
                age_group=p.age_group,
                height_cm=p.height_cm,
                asthma_step=p.asthma_step,
                enrolled_on=_iso(p.enrolled_on),
            ),
        }
    )


def _observation(x: m.Measurement, spec: dict[str, Any]) -> dict[str, Any]:
    coding = [{"system": SYS + "measurement", "code": x.kind, "display": spec["label"]}]
    loinc = spec.get("loinc")
    if x.allergen and spec.get("loinc_by_allergen", {}).get(x.allergen):
        hit = spec["loinc_by_allergen"][x.allergen]
        coding.insert(0, {"system": LOINC, "code": hit["loinc"], "display": hit["display"]})
    elif loinc:
        coding.insert(0, {"system": LOINC, "code": loinc, "display": spec.get("loinc_display")})
    return _observation_resource(
        f"measurements-{x.id}",
        {
            "coding": [_clean(c) for c in coding],
            "text": spec["label"] + (f" ({x.allergen})" if x.allergen else ""),
        },
        x.patient_id,
        x.visit_id,
        x.measured_on,
        {"value": x.value, "unit": x.unit, "system": UCUM, "code": spec["ucum"]},
        extension=_exts(
            allergen=x.allergen or None,
            pct_predicted=x.pct_predicted,
            z_score=x.z_score,
            reference_equation=x.reference_equation,
            method=x.method,
        ),
    )


def _questionnaire(q: m.Questionnaire) -> dict[str, Any]:
    return _observation_resource(
        f"questionnaires-{q.id}",
        {
            "coding": [{"system": SYS + "questionnaire", "code": q.instrument}],
            "text": f"{q.instrument} score",
        },
        q.patient_id,
        q.visit_id,
        q.completed_on,
        {"value": q.score, "unit": "score"},
        component=[
            {"code": {"text": f"item {i}"}, "valueQuantity": {"value": v}}
            for i, v in enumerate(q.items or [], start=1)
        ]
        or None,
    )


def _allergy(d: m.Diagnosis) -> dict[str, Any]:
    return _clean(
        {
            "resourceType": "AllergyIntolerance",
            "id": f"diagnoses-{d.id}",
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                        "code": "active",
                    }
                ]
            },
            "type": "allergy",
            "code": {
                "coding": [
                    {"system": SYS + "allergen", "code": d.allergen},
                    {"system": SYS + "diagnosis", "code": d.code},
                ],
                "text": d.label,
            },
            "patient": _ref("patients", d.patient_id),
            "extension": _exts(severity=d.severity, system=d.system, onset_on=_iso(d.onset_on)),
        }
    )


def _procedure(c: m.Course) -> dict[str, Any]:
    return _clean(
        {
            "resourceType": "Procedure",
            "id": f"courses-{c.id}",
            "status": COURSE_STATUS[c.status],
            "code": {
                "coding": [{"system": SYS + "course-kind", "code": c.kind}],
                "text": c.product or c.kind,
            },
            "subject": _ref("patients", c.patient_id),
            "performedPeriod": _clean({"start": _iso(c.started_on), "end": _iso(c.ended_on)}) or None,
            "extension": _exts(
                allergen=c.allergen,
                drug=c.drug,
                regimen=c.regimen,
                with_omalizumab=c.with_omalizumab,
                omalizumab_timing=c.omalizumab_timing,
                target_dose=c.target_dose,
                dose_unit=c.dose_unit,
                target_reached=c.target_reached,
                interval_days=c.interval_days,
            ),
        }
    )


def _encounter(v: m.Visit) -> dict[str, Any]:
    return _clean(
        {
            "resourceType": "Encounter",
            "id": f"visits-{v.id}",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "type": [{"coding": [{"system": SYS + "visit", "code": v.code}]}],
            "subject": _ref("patients", v.patient_id),
            "period": {"start": v.visit_on.isoformat()},
            "extension": _exts(
                week=v.week,
                asthma_step=v.asthma_step,
                medication_score=v.medication_score,
                course=_course_key(v.course_id),
                notes=v.notes,
            ),
        }
    )


def _injection(i: m.Injection, product: str | None) -> dict[str, Any]:
    return _medication_administration(
        f"injections-{i.id}",
        "allergen-extract",
        product or "allergen extract",
        i.patient_id,
        i.course_id,
        i.given_at,
        {"value": i.dose, "unit": i.dose_unit},
        i.site,
        _exts(
            sequence=i.sequence,
            phase=i.phase,
            vial=i.vial,
            volume_ml=i.volume_ml,
            lot=i.lot,
            observed_minutes=i.observed_minutes,
        ),
    )


def _omalizumab(o: m.OmalizumabAdministration) -> dict[str, Any]:
    return _medication_administration(
        _rid_of("omalizumab_administrations", o.id),
        "omalizumab",
        "omalizumab",
        o.patient_id,
        o.course_id,
        o.given_at,
        {"value": o.dose_mg, "unit": "mg", "system": UCUM, "code": "mg"},
        o.site,
        _exts(interval_weeks=o.interval_weeks, lot=o.lot),
    )


def _adverse_event(r: m.Reaction) -> dict[str, Any]:
    suspect = _ref("injections", r.injection_id) or _ref(
        "omalizumab_administrations", r.omalizumab_administration_id
    )
    return _clean(
        {
            "resourceType": "AdverseEvent",
            "id": f"reactions-{r.id}",
            "actuality": "actual",
            "event": {
                "coding": [{"system": SYS + "reaction-kind", "code": r.kind}],
                "text": ", ".join(r.findings or []) or r.kind,
            },
            "subject": _ref("patients", r.patient_id),
            "encounter": _ref("visits", r.visit_id),
            "date": _dt(r.onset_at),
            "outcome": {"coding": [{"system": OUTCOME, "code": r.outcome}]}
            if r.outcome in ("resolved", "recovering", "ongoing", "resolvedWithSequelae", "fatal", "unknown")
            else None,
            "suspectEntity": [{"instance": suspect}] if suspect else None,
            "extension": _exts(
                grade=r.grade,
                scale=r.scale,
                scale_version=r.scale_version,
                minutes_after_dose=r.minutes_after_dose,
                days_from_first_dose=r.days_from_first_dose,
                treatment=r.treatment,
                findings=";".join(r.findings) if r.findings else None,
                course=_course_key(r.course_id),
            ),
        }
    )


def export_bundle(reg: Registry, *, pseudo_ids: list[str] | None = None) -> dict[str, Any]:
    """A validated FHIR R4 ``collection`` Bundle (JSON-ready dict) of the whole registry or some patients."""
    kinds = load("registry_measurements")["kinds"]
    resources: list[dict[str, Any]] = []
    with reg.session() as s:
        q = select(m.Patient).order_by(m.Patient.id)
        if pseudo_ids:
            q = q.where(m.Patient.pseudo_id.in_(pseudo_ids))
        patients = s.scalars(q).all()
        ids = [p.id for p in patients]

        def rows(model: Any) -> list[Any]:
            q = select(model).where(model.patient_id.in_(ids)).order_by(model.id)
            if hasattr(model, "voided_at"):  # corrections: voided entries are not exported
                q = q.where(model.voided_at.is_(None))
            return list(s.scalars(q))

        resources += [_patient(p) for p in patients]
        resources += [_allergy(d) for d in rows(m.Diagnosis) if d.allergen]
        courses = rows(m.Course)
        product = {c.id: c.product for c in courses}
        resources += [_procedure(c) for c in courses]
        resources += [_encounter(v) for v in rows(m.Visit)]
        resources += [_observation(x, kinds[x.kind]) for x in rows(m.Measurement)]
        resources += [_questionnaire(x) for x in rows(m.Questionnaire)]
        resources += [_injection(i, product.get(i.course_id)) for i in rows(m.Injection)]
        resources += [_omalizumab(o) for o in rows(m.OmalizumabAdministration)]
        resources += [_adverse_event(r) for r in rows(m.Reaction)]
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": clock.now().isoformat(),
        "entry": [
            {"fullUrl": f"urn:immunoplan:{r['resourceType']}/{r['id']}", "resource": r} for r in resources
        ],
    }
    return validate_bundle(bundle).model_dump(mode="json", exclude_none=True)


def validate_bundle(data: dict[str, Any]) -> Bundle:
    """Parse and validate with fhir.resources (R4B); a problem is an `InvalidInput` naming the first one."""
    try:
        return Bundle.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ()))
        raise InvalidInput("bundle", f"not a valid FHIR R4 Bundle: {where}: {first.get('msg')}") from None


# ---------------------------------------------------------------------------------------------- import
def _x(res: Any, name: str) -> Any:
    for e in res.extension or []:
        if e.url == EXT + name:
            for attr in ("valueString", "valueDecimal", "valueInteger", "valueBoolean"):
                v = getattr(e, attr, None)
                if v is not None:
                    return v
    return None


def _code(cc: Any, system: str) -> str | None:
    for c in (cc.coding or []) if cc is not None else []:
        if c.system == system:
            return str(c.code)
    return None


def _rid(ref: Any) -> str | None:
    return None if ref is None else str(ref.reference).split("/", 1)[1]


def _date(v: Any) -> date | None:
    if v in (None, ""):
        return None
    return v if isinstance(v, date) and not isinstance(v, datetime) else date.fromisoformat(str(v)[:10])


def _when(v: Any) -> datetime | None:
    if v is None:
        return None
    dt = v if isinstance(v, datetime) else datetime.fromisoformat(str(v))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _dec(v: Any) -> Decimal | None:
    return None if v is None else Decimal(str(v))


def _xfloat(res: Any, name: str) -> float | None:
    v = _x(res, name)
    return None if v is None else float(v)


def import_bundle(reg: Registry, data: dict[str, Any], actor: str) -> dict[str, int]:
    """Load a Bundle made by `export_bundle` into a registry (one transaction); patients already present (same
    pseudo_id) are refused. Returns rows created per table."""
    bundle = validate_bundle(data)
    by_type: dict[str, list[Any]] = {}
    for e in bundle.entry or []:
        by_type.setdefault(e.resource.__class__.__name__, []).append(e.resource)
    ids: dict[str, int] = {}
    counts: dict[str, int] = {}

    def add(s: Session, key: str, obj: Any) -> None:
        s.add(obj)
        s.flush()
        ids[key] = obj.id
        counts[obj.__tablename__] = counts.get(obj.__tablename__, 0) + 1

    with reg.transaction(actor, "fhir_import") as s:
        for r in by_type.get("Patient", []):
            pid = next((i.value for i in r.identifier or [] if i.system == SYS + "pseudo_id"), None)
            if not pid:
                raise InvalidInput("bundle", f"Patient/{r.id} has no {SYS}pseudo_id identifier")
            if s.scalar(select(m.Patient.id).where(m.Patient.pseudo_id == pid)) is not None:
                raise InvalidInput("bundle", f"patient {pid!r} is already in the registry")
            add(
                s,
                r.id,
                m.Patient(
                    pseudo_id=pid,
                    display_name=r.name[0].text if r.name else None,
                    sex=r.gender or "unknown",
                    birth_date=_date(r.birthDate),
                    cohort=_x(r, "cohort") or "clinic",
                    study_group=_x(r, "study_group"),
                    age_years=_x(r, "age_years"),
                    age_group=_x(r, "age_group"),
                    height_cm=_xfloat(r, "height_cm"),
                    asthma_step=_x(r, "asthma_step"),
                    enrolled_on=_date(_x(r, "enrolled_on")),
                ),
            )

        def patient(ref: Any) -> int:
            key = _rid(ref)
            if key not in ids:
                raise InvalidInput("bundle", f"reference to {key} which is not in the bundle")
            return ids[key]

        for r in by_type.get("AllergyIntolerance", []):
            add(
                s,
                r.id,
                m.Diagnosis(
                    patient_id=patient(r.patient),
                    code=_code(r.code, SYS + "diagnosis") or "allergy",
                    allergen=_code(r.code, SYS + "allergen"),
                    label=r.code.text,
                    system=_x(r, "system") or "immunoplan",
                    severity=_x(r, "severity"),
                    onset_on=_date(_x(r, "onset_on")),
                ),
            )
        for r in by_type.get("Procedure", []):
            period = r.performedPeriod
            add(
                s,
                r.id,
                m.Course(
                    patient_id=patient(r.subject),
                    kind=_code(r.code, SYS + "course-kind"),
                    product=r.code.text,
                    status=COURSE_STATUS_BACK.get(r.status, "planned"),
                    started_on=_date(period.start) if period else None,
                    ended_on=_date(period.end) if period else None,
                    allergen=_x(r, "allergen"),
                    drug=_x(r, "drug"),
                    regimen=_x(r, "regimen"),
                    with_omalizumab=bool(_x(r, "with_omalizumab")),
                    omalizumab_timing=_x(r, "omalizumab_timing") or "none",
                    target_dose=_dec(_x(r, "target_dose")),
                    dose_unit=_x(r, "dose_unit"),
                    target_reached=_x(r, "target_reached"),
                    interval_days=_x(r, "interval_days"),
                ),
            )
        for r in by_type.get("Encounter", []):
            period = r.period
            add(
                s,
                r.id,
                m.Visit(
                    patient_id=patient(r.subject),
                    code=_code(r.type[0], SYS + "visit") if r.type else "unscheduled",
                    visit_on=_date(period.start) if period else None,
                    week=_x(r, "week"),
                    asthma_step=_x(r, "asthma_step"),
                    medication_score=_xfloat(r, "medication_score"),
                    course_id=ids.get(_x(r, "course") or ""),
                    notes=_x(r, "notes"),
                ),
            )
        for r in by_type.get("Observation", []):
            q = r.valueQuantity
            instrument = _code(r.code, SYS + "questionnaire")
            if instrument:
                items = [float(c.valueQuantity.value) for c in r.component or []] or None
                add(
                    s,
                    r.id,
                    m.Questionnaire(
                        patient_id=patient(r.subject),
                        visit_id=ids.get(_rid(r.encounter) or ""),
                        instrument=instrument,
                        completed_on=_date(r.effectiveDateTime),
                        score=float(q.value),
                        items=items,
                    ),
                )
                continue
            add(
                s,
                r.id,
                m.Measurement(
                    patient_id=patient(r.subject),
                    visit_id=ids.get(_rid(r.encounter) or ""),
                    kind=_code(r.code, SYS + "measurement"),
                    allergen=_x(r, "allergen") or "",
                    value=float(q.value),
                    unit=q.unit,
                    measured_on=_date(r.effectiveDateTime),
                    pct_predicted=_x(r, "pct_predicted"),
                    z_score=_x(r, "z_score"),
                    reference_equation=_x(r, "reference_equation"),
                    method=_x(r, "method"),
                ),
            )
        for r in by_type.get("MedicationAdministration", []):
            drug = _code(r.medicationCodeableConcept, SYS + "medication")
            given: dict[str, Any] = {
                "patient_id": patient(r.subject),
                "course_id": ids.get(_rid(r.partOf[0]) or "") if r.partOf else None,
                "given_at": _when(r.effectiveDateTime),
                "lot": _x(r, "lot"),
                "site": r.dosage.site.text if r.dosage.site else None,
            }
            if drug == "omalizumab":
                dose_mg = _dec(r.dosage.dose.value)
                add(
                    s,
                    r.id,
                    m.OmalizumabAdministration(
                        **given, dose_mg=dose_mg, interval_weeks=_x(r, "interval_weeks")
                    ),
                )
            else:
                add(
                    s,
                    r.id,
                    m.Injection(
                        **given,
                        dose=_dec(r.dosage.dose.value),
                        dose_unit=r.dosage.dose.unit,
                        sequence=_x(r, "sequence"),
                        phase=_x(r, "phase"),
                        vial=_x(r, "vial"),
                        volume_ml=_dec(_x(r, "volume_ml")),
                        observed_minutes=_x(r, "observed_minutes"),
                    ),
                )
        for r in by_type.get("AdverseEvent", []):
            suspect = _rid(r.suspectEntity[0].instance) if r.suspectEntity else None
            findings = _x(r, "findings")
            add(
                s,
                r.id,
                m.Reaction(
                    patient_id=patient(r.subject),
                    visit_id=ids.get(_rid(r.encounter) or ""),
                    kind=_code(r.event, SYS + "reaction-kind"),
                    onset_at=_when(r.date),
                    injection_id=ids.get(suspect) if suspect and suspect.startswith("injections-") else None,
                    omalizumab_administration_id=ids.get(suspect)
                    if suspect and suspect.startswith("omalizumab-")
                    else None,
                    course_id=ids.get(_x(r, "course")),
                    grade=_x(r, "grade"),
                    scale=_x(r, "scale"),
                    scale_version=_x(r, "scale_version"),
                    minutes_after_dose=_x(r, "minutes_after_dose"),
                    days_from_first_dose=_x(r, "days_from_first_dose"),
                    treatment=_x(r, "treatment"),
                    findings=findings.split(";") if findings else None,
                    outcome=_code(r.outcome, OUTCOME) if r.outcome else None,
                ),
            )
    return counts
