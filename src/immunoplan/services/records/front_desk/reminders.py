"""Reminders of immunotherapy visits: an iCalendar (.ics) file per patient or for the whole clinic, and a CSV
for a mail merge (columns `REMINDER_COLUMNS`, docs/injection-day.md "Front desk").

A reminder is one active immunotherapy course whose due date (``courses.next_due_on``, computed by the
injection engine) falls from clinic date ``on`` (default today) to ``on + days_ahead``. Courses already late
are not reminded: they are on the late-shot list, for the front desk to phone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from icalendar import Calendar, Event
from sqlalchemy import select

from immunoplan import clock
from immunoplan.errors import InvalidInput
from immunoplan.reference.limits import limit
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.records import injections
from immunoplan.services.records.front_desk.csv_cells import csv_text
from immunoplan.services.records.front_desk.late_list import MAX_ROWS

#: the default reminder horizon (clinic policy, checked by the ``due_window_days`` field limit)
DEFAULT_DAYS_AHEAD = 14
#: what an event says: nothing clinical beyond this (the reminder leaves the hospital)
SUMMARY = "Allergy injection appointment"
#: the mail-merge CSV (docs/injection-day.md "Front desk")
REMINDER_COLUMNS = (
    "pseudo_id",
    "mrn",
    "display_name",
    "patient_id",
    "course_id",
    "due_on",
    "weekday",
    "clinic_time_zone",
    "message",
)


def _message(due_on: date) -> str:
    return (
        f"{SUMMARY} due on {due_on.strftime('%A')} {due_on.isoformat()}. Please contact the clinic to book "
        "or change it."
    )


def reminder_rows(
    reg: Registry, *, patient_id: Any = None, on: Any = None, days_ahead: Any = DEFAULT_DAYS_AHEAD
) -> list[dict[str, Any]]:
    """The visits to remind: active immunotherapy courses due from clinic date ``on`` (default today) to
    ``on + days_ahead`` (clinic policy, ``due_window_days`` limit), soonest first, for one patient (registry
    id) or all; at most `MAX_ROWS`. Each row: patient (registry id, pseudo id, MRN, name), course id, the
    clinic-local ``due_on`` and its weekday, the clinic's zone and the reminder ``message``."""
    day = clock.today() if on in (None, "") else clock.parse_date("on", on)
    ahead = int(limit("due_window_days").check(days_ahead, "days_ahead"))
    where = [
        m.Course.status == "active",
        m.Course.kind.in_(injections.IMMUNOTHERAPY_KINDS),
        m.Course.next_due_on.is_not(None),
        m.Course.next_due_on >= day,
        m.Course.next_due_on <= day + timedelta(days=ahead),
    ]
    with reg.session() as s:
        if patient_id not in (None, ""):
            try:
                pid = int(str(patient_id))
            except ValueError:
                raise InvalidInput(
                    "patient_id", f"not a patient id: {patient_id!r}", "a whole number"
                ) from None
            if s.get(m.Patient, pid) is None:
                raise InvalidInput("patient_id", f"no patient {pid} in the registry")
            where.append(m.Course.patient_id == pid)
        found = s.execute(
            select(m.Course.id, m.Course.next_due_on, m.Patient)
            .join(m.Patient, m.Patient.id == m.Course.patient_id)
            .where(*where)
            .order_by(m.Course.next_due_on, m.Course.id)
            .limit(MAX_ROWS)
        ).all()
        return [
            {
                "pseudo_id": p.pseudo_id,
                "mrn": p.mrn,
                "display_name": p.display_name,
                "patient_id": p.id,
                "course_id": cid,
                "due_on": due.isoformat(),
                "weekday": due.strftime("%A"),
                "clinic_time_zone": clock.zone_name(),
                "message": _message(due),
            }
            for cid, due, p in found
            if due is not None  # the SQL filter: never None
        ]


def _calendar(rows: list[dict[str, Any]], *, per_patient: bool) -> bytes:
    stamp = clock.now()
    cal = Calendar()
    cal.add("prodid", "-//immunoplan//immunotherapy reminders//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", "Allergy injection appointments")
    cal.add("x-wr-timezone", clock.zone_name())
    for r in rows:
        due = date.fromisoformat(r["due_on"])
        ev = Event()
        ev.add("uid", f"immunoplan-course-{r['course_id']}-due-{r['due_on']}@immunoplan")
        ev.add("dtstamp", stamp)
        ev.add("dtstart", due)  # an all-day event on the clinic-local date (VALUE=DATE: no time, no zone)
        ev.add("dtend", due + timedelta(days=1))
        # the clinic-wide feed stays in the clinic: the pseudonymous id tells its events apart
        ev.add("summary", SUMMARY if per_patient else f"{SUMMARY} ({r['pseudo_id']})")
        ev.add("description", f"{r['message']} (clinic date, time zone {r['clinic_time_zone']})")
        ev.add("transp", "TRANSPARENT")
        cal.add_component(ev)
    return bytes(cal.to_ical())


def reminders_ics(
    reg: Registry, *, patient_id: Any = None, on: Any = None, days_ahead: Any = DEFAULT_DAYS_AHEAD
) -> bytes:
    """The reminders (`reminder_rows`) as an iCalendar file: one all-day event per due visit on its
    clinic-local due date (``X-WR-TIMEZONE`` names the clinic's zone), with a stable UID per course and due
    date (re-importing updates the event instead of duplicating it).

    What is left out, and why: a reminder leaves the hospital (a patient's phone, a mail server, a shared
    calendar), so an event says only "Allergy injection appointment" and the due date: no name, MRN,
    product, allergen, dose, vial or reaction, nothing that tells a reader what the patient is treated for
    beyond an allergy appointment. The clinic-wide feed (no ``patient_id``) adds the pseudonymous id only,
    to tell events apart; it is for the clinic's own calendar. No appointment time is held by the registry
    (only the due date), so none is invented."""
    rows = reminder_rows(reg, patient_id=patient_id, on=on, days_ahead=days_ahead)
    return _calendar(rows, per_patient=patient_id not in (None, ""))


def reminders_csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """Reminder rows as mail-merge CSV text (`REMINDER_COLUMNS`), cells neutralised against formulas."""
    return csv_text(REMINDER_COLUMNS, rows)


def reminders_csv(
    reg: Registry, *, patient_id: Any = None, on: Any = None, days_ahead: Any = DEFAULT_DAYS_AHEAD
) -> str:
    """The reminders (`reminder_rows`) as CSV text for a mail merge (`REMINDER_COLUMNS`). It holds the name
    and MRN so the clinic can merge it with its own address book; the letter itself should print only the
    name, the date and the message. Every cell is neutralised against spreadsheet formulas."""
    return reminders_csv_text(reminder_rows(reg, patient_id=patient_id, on=on, days_ahead=days_ahead))
