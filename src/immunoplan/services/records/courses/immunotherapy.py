"""Plan a SCIT course (conventional / cluster / rush, ``scit_products``), optionally with omalizumab as an
adjuvant; products and regimens to choose from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from immunoplan import reference
from immunoplan.clinical.immunotherapy import maintenance_dose
from immunoplan.clinical.immunotherapy.course_kinds import UNPLANNABLE_STATUS, check_plannable, course_kind
from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services import unit_of_work
from immunoplan.services.records.common import as_input, basis_json
from immunoplan.services.records.courses.inputs import USE_CASE, ImmunotherapyCourseIn
from immunoplan.services.records.courses.planned import calendar, locked_patient, planned_result


def immunotherapy_choices() -> list[dict[str, Any]]:
    """Products and regimens of ``scit_products`` with their status and whether they can be planned."""
    data = reference.load("scit_products")
    return [
        {
            "id": pid,
            "name": p["name"],
            "regimens": [
                {
                    "id": rid,
                    "name": r["name"],
                    "status": r["status"],
                    "plannable": r["status"] != UNPLANNABLE_STATUS and bool(r.get("rows")),
                    "course_kind": course_kind(rid),
                }
                for rid, r in p["regimens"].items()
            ],
        }
        for pid, p in data["products"].items()
    ]


def _scit_args(d: ImmunotherapyCourseIn) -> dict[str, Any]:
    args: dict[str, Any] = {
        "product": d.product,
        "regimen": d.regimen,
        "start": d.start,
        "start_time": d.start_time,
        "maintenance_interval_weeks": d.maintenance_interval_weeks,
    }
    if d.omalizumab != "none":
        args.update(
            omalizumab=d.omalizumab,
            omalizumab_lead_weeks=d.omalizumab_lead_weeks,
            age_years=d.age_years,
            weight_kg=d.weight_kg,
            total_ige_iu_ml=d.total_ige_iu_ml,
            indication=d.indication,
            region=d.region,
            omalizumab_override_reason=d.omalizumab_override_reason,
        )
    return {k: v for k, v in args.items() if v is not None}


def preview_immunotherapy(
    data: ImmunotherapyCourseIn | Mapping[str, Any],
) -> dict[str, Any]:
    """The SCIT calendar (and omalizumab doses) that `plan_immunotherapy` would store; writes nothing.
    UNVERIFIED schedules are shown (kind ``cannot-answer``) but cannot be planned."""
    from immunoplan.services import protocols

    d = as_input(ImmunotherapyCourseIn, data)
    result: dict[str, Any] = to_jsonable(protocols.plan_scit_schedule(**_scit_args(d)))
    result["calendar"] = calendar(result)
    return result


def _refuse_unplannable(d: ImmunotherapyCourseIn, result: Mapping[str, Any]) -> None:
    if result.get("kind") != "schedule" or not result.get("visits"):
        basis = (result.get("basis") or [{}])[0]
        raise InvalidInput(
            "regimen",
            f"the schedule engine answered {result.get('kind')!r} for {d.product} {d.regimen} "
            f"(rule {basis.get('rule')!r}, status {basis.get('status')}): it cannot be planned",
            "a regimen whose schedule is not UNVERIFIED",
        )
    if d.omalizumab == "none":
        return
    om = result.get("omalizumab") or {}
    label = om.get("label_dose") or {}
    if label.get("status") != "dose" or not om.get("administrations"):
        raise InvalidInput(
            "omalizumab",
            f"the omalizumab label lookup answered {label.get('status')!r} ({label.get('reason')}): "
            "no dose to plan with the immunotherapy",
            "a label-table dose (an UNVERIFIED table needs omalizumab_override_reason), or omalizumab none",
        )


def plan_immunotherapy(
    reg: Registry,
    actor: str,
    patient_id: Any,
    data: ImmunotherapyCourseIn | Mapping[str, Any],
    *,
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Plan and store a SCIT course (with omalizumab pre/concurrent when asked) in one transaction.

    Returns ``id``, the stored ``course`` row, ``schedule`` (the dated visits), ``omalizumab`` (label dose and
    administrations), ``calendar`` (both merged by date), ``warnings`` and ``basis``.
    """
    d = as_input(ImmunotherapyCourseIn, data)
    check_plannable(d.product, d.regimen)
    result = preview_immunotherapy(d)
    _refuse_unplannable(d, result)
    om = result.get("omalizumab") or {}
    label = om.get("label_dose") or {}
    basis = list(result.get("basis") or []) + ([label["basis"]] if label.get("basis") else [])
    first = result["visits"][0]["injections"][0]

    def fn(s: Session) -> dict[str, Any]:
        p = locked_patient(s, patient_id)
        c = m.Course(
            patient_id=p.id,
            kind=course_kind(d.regimen),
            product=result.get("product_name"),
            product_id=d.product,
            regimen=result.get("regimen_name"),
            regimen_id=d.regimen,
            allergen=d.allergen,
            start_time=d.start_time,
            maintenance_interval_weeks=result.get("maintenance_interval_weeks"),
            omalizumab_lead_weeks=d.omalizumab_lead_weeks if d.omalizumab == "pre" else None,
            with_omalizumab=d.omalizumab != "none",
            omalizumab_timing=d.omalizumab,
            status="planned",
            started_on=d.start,
            target_dose=maintenance_dose(d.product),
            dose_unit=first.get("unit"),
            next_due_on=d.start,
            plan={
                "request": to_jsonable(d.model_dump(exclude_none=True)),
                "result": result,
            },
            basis=basis_json(basis),
        )
        s.add(c)
        s.flush()
        return planned_result(c, result)

    return unit_of_work.write(reg, actor, USE_CASE, fn, idempotency_key=idempotency_key)
