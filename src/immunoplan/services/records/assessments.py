"""Assessments and dose decisions as shown, with their inputs and basis."""

from __future__ import annotations

from typing import Any

from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import checks as ck
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
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
