"""Treatment courses: the plan shown, stored with its basis."""

from __future__ import annotations

from typing import Any

from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import checks as ck
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.records.common import (
    basis_json,
    find_patient,
    opt_decimal,
    opt_int,
    save_row,
)


def plan_course(
    reg: Registry,
    actor: str,
    *,
    pseudo_id: str,
    kind: str,
    started_on: Any = None,
    product: str | None = None,
    allergen: str | None = None,
    drug: str | None = None,
    regimen: str | None = None,
    with_omalizumab: bool = False,
    omalizumab_timing: str = "none",
    target_dose: Any = None,
    dose_unit: str | None = None,
    interval_days: Any = None,
    plan: Any = None,
    basis: Any = None,
    status: str = "planned",
) -> dict[str, Any]:
    """Store a treatment course and the plan that was shown (with its basis)."""
    kind = ck.choice("kind", kind, m.COURSE_KINDS)
    timing = ck.choice("omalizumab_timing", omalizumab_timing, m.OMALIZUMAB_TIMINGS)
    if with_omalizumab and timing == "none":
        raise InvalidInput(
            "omalizumab_timing", "must be pre or concurrent when with_omalizumab", "pre, concurrent"
        )
    start = ck.to_date("started_on", started_on) if started_on else None
    interval = opt_int("interval_days", interval_days)
    if interval is not None and interval < 1:
        raise InvalidInput("interval_days", "must be at least 1", "[1, inf)")
    with reg.transaction(actor, "plan_course") as s:
        p = find_patient(s, pseudo_id)
        c = m.Course(
            patient_id=p.id,
            kind=kind,
            product=product,
            allergen=allergen,
            drug=drug,
            regimen=regimen,
            with_omalizumab=bool(with_omalizumab),
            omalizumab_timing=timing,
            status=ck.choice("status", status, m.COURSE_STATUSES),
            started_on=start,
            target_dose=opt_decimal("target_dose", target_dose),
            dose_unit=dose_unit,
            interval_days=interval,
            next_due_on=start,
            plan=to_jsonable(plan) if plan is not None else None,
            basis=basis_json(basis),
        )
        return save_row(s, c)
