"""Corrections of visits and their results in the caller's transaction (called by
`services.records.corrections`): amend a visit, a questionnaire or a measurement (re-validated and
re-computed as when recording), and void a voided visit's results with it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from immunoplan import clock
from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import checks as ck
from immunoplan.registry import models as m
from immunoplan.services.inputs import validate
from immunoplan.services.records.amending import (
    apply_changes,
    refuse_nothing_changed,
    refuse_unknown_fields,
    stamp_amended,
)
from immunoplan.services.records.common import opt_float
from immunoplan.services.records.visits.inputs import (
    MEASUREMENT_AMENDABLE,
    QUESTIONNAIRE_AMENDABLE,
    VISIT_COLUMNS,
    VisitIn,
    split_items,
)
from immunoplan.services.records.visits.lookups import (
    course_of_visit,
    live_results,
    refuse_duplicate_measurement,
    refuse_duplicate_questionnaire,
    refuse_duplicate_visit,
)
from immunoplan.services.records.visits.scoring import (
    VisitResults,
    age_at,
    engine_error,
    measurement_rows,
    score_questionnaire,
    score_visit,
)


def _move_results(
    s: Session,
    visit: m.Visit,
    questionnaires: list[m.Questionnaire],
    measurements: list[m.Measurement],
    stamp: Any,
) -> None:
    """The visit's new date on its live results (a duplicate on the new date: `Conflict`)."""
    day = visit.visit_on
    for q in questionnaires:
        refuse_duplicate_questionnaire(s, visit.patient_id, q.instrument, day, other_than=q.id)
        q.completed_on = day
        stamp(q)
    for x in measurements:
        refuse_duplicate_measurement(s, visit.patient_id, x.kind, x.allergen, day, other_than=x.id)
        x.measured_on = day
        stamp(x)


def _replace_results(
    s: Session,
    visit: m.Visit,
    results: VisitResults,
    sige_allergen: str | None,
    questionnaires: list[m.Questionnaire],
    measurements: list[m.Measurement],
    stamp: Any,
) -> dict[str, Any]:
    """The visit's live result of each instrument/kind in ``results`` replaced (or added); returns
    ``{name: {"before", "after"}}``."""
    p_id, day = visit.patient_id, visit.visit_on
    replaced: dict[str, Any] = {}
    by_instrument = {q.instrument: q for q in questionnaires}
    for name, res in results.questionnaires.items():
        qrow = by_instrument.get(name)
        if qrow is None:
            refuse_duplicate_questionnaire(s, p_id, name, day)
            qrow = m.Questionnaire(patient_id=p_id, visit_id=visit.id, instrument=name, completed_on=day)
            s.add(qrow)
        else:
            stamp(qrow)
        before = qrow.score
        qrow.score, qrow.items = float(res["score"]), res.get("items")
        replaced[name] = {"before": before, "after": qrow.score}
    by_kind = {(mrow.kind, mrow.allergen): mrow for mrow in measurements}
    for r in measurement_rows(results, sige_allergen):
        kind, value, allergen, unit = ck.measurement(r["kind"], r["value"], r["allergen"])
        mrow = by_kind.get((kind, allergen))
        if mrow is None:
            refuse_duplicate_measurement(s, p_id, kind, allergen, day)
            mrow = m.Measurement(
                patient_id=p_id, visit_id=visit.id, kind=kind, allergen=allergen, measured_on=day
            )
            s.add(mrow)
        else:
            stamp(mrow)
        before_value = mrow.value
        mrow.value, mrow.unit = value, unit
        mrow.pct_predicted = opt_float("pct_predicted", r.get("pct_predicted"))
        mrow.z_score = opt_float("z_score", r.get("z_score"))
        mrow.reference_equation = r.get("reference_equation")
        replaced[kind + (f" ({allergen})" if allergen else "")] = {"before": before_value, "after": value}
    return replaced


