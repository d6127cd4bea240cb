"""Omalizumab administrations: record one dose given, in one transaction.

- `record_course_omalizumab` (the injection-day page, the API, ``immunoplan omalizumab-dose record``): the
  dose of a course planned with omalizumab (an omalizumab course, or immunotherapy with omalizumab ``pre`` /
  ``concurrent``); the interval and the basis are the label dose stored with the course's plan.
- `record_omalizumab`: the keyword form (tests, FHIR and other import-like callers), optionally without a
  course; a course given must also be planned with omalizumab.

Both refuse the same act twice: a dose for the same patient in the same clinic minute as a dose already
recorded (entries not voided) is a `Conflict` naming the first record.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from immunoplan import clock
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.reference.limits import limit
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services import unit_of_work
from immunoplan.services.inputs import InputModel, validate
from immunoplan.services.records.amending import (
    apply_changes,
    refuse_nothing_changed,
    refuse_unknown_fields,
    stamp_amended,
)
from immunoplan.services.records.common import (
    as_input,
    basis_json,
    find_course,
    find_patient,
    live_rows,
    lock_row,
)
from immunoplan.services.records.courses import course_by_id, planned_with_omalizumab, stored_label_dose
from immunoplan.services.records.courses.reads import adjuvant_dose
from immunoplan.services.records.fields import (
    OptionalClinicDate,
    OptionalClinicInstant,
    local_row,
    refuse_future_instant,
)
from immunoplan.services.records.vials import refuse_expired

USE_CASE = "record_omalizumab"
Row = m.OmalizumabAdministration


class OmalizumabDoseIn(InputModel):
    """One omalizumab administration of a course. ``given_at`` is clinic-local time (default: now)."""

    course_id: int = Field(ge=1)
    dose_mg: Decimal = limit("omalizumab_dose_mg").pydantic()
    given_at: OptionalClinicInstant = Field(None, json_schema_extra={"accepted": "YYYY-MM-DDTHH:MM (clinic)"})
    site: str | None = Field(None, max_length=32)
    lot: str | None = Field(None, max_length=64)
    expiry_on: OptionalClinicDate = Field(None, json_schema_extra={"accepted": "YYYY-MM-DD"})
    observed_minutes: int | None = limit("observed_minutes").pydantic(None)


def observation_for(s: Session, patient_id: int) -> dict[str, Any]:
    """The observation after the patient's next omalizumab dose (its number among the live ones) with the
    rule's basis (`immunoplan.clinical.omalizumab.observation`)."""
    from immunoplan.clinical.omalizumab.observation import omalizumab_observation_minutes

    given = len(live_rows(s, Row, Row.patient_id == patient_id))
    minutes, basis = omalizumab_observation_minutes(given + 1)
    return {"dose_number": given + 1, "minutes": minutes, "basis": basis.to_dict()}


def same_minute_administration(
    s: Session, patient_id: int, at: datetime, *, other_than: int | None = None
) -> Row | None:
    """The patient's first live administration in the same (UTC) minute as ``at`` (``other_than``: leave
    that one out, an amendment's own row), or None."""
    start = clock.to_utc_stored(at).replace(second=0, microsecond=0)
    q = select(Row).where(
        Row.patient_id == patient_id,
        Row.voided_at.is_(None),
        Row.given_at >= start,
        Row.given_at < start + timedelta(minutes=1),
    )
    if other_than is not None:
        q = q.where(Row.id != other_than)
    return s.scalars(q.order_by(Row.id).limit(1)).first()


def _refuse_same_act(s: Session, patient_id: int, at: datetime) -> None:
    """The same patient's dose in the same minute (entries not voided) is the same act recorded twice."""
    first = same_minute_administration(s, patient_id, at)
    if first is not None:
        raise Conflict(
            "given_at",
            f"omalizumab {first.dose_mg} mg was already recorded for this patient at "
            f"{clock.format_local(first.given_at)}: the same dose is not recorded twice",
            f"omalizumab administration {first.id}",
        )


def _planned_course(s: Session, course_id: Any, *, patient_id: int | None = None) -> m.Course:
    """The course, locked for this transaction (PostgreSQL), refused unless planned with omalizumab
    (``patient_id``: a course of another patient is a `LookupError`)."""
    c = find_course(s, course_id) if patient_id is None else course_by_id(s, course_id, patient_id=patient_id)
    lock_row(s, c)
    if not planned_with_omalizumab(c):
        raise InvalidInput(
            "course_id",
            f"course {c.id} ({c.kind}) was not planned with omalizumab: record the dose on an omalizumab "
            "course, an immunotherapy course planned with omalizumab pre-treatment or concurrently, or a "
            "desensitization course once its adjuvant omalizumab plan is recorded",
            "a course planned with omalizumab",
        )
    return c


def _result(row: Row, label: Mapping[str, Any] | None) -> dict[str, Any]:
    out = local_row(row)
    out["planned_dose_mg"] = label.get("dose_mg") if label else None
    return out


