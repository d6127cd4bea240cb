"""Rapid drug desensitization sessions and their steps."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select

from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import checks as ck
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.records.common import (
    as_row,
    basis_json,
    find_course,
    opt_decimal,
    opt_int,
    save_row,
)


def start_desensitization(
    reg: Registry,
    actor: str,
    *,
    course_id: Any,
    session_on: Any,
    drug: str,
    target_dose_mg: Any,
    protocol: str | None = None,
    plan: Any = None,
    basis: Any = None,
) -> dict[str, Any]:
    """Open a rapid drug desensitization session (the plan shown is stored with it)."""
    day = ck.to_date("session_on", session_on)
    target = ck.positive_decimal("target_dose_mg", target_dose_mg)
    with reg.transaction(actor, "start_desensitization") as s:
        c = find_course(s, course_id)
        if c.kind != "drug_desensitization":
            raise InvalidInput("course_id", f"course {c.id} is {c.kind}, not a drug desensitization course")
        row = m.DesensitizationSession(
            course_id=c.id,
            patient_id=c.patient_id,
            session_on=day,
            drug=ck.not_empty("drug", drug),
            target_dose_mg=target,
            protocol=protocol,
            plan=to_jsonable(plan) if plan is not None else None,
            basis=basis_json(basis),
        )
        s.add(row)
        if c.status == "planned":
            c.status = "active"
        s.flush()
        return as_row(row)


def record_step(
    reg: Registry,
    actor: str,
    *,
    session_id: Any,
    step_no: Any,
    dose_mg: Any,
    bag: Any = None,
    rate_ml_h: Any = None,
    minutes: Any = None,
    started_at: Any = None,
    status: str = "given",
) -> dict[str, Any]:
    """Record one desensitization step given (cumulative dose computed exactly from earlier steps)."""
    n = int(ck.to_float("step_no", step_no))
    if n < 1:
        raise InvalidInput("step_no", "must be at least 1", "[1, inf)")
    dose = ck.positive_decimal("dose_mg", dose_mg, allow_zero=True)
    status = ck.choice("status", status, ("given", "paused", "skipped", "stopped"))
    with reg.transaction(actor, "record_step") as s:
        sess = s.get(m.DesensitizationSession, int(ck.to_float("session_id", session_id)))
        if sess is None:
            raise InvalidInput("session_id", f"no desensitization session {session_id!r}")
        earlier = s.scalars(
            select(m.DesensitizationStep.dose_mg).where(
                m.DesensitizationStep.session_id == sess.id,
                m.DesensitizationStep.step_no < n,
                m.DesensitizationStep.status == "given",
            )
        ).all()
        cumulative = sum(earlier, Decimal(0)) + (dose if status == "given" else Decimal(0))
        row = m.DesensitizationStep(
            session_id=sess.id,
            step_no=n,
            dose_mg=dose,
            cumulative_dose_mg=cumulative,
            status=status,
            bag=opt_int("bag", bag),
            rate_ml_h=opt_decimal("rate_ml_h", rate_ml_h),
            minutes=opt_decimal("minutes", minutes),
            started_at=ck.to_datetime("started_at", started_at) if started_at else None,
        )
        return save_row(s, row)
