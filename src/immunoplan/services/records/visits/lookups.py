"""Live visits and results of a patient, and the refusal of the same one recorded twice: a second live visit
with the same patient, code and date, or a second live result of the same kind (instrument) on the same day,
is a `Conflict` naming the first (``record="visit 12"``), to be corrected instead."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from immunoplan.errors import Conflict, InvalidInput
from immunoplan.registry import models as m
from immunoplan.services.records.common import live_rows, lock_row
from immunoplan.services.records.patients import patient_by_id
from immunoplan.services.records.visits.inputs import QUESTIONNAIRE_FIELDS


def _first_live(s: Session, model: type[Any], *where: Any, other_than: int | None = None) -> Any:
    """The first live row of ``model`` matching ``where`` (``other_than``: leave that row out), or None."""
    if other_than is not None:
        where = (*where, model.id != other_than)
    rows = live_rows(s, model, *where, order_by=(model.id,))
    return rows[0] if rows else None


def live_visit(s: Session, patient_id: int, code: str, day: date, *, other_than: int | None = None) -> Any:
    """The patient's live visit ``code`` on ``day`` (``other_than``: leave that visit out), or None."""
    Visit = m.Visit
    return _first_live(
        s,
        Visit,
        Visit.patient_id == patient_id,
        Visit.code == code,
        Visit.visit_on == day,
        other_than=other_than,
    )


def visit_conflict(existing: m.Visit, pseudo_id: str) -> Conflict:
    """The refusal of a second visit with the same patient, code and date (names the existing one)."""
    return Conflict(
        "visit_on",
        f"patient {pseudo_id} already has a {existing.code} visit on {existing.visit_on.isoformat()} "
        f"(visit {existing.id}); nothing was saved: correct that visit instead (amend)",
        f"visit {existing.id}",
    )


def refuse_duplicate_visit(
    s: Session, p: m.Patient, code: str, day: date, *, other_than: int | None = None
) -> None:
    existing = live_visit(s, p.id, code, day, other_than=other_than)
    if existing is not None:
        raise visit_conflict(existing, p.pseudo_id)


def refuse_duplicate_measurement(
    s: Session, patient_id: int, kind: str, allergen: str, day: date, *, other_than: int | None = None
) -> None:
    """A live result of this kind (and allergen) on ``day`` is already recorded: `Conflict` naming it."""
    Measurement = m.Measurement
    row = _first_live(
        s,
        Measurement,
        Measurement.patient_id == patient_id,
        Measurement.kind == kind,
        Measurement.allergen == allergen,
        Measurement.measured_on == day,
        other_than=other_than,
    )
    if row is not None:
        what = row.kind + (f" ({row.allergen})" if row.allergen else "")
        raise Conflict(
            row.kind,
            f"{what} is already recorded on {row.measured_on.isoformat()} (measurement {row.id}): "
            "correct it instead",
            f"measurement {row.id}",
        )


def refuse_duplicate_questionnaire(
    s: Session, patient_id: int, instrument: str, day: date, *, other_than: int | None = None
) -> None:
    """A live score of this instrument on ``day`` is already recorded: `Conflict` naming it."""
    Questionnaire = m.Questionnaire
    row = _first_live(
        s,
        Questionnaire,
        Questionnaire.patient_id == patient_id,
        Questionnaire.instrument == instrument,
        Questionnaire.completed_on == day,
        other_than=other_than,
    )
    if row is not None:
        raise Conflict(
            QUESTIONNAIRE_FIELDS.get(row.instrument, "instrument"),
            f"{row.instrument} is already recorded on {row.completed_on.isoformat()} (questionnaire "
            f"{row.id}): correct it instead",
            f"questionnaire {row.id}",
        )


def live_results(s: Session, visit_id: int) -> tuple[list[m.Questionnaire], list[m.Measurement]]:
    """The visit's questionnaires and measurements not voided (in the order recorded)."""
    questionnaires = live_rows(
        s, m.Questionnaire, m.Questionnaire.visit_id == visit_id, order_by=(m.Questionnaire.id,)
    )
    measurements = live_rows(
        s, m.Measurement, m.Measurement.visit_id == visit_id, order_by=(m.Measurement.id,)
    )
    return questionnaires, measurements


def visit_patient(s: Session, patient_id: Any, *, lock: bool = False) -> m.Patient:
    """The patient of a visit being recorded (``lock``: on PostgreSQL, serialise the visits of one patient;
    SQLite: BEGIN IMMEDIATE already does)."""
    p = patient_by_id(s, patient_id)
    if lock:
        lock_row(s, p)
    return p


def course_of_visit(s: Session, p: m.Patient, course_id: int | None) -> int | None:
    """``course_id`` when it is a course of patient ``p`` (None stays None)."""
    if course_id is None:
        return None
    c = s.get(m.Course, course_id)
    if c is None or c.patient_id != p.id:
        raise InvalidInput("course_id", f"no course {course_id} for patient {p.pseudo_id}")
    return c.id
