"""A no-show: the patient did not come to an immunotherapy visit that was due. Recorded as such (one use case,
one transaction) so the late-shot list and the research exports see it; it changes no dose and no due date
(when the patient comes back, the missed-dose rules read the interval since the last injection given).
Corrected like any entry: ``void --kind no-show`` (`immunoplan.services.records.corrections`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from immunoplan import clock
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.inputs import InputModel
from immunoplan.services.records import injections
from immunoplan.services.records.common import as_input
from immunoplan.services.records.fields import OptionalClinicDate
from immunoplan.services.records.front_desk.late_list import no_show_row
from immunoplan.services.records.injections.recording import immunotherapy_course
from immunoplan.services.unit_of_work import write

NOTE_MAX_CHARS = 500
USE_CASE = "record_no_show"


class NoShowIn(InputModel):
    """A no-show as entered (front-desk page, API, CLI): the course, the due date missed (empty: the course's
    current due date) and an optional note (e.g. "phoned, rebooked for Friday")."""

    course_id: int = Field(ge=1, le=2**31 - 1)
    due_on: OptionalClinicDate = Field(None, json_schema_extra={"accepted": "YYYY-MM-DD, not after today"})
    note: str | None = Field(None, max_length=NOTE_MAX_CHARS)


def _refuse_duplicate(s: Session, c: m.Course, due_on: Any) -> None:
    first = s.scalars(
        select(m.NoShow)
        .where(m.NoShow.course_id == c.id, m.NoShow.due_on == due_on, m.NoShow.voided_at.is_(None))
        .order_by(m.NoShow.id)
        .limit(1)
    ).first()
    if first is not None:
        raise Conflict(
            "due_on",
            f"a no-show for course {c.id} due {due_on.isoformat()} was already recorded by "
            f"{first.recorded_by} at {clock.format_local(first.recorded_at)}",
            f"no-show {first.id}",
        )


def _refuse_given_that_day(s: Session, c: m.Course, due_on: Any) -> None:
    """A live injection of the course given on the clinic date ``due_on``: the patient came."""
    for i in injections.live_injections(s, c.id):
        if clock.local_date(i.given_at) == due_on:
            raise Conflict(
                "due_on",
                f"course {c.id} has an injection given {clock.format_local(i.given_at)}: the patient came "
                f"that day (void the injection first if it was recorded by mistake)",
                f"injection {i.id}",
            )


def record_no_show(
    reg: Registry,
    actor: str,
    data: NoShowIn | dict[str, Any],
    *,
    idempotency_key: Any = None,
    patient_id: int | None = None,
) -> dict[str, Any]:
    """Record that the patient did not come to the visit of ``data.course_id`` due ``data.due_on`` (default
    the course's current due date). Refuses (`InvalidInput`): an unknown course, a course that is not an
    immunotherapy course, no due date, a due date after the clinic's today; (`Conflict`): a live no-show
    already recorded for the same course and due date, or a live injection given that day. ``patient_id``
    (web routes): a course of another patient is a `LookupError` (404). Changes no dose and no due date.
    Returns the stored no-show (clinic-local times) with ``pseudo_id`` and ``next_due_on``."""
    d = as_input(NoShowIn, data)

    def fn(s: Session) -> dict[str, Any]:
        c = immunotherapy_course(s, d.course_id, patient_id)
        due_on = d.due_on or c.next_due_on
        if due_on is None:
            raise InvalidInput("due_on", f"course {c.id} has no due date: give the date missed", "YYYY-MM-DD")
        today = clock.today()
        if due_on > today:
            raise InvalidInput(
                "due_on",
                f"{due_on.isoformat()} is after today ({today.isoformat()}, clinic date): a visit not yet "
                "due cannot be missed",
                f"{clock.EARLIEST_DATE.isoformat()} to {today.isoformat()}",
            )
        _refuse_duplicate(s, c, due_on)
        _refuse_given_that_day(s, c, due_on)
        row = m.NoShow(
            patient_id=c.patient_id,
            course_id=c.id,
            due_on=due_on,
            recorded_at=clock.now(),
            recorded_by=actor,
            note=d.note,
        )
        s.add(row)
        s.flush()
        p = s.get(m.Patient, c.patient_id)
        return {
            **no_show_row(row),
            "pseudo_id": p.pseudo_id if p else None,
            "next_due_on": c.next_due_on.isoformat() if c.next_due_on else None,
        }

    return write(reg, actor, USE_CASE, fn, idempotency_key=idempotency_key)
