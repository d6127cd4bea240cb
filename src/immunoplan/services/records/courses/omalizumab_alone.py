"""Plan an omalizumab course on its own: the label dose (`immunoplan.services.omalizumab`) every label
interval."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services import unit_of_work
from immunoplan.services.records.common import as_input, basis_json
from immunoplan.services.records.courses.inputs import USE_CASE, OmalizumabCourseIn
from immunoplan.services.records.courses.planned import calendar, locked_patient, planned_result


def preview_omalizumab_course(
    data: OmalizumabCourseIn | Mapping[str, Any],
) -> dict[str, Any]:
    """The omalizumab-alone calendar `plan_omalizumab_course` would store (label maintenance schedule)."""
    from immunoplan.services import omalizumab

    d = as_input(OmalizumabCourseIn, data)
    sched = to_jsonable(
        omalizumab.build_schedule(
            "maintenance",
            d.start,
            indication=d.indication,
            region=d.region,
            age_years=d.age_years,
            weight_kg=d.weight_kg,
            total_ige_iu_ml=d.total_ige_iu_ml,
            override_reason=d.override_reason,
        )
    )
    label = sched.get("label_dose") or {}
    result: dict[str, Any] = {
        "kind": "omalizumab",
        "status": sched.get("status"),
        "start": d.start,
        "visits": [],
        "omalizumab": {
            "mode": "alone",
            "lead_weeks": 0,
            "label_dose": label,
            "administrations": sched.get("administrations") or [],
        },
        "warnings": sched.get("warnings") or [],
        "basis": sched.get("basis") or [],
    }
    result["calendar"] = calendar(result)
    return to_jsonable(result)  # type: ignore[no-any-return]


def plan_omalizumab_course(
    reg: Registry,
    actor: str,
    patient_id: Any,
    data: OmalizumabCourseIn | Mapping[str, Any],
    *,
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Plan and store an omalizumab course (label dose and interval) in one transaction; refused when the
    label lookup gives no dose (do-not-dose, outside-table, an UNVERIFIED table without override)."""
    d = as_input(OmalizumabCourseIn, data)
    result = preview_omalizumab_course(d)
    label = result["omalizumab"]["label_dose"]
    if label.get("status") != "dose" or not result["omalizumab"]["administrations"]:
        raise InvalidInput(
            "omalizumab",
            f"the omalizumab label lookup answered {label.get('status')!r} ({label.get('reason')}): "
            "no dose to plan",
            "a label-table dose (an UNVERIFIED table needs override_reason)",
        )
    interval_weeks = int(label["interval_weeks"])

    def fn(s: Session) -> dict[str, Any]:
        p = locked_patient(s, patient_id)
        c = m.Course(
            patient_id=p.id,
            kind="omalizumab",
            drug="omalizumab",
            with_omalizumab=False,
            omalizumab_timing="none",
            status="planned",
            started_on=d.start,
            target_dose=Decimal(str(label["dose_mg"])),
            dose_unit="mg",
            interval_days=7 * interval_weeks,
            next_due_on=d.start,
            plan={
                "request": to_jsonable(d.model_dump(exclude_none=True)),
                "result": result,
            },
            basis=basis_json(result.get("basis") or ([label["basis"]] if label.get("basis") else None)),
        )
        s.add(c)
        s.flush()
        return planned_result(c, result)

    return unit_of_work.write(reg, actor, USE_CASE, fn, idempotency_key=idempotency_key)
