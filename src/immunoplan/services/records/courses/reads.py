"""Course reads for the pages, the CLI and the other use cases: a course by id (`LookupError` when not
found), its stored label dose, the form defaults and the course as stored."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from immunoplan.errors import InvalidInput
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.records.common import live_rows
from immunoplan.services.records.fields import local_row
from immunoplan.services.records.patients import age_on, latest_measurement, patient_by_id


def course_by_id(
    s: Session, course_id: Any, *, lock: bool = False, patient_id: int | None = None
) -> m.Course:
    """The course (``lock``: its row locked first, so a concurrent recording waits and then sees this one's
    row on PostgreSQL). `LookupError` for an unknown course, or one of another patient when ``patient_id``
    is given (routes answer 404)."""
    try:
        cid = int(str(course_id))
    except ValueError:
        raise InvalidInput("course_id", f"not a course id: {course_id!r}", "a whole number") from None
    c = s.get(m.Course, cid, with_for_update=True) if lock else s.get(m.Course, cid)
    if c is None or (patient_id is not None and c.patient_id != patient_id):
        raise LookupError(f"no course {course_id} for patient {patient_id}" if patient_id else cid)
    return c


def stored_label_dose(c: m.Course) -> dict[str, Any] | None:
    """The omalizumab label dose a course was planned with (``plan.result.omalizumab.label_dose``): its
    ``dose_mg``, ``interval_weeks`` and ``basis``; None when the course holds none (imported, no
    omalizumab)."""
    node: Any = c.plan
    for key in ("result", "omalizumab", "label_dose"):
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) and node.get("status") == "dose" else None


def adjuvant_omalizumab(c: m.Course) -> dict[str, Any] | None:
    """A drug desensitization course's adjuvant omalizumab plan (``plan.omalizumab_adjuvant``, recorded by
    `services.records.desensitization.plan_adjuvant_omalizumab`), or None."""
    node = c.plan.get("omalizumab_adjuvant") if isinstance(c.plan, dict) else None
    return node if c.kind == "drug_desensitization" and isinstance(node, dict) and node else None


def adjuvant_dose(c: m.Course) -> dict[str, Any] | None:
    """The adjuvant plan's dose in the shape of a stored label dose (``dose_mg``, ``interval_weeks`` None:
    the interval follows the cycles, ``basis``), or None."""
    node = adjuvant_omalizumab(c)
    if node is None:
        return None
    return {
        "status": "dose",
        "dose_mg": node.get("dose_mg"),
        "interval_weeks": None,
        "basis": node.get("basis"),
    }


def planned_with_omalizumab(c: m.Course) -> bool:
    """An omalizumab course, an immunotherapy course planned with omalizumab pre-treatment/concurrently, or a
    drug desensitization course with an adjuvant omalizumab plan recorded."""
    return c.kind == "omalizumab" or bool(c.with_omalizumab) or adjuvant_omalizumab(c) is not None


def planning_defaults(reg: Registry, patient_id: Any) -> dict[str, Any]:
    """Values to pre-fill a course form: ``pseudo_id``, age on the clinic's today, and weight and total IgE
    from the latest assessment inputs, else the latest measurements."""
    from immunoplan import clock

    with reg.session() as s:
        p = patient_by_id(s, patient_id)
        a = s.scalars(
            select(m.RiskAssessment)
            .where(m.RiskAssessment.patient_id == p.id)
            .order_by(m.RiskAssessment.assessed_at.desc(), m.RiskAssessment.id.desc())
            .limit(1)
        ).first()
        prior = dict(a.inputs or {}) if a is not None else {}
        age = age_on(p.birth_date, p.age_years, clock.today())
        out = {
            "pseudo_id": p.pseudo_id,
            "age_years": age if age is not None else prior.get("age_years"),
            "weight_kg": prior.get("weight_kg") or latest_measurement(s, p.id, "weight_kg"),
            "total_ige_iu_ml": prior.get("total_ige_iu_ml") or latest_measurement(s, p.id, "total_ige_iu_ml"),
        }
    return {k: v for k, v in out.items() if v not in (None, "")}


def show_course(reg: Registry, course_id: Any, patient_id: Any = None) -> dict[str, Any]:
    """A course as stored: its columns, the calendar it was planned with (``result``), its desensitization
    sessions and the omalizumab administrations recorded for it (entries not voided). With ``patient_id``,
    a course of another patient is refused like a missing one."""
    with reg.session() as s:
        try:
            cid = int(str(course_id).strip())
        except ValueError:
            raise InvalidInput("course_id", f"not a course id: {course_id!r}", "a number") from None
        c = s.get(m.Course, cid)
        if c is None or (patient_id is not None and str(c.patient_id) != str(patient_id).strip()):
            raise InvalidInput(
                "course_id",
                f"no course {course_id} for this patient",
                "a course id of the patient",
            )
        plan = c.plan if isinstance(c.plan, dict) else {}
        sessions = list(
            s.scalars(
                select(m.DesensitizationSession.id)
                .where(m.DesensitizationSession.course_id == c.id)
                .order_by(m.DesensitizationSession.id)
            )
        )
        Dose = m.OmalizumabAdministration
        doses = live_rows(s, Dose, Dose.course_id == c.id, order_by=(Dose.given_at,))
        return {
            "course": local_row(c),
            "patient_id": c.patient_id,
            "pseudo_id": c.patient.pseudo_id,
            "result": plan.get("result") if isinstance(plan.get("result"), dict) else {},
            "sessions": sessions,
            "label_dose": stored_label_dose(c),
            "omalizumab_administrations": [
                {
                    "id": o.id,
                    "given_at": o.given_at,
                    "dose_mg": o.dose_mg,
                    "interval_weeks": o.interval_weeks,
                }
                for o in doses
            ],
        }
