"""The due/late list of immunotherapy courses (the web list, ``immunoplan due`` and reminders)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from immunoplan import clock
from immunoplan.clinical.immunotherapy import due_status
from immunoplan.reference.limits import limit
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.records.injections.inputs import IMMUNOTHERAPY_KINDS


def list_due_injections(
    reg: Registry, *, as_of: Any = None, window_days: int = 0, grace_days: int = 0
) -> list[dict[str, Any]]:
    """Active immunotherapy courses whose next injection is due by ``as_of`` (default the clinic's today) +
    ``window_days``, each with its status from `immunoplan.clinical.immunotherapy.due_status` (the one
    definition of due/late). The windows are the caller's clinic policy, not clinical thresholds."""
    day = clock.parse_date("as_of", as_of) if as_of not in (None, "") else clock.today()
    window = int(limit("due_window_days").check(window_days, "window_days"))
    grace = int(limit("due_grace_days").check(grace_days, "grace_days"))
    horizon = day + timedelta(days=window)
    with reg.session() as s:
        rows = s.execute(
            select(m.Course, m.Patient.pseudo_id)
            .join(m.Patient, m.Patient.id == m.Course.patient_id)
            .where(
                m.Course.status == "active",
                m.Course.kind.in_(IMMUNOTHERAPY_KINDS),
                m.Course.next_due_on.is_not(None),
                m.Course.next_due_on <= horizon,
            )
            .order_by(m.Course.next_due_on, m.Course.id)
        ).all()
        out = []
        for c, pid in rows:
            status = due_status(c.next_due_on, day, grace, window)
            if status is None or c.next_due_on is None:
                continue
            last = s.scalars(
                select(m.Injection.given_at)
                .where(m.Injection.course_id == c.id, m.Injection.voided_at.is_(None))
                .order_by(m.Injection.given_at.desc())
                .limit(1)
            ).first()
            out.append(
                dict(
                    pseudo_id=pid,
                    course_id=c.id,
                    kind=c.kind,
                    product=c.product,
                    next_due_on=c.next_due_on.isoformat(),
                    days_overdue=max((day - c.next_due_on).days, 0),
                    last_injection_at=clock.iso_local(last),
                    status=status,
                )
            )
        return out