def amend_visit(
    s: Session, actor: str, visit: m.Visit, changes: Mapping[str, Any], reason: str, at: datetime
) -> dict[str, Any]:
    """Amend a live visit in the caller's transaction: its own columns and/or results (any `VisitIn` field).

    The changed fields are re-validated with `VisitIn` (same limits as recording); questionnaires given are
    re-scored and spirometry recomputed (GLI, age at the visit date); results replace the visit's live result
    of the same instrument/kind (or are added). A new date moves the visit's results with it. Refuses a
    change that makes it a duplicate of another visit (`Conflict` naming it)."""
    fields = tuple(VisitIn.model_fields)
    refuse_unknown_fields(changes, fields, "a visit", ", ".join(f for f in fields if f != "notes"))
    p = s.get(m.Patient, visit.patient_id)
    assert p is not None  # visits.patient_id is a non-null foreign key
    current = {c: getattr(visit, c) for c in VISIT_COLUMNS if getattr(visit, c) is not None}
    v = validate(VisitIn, {**current, **changes})
    values: dict[str, Any] = {}
    for c in VISIT_COLUMNS:
        if c not in changes:
            continue
        new = getattr(v, c)
        if c == "medication_score" and new is not None:
            new = float(new)
        if c == "course_id":
            new = course_of_visit(s, p, new)
        values[c] = new
    changed = apply_changes(visit, values)
    if "code" in changed or "visit_on" in changed:
        refuse_duplicate_visit(s, p, visit.code, visit.visit_on, other_than=visit.id)
    questionnaires, measurements = live_results(s, visit.id)

    def stamp(row: Any) -> None:
        stamp_amended(row, actor, reason, at)

    if "visit_on" in changed:  # the visit's results are dated with it
        _move_results(s, visit, questionnaires, measurements, stamp)
    stored_fev1 = next((x.value for x in measurements if x.kind == "fev1_pct_pred"), None)
    results = score_visit(v, p, age=age_at(p, visit.visit_on), fev1_pct_pred=stored_fev1)
    replaced = _replace_results(s, visit, results, v.sige_allergen, questionnaires, measurements, stamp)
    refuse_nothing_changed(changed, replaced)
    stamp(visit)
    s.flush()
    return {"changed": changed, "results": to_jsonable(replaced), "spirometry": results.spirometry}


def amend_questionnaire(
    s: Session, actor: str, row: m.Questionnaire, changes: Mapping[str, Any], reason: str, at: datetime
) -> dict[str, Any]:
    """Amend a live questionnaire: ``items`` (re-scored by the engine, age at the date), ``completed_on``, or
    ``score`` (only for a questionnaire stored without items)."""
    refuse_unknown_fields(changes, QUESTIONNAIRE_AMENDABLE, "a questionnaire")
    p = s.get(m.Patient, row.patient_id)
    assert p is not None
    changed: dict[str, Any] = {}
    if "completed_on" in changes:
        day = clock.parse_date("completed_on", changes["completed_on"])
        if day != row.completed_on:
            refuse_duplicate_questionnaire(s, p.id, row.instrument, day, other_than=row.id)
        changed.update(apply_changes(row, {"completed_on": day}))
    if "items" in changes:
        items = split_items(changes["items"])
        if not isinstance(items, list) or not items:
            raise InvalidInput(
                "items", "are required to re-score the questionnaire", "comma-separated responses"
            )
        try:
            res = score_questionnaire(row.instrument, items, age=age_at(p, row.completed_on))
        except InvalidInput as exc:
            raise engine_error(exc, "items") from None
        changed.update(apply_changes(row, {"items": res["items"], "score": float(res["score"])}))
    elif "score" in changes:
        if row.items:
            raise InvalidInput("score", "is computed from the item responses: amend the items instead")
        _, score = ck.questionnaire_score(row.instrument, changes["score"])
        changed.update(apply_changes(row, {"score": score}))
    refuse_nothing_changed(changed)
    stamp_amended(row, actor, reason, at)
    return {"changed": changed}


def amend_measurement(
    s: Session, actor: str, row: m.Measurement, changes: Mapping[str, Any], reason: str, at: datetime
) -> dict[str, Any]:
    """Amend a live laboratory result: ``value`` (the kind's limit and unit), ``measured_on``, ``allergen``,
    ``method``. Spirometry with GLI results is amended through its visit (the GLI inputs are needed)."""
    refuse_unknown_fields(changes, MEASUREMENT_AMENDABLE, "a measurement")
    if row.reference_equation and row.visit_id and {"value"} & set(changes):
        raise InvalidInput(
            "value",
            f"{row.kind} carries GLI results: amend visit {row.visit_id} with fev1_l/fvc_l and height_cm",
        )
    kind, value, allergen, unit = ck.measurement(
        row.kind, changes.get("value", row.value), changes.get("allergen", row.allergen), row.unit
    )
    day = (
        clock.parse_date("measured_on", changes["measured_on"])
        if "measured_on" in changes
        else row.measured_on
    )
    if (day, allergen) != (row.measured_on, row.allergen):
        refuse_duplicate_measurement(s, row.patient_id, kind, allergen, day, other_than=row.id)
    changed = apply_changes(row, {"value": value, "allergen": allergen, "measured_on": day})
    if "method" in changes:
        method = changes["method"] or None
        if method is not None and len(str(method)) > 64:
            raise InvalidInput("method", "is too long", "at most 64 characters")
        changed.update(apply_changes(row, {"method": method}))
    refuse_nothing_changed(changed)
    stamp_amended(row, actor, reason, at)
    return {"changed": changed}


def void_visit_results(s: Session, actor: str, visit: m.Visit, reason: str, at: datetime) -> list[str]:
    """Void the live questionnaires and measurements of a voided visit (they were recorded with it)."""
    questionnaires, measurements = live_results(s, visit.id)
    rows: list[m.Questionnaire | m.Measurement] = [*questionnaires, *measurements]
    for row in rows:
        row.voided_at, row.voided_by, row.void_reason = at, actor, reason
    return [f"{type(row).__name__.lower()} {row.id}" for row in rows]
