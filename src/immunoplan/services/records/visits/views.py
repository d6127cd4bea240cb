"""What the visit pages show: the form's defaults and hints, and a recorded visit with its results."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from immunoplan import clock
from immunoplan.clinical import questionnaires as questionnaire_engine
from immunoplan.clinical import spirometry as spirometry_engine
from immunoplan.errors import InvalidInput
from immunoplan.reference import load
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.records.common import columns
from immunoplan.services.records.visits.inputs import QUESTIONNAIRE_FIELDS, USE_CASE
from immunoplan.services.records.visits.lookups import live_results
from immunoplan.services.records.visits.scoring import age_at, score_questionnaire

SPIROMETRY_MEASURES = {"fev1_l": "fev1", "fvc_l": "fvc", "fev1_fvc_pct": "fev1_fvc"}


def visit_form_defaults(reg: Registry, patient_id: int) -> dict[str, Any] | None:
    """What the visit form shows before anything is typed (None: no such patient)."""
    with reg.session() as s:
        p = s.get(m.Patient, patient_id)
        if p is None:
            return None
        today = clock.today()
        return {
            "patient_id": p.id,
            "pseudo_id": p.pseudo_id,
            "age_today": age_at(p, today),
            "sex": p.sex if p.sex in spirometry_engine.SEXES else "",
            "visit_on": today.isoformat(),
        }


def load_instrument(engine_id: str) -> dict[str, Any]:
    """The questionnaire engine's reference entry of one instrument (items, ranges, name)."""
    return load(questionnaire_engine.TABLE)["instruments"][engine_id]  # type: ignore[no-any-return]


def questionnaire_hints() -> dict[str, str]:
    """Input field -> item count and range of its instrument, from the engine's reference data."""
    out = {}
    for name, fld in QUESTIONNAIRE_FIELDS.items():
        spec = load_instrument(fld.replace("_", "-"))
        groups = spec.get("items") or spec.get("inputs") or []
        parts = [
            f"{g['count']} items {g['min']}-{g['max']}" + (f" ({g['who']})" if g.get("who") else "")
            for g in groups
        ]
        out[fld] = f"{name}: " + "; ".join(parts) + f" · {spec['name']}"
    return out


def _derived_results(s: Session, visit: m.Visit, p: m.Patient) -> dict[str, Any]:
    """The results of a stored visit re-derived from its live rows (questionnaires re-scored from their items;
    GLI observed value, z-score and % predicted as stored)."""
    questionnaires, measurements = live_results(s, visit.id)
    qs: dict[str, Any] = {}
    for q in questionnaires:
        try:
            score = score_questionnaire(q.instrument, q.items or [], age=age_at(p, visit.visit_on))
            qs[q.instrument] = {**score, "id": q.id}
        except InvalidInput:
            qs[q.instrument] = {"score": q.score, "id": q.id, "rules": [], "warnings": []}
    sp: dict[str, Any] | None = None
    for x in measurements:
        if x.kind not in SPIROMETRY_MEASURES:
            continue
        sp = sp or {"equation": x.reference_equation, "rules": [], "warnings": []}
        observed = x.value / 100 if x.kind == "fev1_fvc_pct" else x.value
        sp[SPIROMETRY_MEASURES[x.kind]] = {
            "observed": observed,
            "z": x.z_score,
            "percent_predicted": x.pct_predicted,
        }
    return {"questionnaires": qs, "spirometry": sp}


def _shown_result(s: Session, visit: m.Visit, shown: str | None) -> dict[str, Any] | None:
    """The stored result of the write with idempotency key ``shown``, if it recorded this visit unamended."""
    if not shown:
        return None
    stored = s.scalar(
        select(m.IdempotencyKey.result).where(
            m.IdempotencyKey.key == str(shown)[:128], m.IdempotencyKey.use_case == USE_CASE
        )
    )
    if isinstance(stored, dict) and stored.get("id") == visit.id and not visit.amended_at:
        return stored
    return None


def visit_view(
    reg: Registry, patient_id: int, visit_id: int, shown: str | None = None
) -> dict[str, Any] | None:
    """A recorded visit for its page: the visit, its rows (with corrections) and its results. ``shown`` is
    the idempotency key of the write that recorded it: its stored result (with predicted values and LLN) is
    shown as computed; otherwise the results are re-derived from the stored rows. None: no such visit."""
    with reg.session() as s:
        visit = s.get(m.Visit, visit_id)
        if visit is None or visit.patient_id != patient_id:
            return None
        p = s.get(m.Patient, patient_id)
        assert p is not None
        results = _shown_result(s, visit, shown) or _derived_results(s, visit, p)
        questionnaires = s.scalars(
            select(m.Questionnaire).where(m.Questionnaire.visit_id == visit.id).order_by(m.Questionnaire.id)
        )
        measurements = s.scalars(
            select(m.Measurement).where(m.Measurement.visit_id == visit.id).order_by(m.Measurement.id)
        )
        return {
            "visit": columns(visit),
            "pseudo_id": p.pseudo_id,
            "age_years_at_visit": age_at(p, visit.visit_on),
            "results": results,
            "questionnaires": [columns(q) for q in questionnaires],
            "measurements": [columns(x) for x in measurements],
        }
