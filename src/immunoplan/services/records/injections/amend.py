"""Corrections of an injection in the caller's transaction (called by `services.records.corrections`): an
amendment re-validated as when recording, and the course's next due date and target recomputed after a
void or an amendment."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from immunoplan import clock
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.registry import models as m
from immunoplan.services.inputs import validate
from immunoplan.services.records.amending import (
    apply_changes,
    refuse_nothing_changed,
    refuse_unknown_fields,
    stamp_amended,
)
from immunoplan.services.records.injections.history import live_injections, recompute_next_due
from immunoplan.services.records.injections.inputs import CLINIC_TIME, InjectionIn
from immunoplan.services.records.injections.recording import (
    dose_in_product_units,
    refuse_future_given_at,
    same_minute_injections,
)

#: the fields an amendment may change (input names)
AMENDABLE = ("given_at", "dose_ml", "vial", "dose", "dose_unit", "site", "lot", "phase", "observed_minutes")


def _new_values(s: Session, row: m.Injection, changes: Mapping[str, Any]) -> dict[str, Any]:
    """The columns ``changes`` set, validated with `InjectionIn`; a new volume or vial recomputes the dose
    from the product's vial strength (as recording does); a time in the future is refused."""
    c = s.get(m.Course, row.course_id, with_for_update=True)
    assert c is not None
    data = validate(InjectionIn, {"course_id": row.course_id, **changes})
    values: dict[str, Any] = {}
    if "given_at" in changes:
        if data.given_at is None:
            raise InvalidInput("given_at", "is required", CLINIC_TIME)
        refuse_future_given_at(data.given_at, clock.now())
        values["given_at"] = data.given_at
    if {"dose_ml", "vial"} & set(changes):
        merged = data.model_copy(
            update={
                "dose_ml": data.dose_ml if data.dose_ml is not None else row.volume_ml,
                "vial": data.vial if data.vial is not None else row.vial,
            }
        )
        units, unit, vial = dose_in_product_units(c, merged, None)
        values.update(volume_ml=merged.dose_ml, dose=units, dose_unit=unit, vial=vial)
    elif "dose" in changes:
        if data.dose is None:
            raise InvalidInput("dose", "is required", "a positive number in product units")
        values.update(dose=data.dose, dose_unit=data.dose_unit or row.dose_unit)
    elif "dose_unit" in changes and data.dose_unit:
        values["dose_unit"] = data.dose_unit
    for name in ("site", "lot", "phase", "observed_minutes"):
        if name in changes:
            values[name] = getattr(data, name)
    return values


def _refuse_same_act(s: Session, row: m.Injection, when: datetime, units: Any) -> None:
    """Another live injection of the course at the same instant, or in the same minute with the same dose."""
    for other in same_minute_injections(s, row.course_id, when, other_than=row.id):
        if clock.to_utc_stored(other.given_at) == when or Decimal(other.dose) == units:
            raise Conflict(
                "given_at",
                f"injection {other.id} is already recorded at {clock.format_local(other.given_at)} "
                f"({other.dose} {other.dose_unit}, same course): correct or void that one instead",
                f"injection {other.id}",
            )


def amend_injection(
    s: Session, actor: str, row: m.Injection, changes: Mapping[str, Any], reason: str, at: datetime
) -> dict[str, Any]:
    """Amend a live injection (any of `AMENDABLE`), re-validated with `InjectionIn`; refuses the same act as
    another injection (`Conflict` naming it)."""
    refuse_unknown_fields(changes, AMENDABLE, "an injection")
    values = _new_values(s, row, changes)
    when = values.get("given_at", clock.to_utc_stored(row.given_at))
    _refuse_same_act(s, row, when, values.get("dose", row.dose))
    changed = apply_changes(row, values)
    refuse_nothing_changed(changed)
    stamp_amended(row, actor, reason, at)
    return {"changed": changed}


def recompute_course_after_correction(s: Session, course_id: int) -> dict[str, Any]:
    """After an injection (or its reaction) is voided or amended: the course's next due date from the engine
    over its live injections (`recompute_next_due`, as a recording sets it), else the planned interval after
    the last live injection; and whether the target dose is still reached. Returns what the course now
    says."""
    c = s.get(m.Course, course_id, with_for_update=True)
    assert c is not None  # injections.course_id is a non-null foreign key
    s.flush()
    live = live_injections(s, c.id)
    planned = None
    if live and c.interval_days:
        planned = clock.local_date(live[-1].given_at) + timedelta(days=c.interval_days)
    recompute_next_due(s, c, fallback_due=planned)
    if c.target_dose is not None:
        reached = [
            i for i in live if i.dose_unit == c.dose_unit and Decimal(i.dose) >= Decimal(c.target_dose)
        ]
        c.target_reached = bool(reached)
        c.target_reached_on = clock.local_date(reached[0].given_at) if reached else None
    return {"course_id": c.id, "next_due_on": c.next_due_on, "target_reached": c.target_reached}
