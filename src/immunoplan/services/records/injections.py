"""Immunotherapy injections and the due/late list."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from immunoplan.errors import InvalidInput
from immunoplan.registry import checks as ck
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.records.common import (
    as_row,
    find_course,
    opt_decimal,
)


def record_injection(
    reg: Registry,
    actor: str,
    *,
    course_id: Any,
    given_at: Any,
    dose: Any,
    dose_unit: str,
    volume_ml: Any = None,
    vial: str | None = None,
    site: str | None = None,
    lot: str | None = None,
    phase: str | None = None,
    observed_minutes: Any = None,
    next_due_on: Any = None,
) -> dict[str, Any]:
    """Record an immunotherapy injection; the course becomes active and its next due date moves on
    (``next_due_on`` if given, else given date + the course's planned ``interval_days``). Reaching the
    course's target dose marks ``target_reached``."""
    when = ck.to_datetime("given_at", given_at)
    d = ck.positive_decimal("dose", dose)
    vol = opt_decimal("volume_ml", volume_ml)
    unit = ck.not_empty("dose_unit", dose_unit)
    with reg.transaction(actor, "record_injection") as s:
        c = find_course(s, course_id)
        if c.kind not in ("SCIT", "RIT", "cluster", "OIT"):
            raise InvalidInput("course_id", f"course {c.id} is {c.kind}, not an immunotherapy course")
        seq = (s.scalar(select(func.count()).where(m.Injection.course_id == c.id)) or 0) + 1
        inj = m.Injection(
            course_id=c.id,
            patient_id=c.patient_id,
            sequence=seq,
            given_at=when,
            dose=d,
            dose_unit=unit,
            volume_ml=vol,
            vial=vial,
            site=site,
            lot=lot,
            given_by=actor,
            phase=ck.optional_choice("phase", phase, m.INJECTION_PHASES),
            observed_minutes=None if observed_minutes in (None, "") else int(observed_minutes),
        )
        s.add(inj)
        if c.status == "planned":
            c.status = "active"
            c.started_on = c.started_on or when.date()
        if next_due_on not in (None, ""):
            c.next_due_on = ck.to_date("next_due_on", next_due_on)
        elif c.interval_days:
            c.next_due_on = when.date() + timedelta(days=c.interval_days)
        if c.target_dose is not None and c.dose_unit == unit and d >= c.target_dose and not c.target_reached:
            c.target_reached, c.target_reached_on = True, when.date()
        s.flush()
        return as_row(inj)


def list_due_injections(
    reg: Registry, *, as_of: Any = None, window_days: int = 0, grace_days: int = 0
) -> list[dict[str, Any]]:
    """Active immunotherapy courses whose next injection is due by ``as_of + window_days``.

    ``status`` is ``late`` when more than ``grace_days`` past the due date, else ``due``. Both windows are the
    caller's (clinic policy), not clinical thresholds; the missed-dose rules live in the protocol engine.
    """
    day = ck.to_date("as_of", as_of) if as_of else date.today()
    for name, val in (("window_days", window_days), ("grace_days", grace_days)):
        if int(val) < 0:
            raise InvalidInput(name, "must not be negative", "[0, inf)")
    horizon = day + timedelta(days=int(window_days))
    with reg.session() as s:
        rows = s.execute(
            select(m.Course, m.Patient.pseudo_id)
            .join(m.Patient, m.Patient.id == m.Course.patient_id)
            .where(
                m.Course.status == "active",
                m.Course.kind.in_(("SCIT", "RIT", "cluster", "OIT")),
                m.Course.next_due_on.is_not(None),
                m.Course.next_due_on <= horizon,
            )
            .order_by(m.Course.next_due_on, m.Course.id)
        ).all()
        out = []
        for c, pid in rows:
            assert c.next_due_on is not None  # filtered above
            overdue = (day - c.next_due_on).days
            last = s.scalar(select(func.max(m.Injection.given_at)).where(m.Injection.course_id == c.id))
            out.append(
                dict(
                    pseudo_id=pid,
                    course_id=c.id,
                    kind=c.kind,
                    product=c.product,
                    next_due_on=c.next_due_on.isoformat(),
                    days_overdue=max(overdue, 0),
                    last_injection_at=last.isoformat() if isinstance(last, datetime) else None,
                    status="late" if overdue > int(grace_days) else "due",
                )
            )
        return out
