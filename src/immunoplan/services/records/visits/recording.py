"""Record a visit with every result in ONE transaction (`record_visit_with_results`), and the keyword forms
that write one row each (`record_visit`, `record_measurement`, `record_questionnaire`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from immunoplan import clock
from immunoplan.clinical.vocabularies import VISIT_CODES
from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.reference.limits import limit
from immunoplan.registry import checks as ck
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.records.common import (
    as_input,
    find_patient,
    find_visit,
    int_or_none,
    opt_course_id,
    opt_float,
    opt_int,
    save_row,
)
from immunoplan.services.records.fields import not_future
from immunoplan.services.records.visits.inputs import USE_CASE, VisitIn
from immunoplan.services.records.visits.lookups import (
    course_of_visit,
    refuse_duplicate_measurement,
    refuse_duplicate_questionnaire,
    refuse_duplicate_visit,
    visit_patient,
)
from immunoplan.services.records.visits.scoring import VisitResults, age_at, measurement_rows, score_visit
from immunoplan.services.unit_of_work import write


def _add_results(
    s: Session, p: m.Patient, visit: m.Visit, results: VisitResults, sige_allergen: str | None
) -> dict[str, Any]:
    """Insert the questionnaire and measurement rows of ``results`` for ``visit`` (duplicates: `Conflict`)."""
    day = visit.visit_on
    qrows: dict[str, Any] = {}
    for name, res in results.questionnaires.items():
        refuse_duplicate_questionnaire(s, p.id, name, day)
        q = m.Questionnaire(
            patient_id=p.id,
            visit_id=visit.id,
            instrument=name,
            score=float(res["score"]),
            completed_on=day,
            items=res.get("items"),
        )
        qrows[name] = {**res, "id": save_row(s, q)["id"]}
    mrows = []
    for r in measurement_rows(results, sige_allergen):
        kind, value, allergen, unit = ck.measurement(r["kind"], r["value"], r["allergen"])
        refuse_duplicate_measurement(s, p.id, kind, allergen, day)
        row = m.Measurement(
            patient_id=p.id,
            visit_id=visit.id,
            kind=kind,
            allergen=allergen,
            value=value,
            unit=unit,
            measured_on=day,
            pct_predicted=opt_float("pct_predicted", r.get("pct_predicted")),
            z_score=opt_float("z_score", r.get("z_score")),
            reference_equation=r.get("reference_equation"),
        )
        mrows.append(save_row(s, row))
    return {"questionnaires": qrows, "measurements": mrows}


def record_visit_with_results(
    reg: Registry,
    actor: str,
    patient_id: Any,
    visit: VisitIn | Mapping[str, Any],
    *,
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Record a visit with its questionnaires (scored), spirometry (GLI, age at the visit) and laboratory
    results in one transaction. Refuses: bad input (`InvalidInput` / `VisitResultsInvalid`, nothing written);
    a visit with no result; a second visit with the same patient, code and date (`Conflict` naming it)."""
    v = as_input(VisitIn, visit)
    if not v.has_results():
        raise InvalidInput(
            "results", "enter at least one questionnaire, a spirometry result or a laboratory result"
        )

    not_future("visit_on")(v.visit_on)

    def run(s: Session) -> dict[str, Any]:
        p = visit_patient(s, patient_id, lock=True)
        age = age_at(p, v.visit_on)
        results = score_visit(v, p, age=age)  # input errors first: a refused duplicate has valid values
        refuse_duplicate_visit(s, p, v.code, v.visit_on)
        row = m.Visit(
            patient_id=p.id,
            code=v.code,
            visit_on=v.visit_on,
            course_id=course_of_visit(s, p, v.course_id),
            asthma_step=v.asthma_step,
            medication_score=None if v.medication_score is None else float(v.medication_score),
            notes=v.notes,
        )
        stored = save_row(s, row)
        written = _add_results(s, p, row, results, v.sige_allergen)
        return {
            "id": row.id,
            "patient_id": p.id,
            "pseudo_id": p.pseudo_id,
            "age_years_at_visit": age,
            "visit": stored,
            "questionnaires": written["questionnaires"],
            "spirometry": results.spirometry,
            "measurements": written["measurements"],
        }

    return write(reg, actor, USE_CASE, run, idempotency_key=idempotency_key)


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
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Record a visit row alone (baseline, week12, week24, week48, month12 ...); a second live visit with
    the same patient, code and date is a `Conflict` naming it."""
    code = ck.choice("code", code, VISIT_CODES)
    day = clock.parse_date("visit_on", visit_on)
    not_future("visit_on")(day)
    wk = opt_int("week", week)
    med = limit("medication_score").check_optional(medication_score)
    step = int_or_none(ck.patient_number("asthma_step", asthma_step))

    def run(s: Session) -> dict[str, Any]:
        p = find_patient(s, pseudo_id)
        refuse_duplicate_visit(s, p, code, day)
        v = m.Visit(
            patient_id=p.id,
            code=code,
            visit_on=day,
            week=wk,
            medication_score=None if med is None else float(med),
            notes=notes,
            asthma_step=step,
            course_id=opt_course_id(s, course_id),
        )
        return save_row(s, v)

    return write(reg, actor, "record_visit", run, idempotency_key=idempotency_key)


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
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Record one laboratory or lung-function result (unit and plausible range checked; a second live result
    of the same kind on the same day is a `Conflict` naming it)."""
    kind, v, allergen, unit = ck.measurement(kind, value, allergen, unit)
    day = clock.parse_date("measured_on", measured_on)

    def run(s: Session) -> dict[str, Any]:
        p = find_patient(s, pseudo_id)
        visit = find_visit(s, p, visit_code)
        refuse_duplicate_measurement(s, p.id, kind, allergen, day)
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

    return write(reg, actor, "record_measurement", run, idempotency_key=idempotency_key)


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
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Record a questionnaire score (ACT, C-ACT, ACQ-5/6/7, AQLQ, mini-AQLQ) with optional item answers (a
    second live score of the same instrument on the same day is a `Conflict` naming it)."""
    instrument, sc = ck.questionnaire_score(instrument, score)
    day = clock.parse_date("completed_on", completed_on)

    def run(s: Session) -> dict[str, Any]:
        p = find_patient(s, pseudo_id)
        visit = find_visit(s, p, visit_code)
        refuse_duplicate_questionnaire(s, p.id, instrument, day)
        row = m.Questionnaire(
            patient_id=p.id,
            visit_id=visit.id if visit else None,
            instrument=instrument,
            score=sc,
            completed_on=day,
            items=to_jsonable(items) if items is not None else None,
        )
        return save_row(s, row)

    return write(reg, actor, "record_questionnaire", run, idempotency_key=idempotency_key)