def record_course_omalizumab(
    reg: Registry,
    actor: str,
    *,
    course_id: Any,
    dose_mg: Any,
    given_at: Any = None,
    site: str | None = None,
    lot: str | None = None,
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Record an omalizumab dose of a course planned with omalizumab (interval and basis: the stored label
    dose). Refused, nothing written: a course not planned with omalizumab (`InvalidInput` ``course_id``), a
    dose outside ``omalizumab_dose_mg``, the same patient's dose in the same minute (`Conflict`)."""
    raw = {"course_id": course_id, "dose_mg": dose_mg, "given_at": given_at, "site": site, "lot": lot}
    d = validate(OmalizumabDoseIn, {k: v for k, v in raw.items() if v is not None})
    return record_dose(reg, actor, d, idempotency_key=idempotency_key)


def record_dose(
    reg: Registry,
    actor: str,
    data: OmalizumabDoseIn | Mapping[str, Any],
    *,
    idempotency_key: Any = None,
    patient_id: int | None = None,
) -> dict[str, Any]:
    """`record_course_omalizumab` with the input model (API body, CLI). ``patient_id`` (web routes): a course
    of another patient is a `LookupError` (404)."""
    d = as_input(OmalizumabDoseIn, data)
    when = d.given_at or clock.now()
    refuse_future_instant("given_at", when)
    if d.expiry_on is not None:
        refuse_expired("expiry_on", d.expiry_on, clock.local_date(when), what="syringe lot")

    def fn(s: Session) -> dict[str, Any]:
        c = _planned_course(s, d.course_id, patient_id=patient_id)
        _refuse_same_act(s, c.patient_id, when)
        observation = observation_for(s, c.patient_id)
        label = stored_label_dose(c) or adjuvant_dose(c)
        row = Row(
            patient_id=c.patient_id,
            course_id=c.id,
            given_at=when,
            dose_mg=d.dose_mg,
            interval_weeks=int(label["interval_weeks"]) if label and label.get("interval_weeks") else None,
            site=d.site,
            lot=d.lot,
            expiry_on=d.expiry_on,
            observed_minutes=d.observed_minutes,
            basis=basis_json(label.get("basis")) if label and label.get("basis") else None,
        )
        s.add(row)
        s.flush()
        return {**_result(row, label), "observation": observation}

    return unit_of_work.write(reg, actor, USE_CASE, fn, idempotency_key=idempotency_key)


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
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Record an omalizumab administration (keyword style). With a ``course_id`` the course must be planned
    with omalizumab and its stored label dose gives the interval and basis when none is passed."""
    when = clock.parse_local("given_at", given_at)
    refuse_future_instant("given_at", when)
    dose = limit("omalizumab_dose_mg").check(dose_mg, "dose_mg")
    interval = limit("omalizumab_interval_weeks").check_optional(interval_weeks, "interval_weeks")

    def fn(s: Session) -> dict[str, Any]:
        p = find_patient(s, pseudo_id)
        c = None if course_id in (None, "") else _planned_course(s, course_id)
        if c is not None and c.patient_id != p.id:
            raise InvalidInput("course_id", f"course {c.id} is not a course of patient {p.pseudo_id}")
        _refuse_same_act(s, p.id, when)
        label = (stored_label_dose(c) or adjuvant_dose(c)) if c is not None else None
        weeks = interval if interval is not None else (label or {}).get("interval_weeks")
        row = Row(
            patient_id=p.id,
            course_id=c.id if c is not None else None,
            given_at=when,
            dose_mg=dose,
            interval_weeks=None if weeks is None else int(weeks),
            site=site,
            lot=lot,
            basis=basis_json(basis if basis is not None else (label or {}).get("basis")),
        )
        s.add(row)
        s.flush()
        return _result(row, label)

    return unit_of_work.write(reg, actor, USE_CASE, fn, idempotency_key=idempotency_key)


# ------------------------------------------------------------------------------------------------ amend

#: the fields an amendment may change
AMENDABLE = ("given_at", "dose_mg", "interval_weeks", "site", "lot")


def _text(field: str, value: Any, max_chars: int) -> str | None:
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    if len(text) > max_chars:
        raise InvalidInput(field, "is too long", f"at most {max_chars} characters")
    return text


def amend_administration(
    s: Session, actor: str, row: Row, changes: Mapping[str, Any], reason: str, at: datetime
) -> dict[str, Any]:
    """Amend a live administration (any of `AMENDABLE`, called by `services.records.corrections`): values
    within their field limits; a new time in the same minute as another dose is refused (`Conflict`)."""
    refuse_unknown_fields(changes, AMENDABLE, "an omalizumab")
    values: dict[str, Any] = {}
    if "given_at" in changes:
        when = clock.parse_local("given_at", changes["given_at"])
        refuse_future_instant("given_at", when)
        other = same_minute_administration(s, row.patient_id, when, other_than=row.id)
        if other is not None:
            raise Conflict(
                "given_at",
                f"omalizumab administration {other.id} is already recorded at "
                f"{clock.format_local(other.given_at)}: correct or void that one instead",
                f"omalizumab {other.id}",
            )
        values["given_at"] = when
    if "dose_mg" in changes:
        values["dose_mg"] = limit("omalizumab_dose_mg").check(changes["dose_mg"], "dose_mg")
    if "interval_weeks" in changes:
        d = limit("omalizumab_interval_weeks").check_optional(changes["interval_weeks"], "interval_weeks")
        if d is not None and d != d.to_integral_value():
            raise InvalidInput(
                "interval_weeks", "must be whole weeks", limit("omalizumab_interval_weeks").accepted
            )
        values["interval_weeks"] = None if d is None else int(d)
    for name, size in (("site", 32), ("lot", 64)):
        if name in changes:
            values[name] = _text(name, changes[name], size)
    changed = apply_changes(row, values)
    refuse_nothing_changed(changed)
    stamp_amended(row, actor, reason, at)
    return {"changed": changed}
