"""`plan_course`: the keyword form (tests, desensitization, import-like callers) storing what it is given."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from immunoplan.clinical.immunotherapy.course_kinds import check_plannable
from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.reference.limits import limit
from immunoplan.registry import checks as ck
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services import unit_of_work
from immunoplan.services.inputs import InputModel, validate
from immunoplan.services.records.common import basis_json, find_patient, opt_decimal, opt_int
from immunoplan.services.records.courses.inputs import USE_CASE
from immunoplan.services.records.fields import ClockTime, local_row


class _StartTimeIn(InputModel):
    start_time: ClockTime = None


def _opt_limit(name: str, value: Any) -> int | None:
    """A whole number checked against field limit ``name`` (None when not given)."""
    d = limit(name).check_optional(value)
    return None if d is None else int(d)


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
    product_id: str | None = None,
    regimen_id: str | None = None,
    start_time: Any = None,
    maintenance_interval_weeks: Any = None,
    omalizumab_lead_weeks: Any = None,
    with_omalizumab: bool = False,
    omalizumab_timing: str = "none",
    target_dose: Any = None,
    dose_unit: str | None = None,
    interval_days: Any = None,
    plan: Any = None,
    basis: Any = None,
    status: str = "planned",
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Store a treatment course and the plan that was shown (with its basis), as given (keyword style).

    ``product_id``/``regimen_id`` (``scit_products`` ids), when given, must name a regimen that can be
    planned (not UNVERIFIED); the schedule itself is the caller's (`plan_immunotherapy` computes one).
    """
    kind = ck.choice("kind", kind, m.COURSE_KINDS)
    timing = ck.choice("omalizumab_timing", omalizumab_timing, m.OMALIZUMAB_TIMINGS)
    if with_omalizumab and timing == "none":
        raise InvalidInput(
            "omalizumab_timing",
            "must be pre or concurrent when with_omalizumab",
            "pre, concurrent",
        )
    if (product_id is None) != (regimen_id is None):
        raise InvalidInput("regimen_id", "product_id and regimen_id go together", "both or neither")
    if product_id is not None and regimen_id is not None:
        check_plannable(product_id, regimen_id)
    start = ck.to_date("started_on", started_on) if started_on else None
    interval = opt_int("interval_days", interval_days)
    if interval is not None and interval < 1:
        raise InvalidInput("interval_days", "must be at least 1", "[1, inf)")
    values = dict(
        kind=kind,
        product=product,
        allergen=allergen,
        drug=drug,
        regimen=regimen,
        product_id=product_id,
        regimen_id=regimen_id,
        start_time=validate(_StartTimeIn, {"start_time": start_time}).start_time,
        maintenance_interval_weeks=_opt_limit("maintenance_interval_weeks", maintenance_interval_weeks),
        omalizumab_lead_weeks=_opt_limit("omalizumab_lead_weeks", omalizumab_lead_weeks),
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

    def fn(s: Session) -> dict[str, Any]:
        p = find_patient(s, pseudo_id)
        c = m.Course(patient_id=p.id, **values)
        s.add(c)
        s.flush()
        return local_row(c)

    return unit_of_work.write(reg, actor, USE_CASE, fn, idempotency_key=idempotency_key)
