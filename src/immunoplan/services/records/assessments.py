"""Assessments and dose decisions as shown, with their inputs and basis, one transaction each.

`assess_and_store` is the page's and the API's one call: compute the assessment (risk, omalizumab advice,
eligibility, the label dose) and store what was shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import checks as ck
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services import unit_of_work
from immunoplan.services.records.common import (
    find_patient,
    float_or_none,
    opt_course_id,
    opt_decimal,
    result_basis,
    save_row,
)


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
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Store the risk assessment that was shown, in one transaction.

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

    def fn(s: Session) -> dict[str, Any]:
        p = find_patient(s, pseudo_id)
        row = m.RiskAssessment(
            patient_id=p.id,
            actor=actor,
            inputs=to_jsonable(inputs),
            result=data,
            course_id=opt_course_id(s, course_id),
            age_group=_find(data, "age_group"),
            risk_tier=_find(data, "risk_tier", "tier"),
            sige_class=_find(data, "sige_class"),
            sige_total_ratio_pct=_find(data, "sige_total_ratio_pct", "ratio_pct", "ratio_percent"),
            sige_kua_l=float_or_none(inputs.get("sige_kua_l", inputs.get("sige"))),
            total_ige_iu_ml=float_or_none(inputs.get("total_ige_iu_ml", inputs.get("total_ige"))),
            advice=_find(data, "advice", "recommendation"),
            basis=result_basis(basis),
        )
        return save_row(s, row)

    return unit_of_work.write(reg, actor, "assess", fn, idempotency_key=idempotency_key)


def _rule_basis(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    keys = ("table", "version", "source", "status", "rule")
    return [{k: r.get(k) for k in keys} for r in result.get("rules", [])]


def compute_assessment(inputs: Mapping[str, Any], region: str = "us") -> dict[str, Any]:
    """The assessment shown on the page: risk tier, omalizumab pre-treatment advice and biologic eligibility
    (`immunoplan.services.assessment.assess_patient`), plus the omalizumab label dose
    (`immunoplan.services.omalizumab.label_dose`, asthma) when a weight is given; ``basis`` lists every rule.
    Computes only: `InvalidInput` names the first bad field."""
    from immunoplan.services.assessment import assess_patient
    from immunoplan.services.omalizumab import label_dose

    given = {k: v for k, v in inputs.items() if v is not None}
    result: dict[str, Any] = to_jsonable(assess_patient(**given))
    if given.get("weight_kg") not in (None, ""):
        dose = label_dose(
            "asthma", region, given.get("age_years"), given["weight_kg"], given.get("total_ige_iu_ml")
        )
        result["omalizumab_label_dose"] = to_jsonable(dose)
    result["basis"] = _rule_basis(result)
    return result


def assess_and_store(
    reg: Registry,
    actor: str,
    *,
    patient_id: Any,
    inputs: Mapping[str, Any],
    region: str = "us",
    course_id: Any = None,
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Assess a patient (`compute_assessment`) and store the assessment shown, in one call and one
    transaction: returns ``id``, ``patient_id`` and ``result``. Invalid inputs: nothing is written."""
    from immunoplan.services.records.patients import patient_by_id

    given = {k: v for k, v in inputs.items() if v is not None}
    with reg.session() as s:
        pseudo = patient_by_id(s, patient_id).pseudo_id
    result = compute_assessment(given, region)
    row = assess(
        reg,
        actor,
        pseudo_id=pseudo,
        inputs=given,
        result=result,
        course_id=course_id,
        idempotency_key=idempotency_key,
    )
    return {"id": row["id"], "patient_id": row["patient_id"], "result": row.get("result", result)}


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
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Store the dose decision that was shown (dose, do-not-dose, outside-table, override ...).
    An override must say why (UNVERIFIED data never doses without a recorded override)."""
    kind = ck.not_empty("kind", kind)
    if kind == "override" and not (override_reason or "").strip():
        raise InvalidInput("override_reason", "an override must record its reason")
    data = to_jsonable(result)
    basis = data.get("basis") if isinstance(data, dict) else None

    def fn(s: Session) -> dict[str, Any]:
        p = find_patient(s, pseudo_id)
        row = m.DoseDecision(
            patient_id=p.id,
            actor=actor,
            kind=kind,
            result=data if isinstance(data, dict) else {"value": data},
            inputs=to_jsonable(inputs),
            override_reason=override_reason,
            dose_unit=dose_unit,
            dose=opt_decimal("dose", dose, allow_zero=True),
            course_id=opt_course_id(s, course_id),
            basis=result_basis(basis),
        )
        return save_row(s, row)

    return unit_of_work.write(reg, actor, "record_dose_decision", fn, idempotency_key=idempotency_key)


def assessment_view(reg: Registry, patient_id: int, assessment_id: int) -> dict[str, Any] | None:
    """A stored assessment as shown (inputs, result and its basis, who and when). None: no such assessment
    for this patient."""
    with reg.session() as s:
        a = s.get(m.RiskAssessment, assessment_id)
        p = s.get(m.Patient, patient_id)
        if a is None or p is None or a.patient_id != p.id:
            return None
        return {
            "id": a.id,
            "patient_id": p.id,
            "pseudo_id": p.pseudo_id,
            "assessed_at": a.assessed_at,
            "actor": a.actor,
            "inputs": a.inputs or {},
            "result": a.result or {},
        }
