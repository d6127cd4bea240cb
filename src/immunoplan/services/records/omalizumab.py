"""Omalizumab administrations."""

from __future__ import annotations

from typing import Any

from immunoplan.registry import checks as ck
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.records.common import (
    basis_json,
    find_patient,
    opt_course_id,
    opt_int,
    save_row,
)


def record_omalizumab(
    reg: Registry,
    actor: str,
    *,
    pseudo_id: str,
    given_at: Any,
    dose_mg: Any,
    course_id: Any = None,
    interval_weeks: Any = None,
    site: str | None = None,
    lot: str | None = None,
    basis: Any = None,
) -> dict[str, Any]:
    """Record an omalizumab administration."""
    when = ck.to_datetime("given_at", given_at)
    dose = ck.positive_decimal("dose_mg", dose_mg)
    with reg.transaction(actor, "record_omalizumab") as s:
        p = find_patient(s, pseudo_id)
        row = m.OmalizumabAdministration(
            patient_id=p.id,
            given_at=when,
            dose_mg=dose,
            site=site,
            lot=lot,
            course_id=opt_course_id(s, course_id),
            interval_weeks=opt_int("interval_weeks", interval_weeks),
            basis=basis_json(basis),
        )
        return save_row(s, row)
