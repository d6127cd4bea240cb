"""What both plans share: the calendar (SCIT visits and omalizumab administrations by date), the
planned course as returned, and the patient locked for planning."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from immunoplan.registry import models as m
from immunoplan.services.records.common import lock_row
from immunoplan.services.records.fields import local_row
from immunoplan.services.records.patients import patient_by_id


def calendar(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One calendar: each date with its SCIT visit and/or omalizumab administration."""
    days: dict[str, dict[str, Any]] = {}
    for v in result.get("visits") or []:
        days.setdefault(v["date"], {"date": v["date"], "scit": None, "omalizumab": None})["scit"] = v
    for a in (result.get("omalizumab") or {}).get("administrations") or []:
        days.setdefault(a["date"], {"date": a["date"], "scit": None, "omalizumab": None})["omalizumab"] = a
    return [days[k] for k in sorted(days)]


def locked_patient(s: Session, patient_id: Any) -> m.Patient:
    """The patient, its row locked on PostgreSQL for the rest of the transaction (SQLite: BEGIN IMMEDIATE)."""
    p = patient_by_id(s, patient_id)
    lock_row(s, p)
    return p


def planned_result(c: m.Course, result: Mapping[str, Any]) -> dict[str, Any]:
    """A planned course as returned: its id, the stored row, the schedule, omalizumab, calendar, warnings and
    basis."""
    return {
        "id": c.id,
        "course": local_row(c),
        "kind": c.kind,
        "schedule": result.get("visits") or [],
        "omalizumab": result.get("omalizumab"),
        "calendar": result.get("calendar") or [],
        "warnings": result.get("warnings") or [],
        "basis": c.basis or [],
    }
