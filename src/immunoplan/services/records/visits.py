"""Visits and what is measured at them: questionnaires, laboratory and lung-function results."""

from __future__ import annotations

from typing import Any

from immunoplan.errors import InvalidInput
from immunoplan.registry import checks as ck
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.records.common import (
    find_patient,
    find_visit,
    int_or_none,
    opt_course_id,
    opt_float,
    opt_int,
    save_row,
)


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
    wk = opt_int("week", week)
    med = opt_float("medication_score", medication_score)
    if med is not None and med < 0:
        raise InvalidInput("medication_score", "must not be negative", "[0, inf)")
    with reg.transaction(actor, "record_visit") as s:
        p = find_patient(s, pseudo_id)
        v = m.Visit(
            patient_id=p.id,
            code=code,
            visit_on=day,
            week=wk,
            medication_score=med,
            notes=notes,
            asthma_step=int_or_none(ck.patient_number("asthma_step", asthma_step)),
            course_id=opt_course_id(s, course_id),
        )
        return save_row(s, v)


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
        p = find_patient(s, pseudo_id)
        visit = find_visit(s, p, visit_code)
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
            pct_predicted=opt_float("pct_predicted", pct_predicted),
            z_score=opt_float("z_score", z_score),
        )
        return save_row(s, row)


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
        p = find_patient(s, pseudo_id)
        visit = find_visit(s, p, visit_code)
        row = m.Questionnaire(
            patient_id=p.id,
            visit_id=visit.id if visit else None,
            instrument=instrument,
            score=sc,
            completed_on=day,
            items=items,
        )
        return save_row(s, row)
