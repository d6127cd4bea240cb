"""One helper per registry row kind the synthetic cohorts write (patients, visits, results, doses)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from immunoplan.errors import InvalidInput
from immunoplan.reference import load
from immunoplan.synthetic.writer import Writer


def calibration() -> dict[str, Any]:
    """Reference data ``registry_demo_calibration``: every target and generator parameter."""
    return load("registry_demo_calibration")


def label_dose(age: int, weight: float, ige: float) -> tuple[Decimal, int, Any] | None:
    """Omalizumab label dose from the omalizumab service (US asthma tables); None when it gives no dose."""
    from immunoplan.services.omalizumab import label_dose

    try:
        r = label_dose("asthma", "us", age, round(weight, 1), round(ige, 1))
    except InvalidInput:
        return None
    d = r.to_dict()
    if d.get("status") != "dose":
        return None
    return Decimal(str(d["dose_mg"])), int(d["interval_weeks"]), d.get("basis")


def limits(kind: str) -> tuple[float, float]:
    lim = load("registry_measurements")
    spec = lim["kinds"].get(kind) or lim["questionnaires"][kind]
    return float(spec["low"]), float(spec["high"])


def add_patient(
    w: Writer,
    pid: str,
    display_name: str,
    birth_date: date,
    age: int,
    age_group: str,
    sex: str,
    asthma_step: int,
    cohort: str,
    study_group: str | None,
    enrolled_on: date,
    *,
    height_cm: float | None = None,
    smoking: str | None = None,
    family_history_asthma: bool | None = None,
    comorbid_allergies: bool | None = None,
    previous_biologics: bool | None = None,
) -> int:
    """A demo patient (height, smoking and history flags where the cohort has them) with the enrolment
    diagnosis; returns the patient id."""
    p_id = w.add(
        "patients",
        pseudo_id=pid,
        display_name=display_name,
        birth_date=birth_date,
        age_years=age,
        age_group=age_group,
        sex=sex,
        height_cm=height_cm,
        smoking=smoking,
        family_history_asthma=family_history_asthma,
        comorbid_allergies=comorbid_allergies,
        previous_biologics=previous_biologics,
        asthma_step=asthma_step,
        cohort=cohort,
        study_group=study_group,
        enrolled_on=enrolled_on,
        created_at=w.now,
    )
    _diagnose(w, p_id, enrolled_on)
    return p_id


def _diagnose(w: Writer, p_id: int, day: date) -> None:
    """Both seeds enrolled house-dust-mite allergic asthma (D. pteronyssinus, ImmunoCAP d1)."""
    w.add(
        "diagnoses",
        patient_id=p_id,
        code="allergic_asthma",
        system="immunoplan",
        label="Allergic asthma, house dust mite",
        allergen="d1",
        severity=None,
        onset_on=None,
    )


_GRADES: dict[tuple[str, tuple[str, ...], tuple[str, ...]], dict[str, Any]] = {}


def graded(scale: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Grade a synthetic reaction with the clinical grading engine (cached per finding set)."""
    from immunoplan.clinical.reactions import Findings, grade

    symptoms, treatments = tuple(spec["symptoms"]), tuple(spec.get("treatments", ()))
    key = (scale, symptoms, treatments)
    if key not in _GRADES:
        g = grade(scale, Findings(symptoms=frozenset(symptoms), treatments=frozenset(treatments)))
        _GRADES[key] = {
            "grade": g.grade,
            "scale": g.scale,
            "scale_version": g.scale_version,
            "basis": g.basis.to_dict(),
            "findings": list(symptoms),
            "treatment": ", ".join(treatments) or None,
        }
    return _GRADES[key]


def _unit(kind: str) -> str:
    return str(load("registry_measurements")["kinds"][kind]["unit"])


def add_visit(
    w: Writer,
    p_id: int,
    course: int,
    code: str,
    day: date,
    week: int,
    asthma_step: int | None,
    medication_score: float | None = None,
) -> int:
    return w.add(
        "visits",
        patient_id=p_id,
        course_id=course,
        code=code,
        visit_on=day,
        week=week,
        asthma_step=asthma_step,
        medication_score=medication_score,
        notes=None,
    )


def add_measurement(
    w: Writer,
    p_id: int,
    visit_id: int,
    kind: str,
    value: float,
    day: date,
    *,
    allergen: str = "",
    unit: str | None = None,
    method: str | None = None,
) -> None:
    """One result (unit: the registry's unit for ``kind`` unless given)."""
    w.add(
        "measurements",
        patient_id=p_id,
        visit_id=visit_id,
        kind=kind,
        allergen=allergen,
        value=value,
        unit=_unit(kind) if unit is None else unit,
        measured_on=day,
        pct_predicted=None,
        z_score=None,
        reference_equation=None,
        method=method,
    )


def add_questionnaire(w: Writer, p_id: int, visit_id: int, instrument: str, day: date, score: float) -> None:
    w.add(
        "questionnaires",
        patient_id=p_id,
        visit_id=visit_id,
        instrument=instrument,
        completed_on=day,
        items=None,
        score=score,
    )


def add_injection(
    w: Writer,
    p_id: int,
    course: int,
    sequence: int,
    when: datetime,
    phase: str,
    dose: Decimal,
    vial: Any,
    volume_ml: Decimal,
    lot: str,
) -> int:
    """One SQ-U allergen injection in the upper arm, observed 30 minutes."""
    return w.add(
        "injections",
        course_id=course,
        patient_id=p_id,
        sequence=sequence,
        given_at=when,
        phase=phase,
        dose=dose,
        dose_unit="SQ-U",
        vial=str(vial),
        volume_ml=volume_ml,
        site="upper arm",
        lot=lot,
        observed_minutes=30,
        given_by="demo",
    )


def add_omalizumab_doses(
    w: Writer, p_id: int, course: int, om: tuple[Decimal, int, Any], days: Iterable[date]
) -> None:
    """Label-dose omalizumab (``om`` from `label_dose`) at 08:30 on each of ``days``."""
    for day in days:
        w.add(
            "omalizumab_administrations",
            patient_id=p_id,
            course_id=course,
            given_at=utc_at(day, 8, 30),
            dose_mg=om[0],
            interval_weeks=om[1],
            site="upper arm",
            lot=None,
            basis=[om[2]] if om[2] else None,
        )


def utc_at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
