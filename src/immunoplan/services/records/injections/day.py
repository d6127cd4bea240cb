"""The injection-day read model: everything the nurse's page shows for one course."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from immunoplan import clock
from immunoplan.clinical.immunotherapy import due_status
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.records.common import live_rows
from immunoplan.services.records.courses import course_by_id
from immunoplan.services.records.injections.history import (
    injection_row,
    live_injections,
    next_injection_view,
    reactions_by_injection,
)


def check_course(reg: Registry, patient_id: int, course_id: int) -> None:
    """`LookupError` unless ``course_id`` is a course of ``patient_id`` (routes answer 404)."""
    with reg.session() as s:
        course_by_id(s, course_id, patient_id=patient_id)


def last_injection(reg: Registry, course_id: Any) -> dict[str, Any] | None:
    """The course's last live injection (id, clinic time, dose), or None."""
    with reg.session() as s:
        live = live_injections(s, int(course_id))
        return injection_row(live[-1]) if live else None


def _reaction_json(r: m.Reaction) -> dict[str, Any]:
    return {
        "id": r.id,
        "kind": r.kind,
        "grade": r.grade,
        "scale": r.scale,
        "findings": r.findings or [],
        "voided": r.voided,
    }


def _omalizumab_given(s: Any, course_id: int) -> list[dict[str, Any]]:
    """The course's omalizumab administrations not voided, in the order given."""
    Row = m.OmalizumabAdministration
    rows = live_rows(s, Row, Row.course_id == course_id, order_by=(Row.given_at,))
    return [
        {"id": o.id, "given_at": clock.local(o.given_at), "dose_mg": o.dose_mg, "lot": o.lot} for o in rows
    ]


def injection_day(reg: Registry, patient_id: int, course_id: int) -> dict[str, Any]:
    """Everything the injection-day page shows: patient, course, ``next`` (as `next_dose`), the injections
    (voided and corrected ones marked, with their reactions), the observation timer of today's last
    injection and the course's omalizumab plan and administrations. `LookupError` if not found."""
    now = clock.now()
    with reg.session() as s:
        c = course_by_id(s, course_id, patient_id=patient_id)
        p = s.get(m.Patient, c.patient_id)
        assert p is not None  # foreign key
        live = live_injections(s, c.id)
        nxt, _ = next_injection_view(c, live, reactions_by_injection(s, live), now)
        every = list(
            s.scalars(select(m.Injection).where(m.Injection.course_id == c.id).order_by(m.Injection.given_at))
        )
        reactions = reactions_by_injection(s, every, live=False)
        shown = []
        for i in every:
            row = injection_row(i)
            row["voided"] = i.voided
            row["reactions"] = [_reaction_json(r) for r in reactions.get(i.id, [])]
            shown.append(row)
        plan_result = (c.plan or {}).get("result", {}) if isinstance(c.plan, dict) else {}
        omalizumab_given = _omalizumab_given(s, c.id)
        course = {
            "id": c.id,
            "kind": c.kind,
            "product": c.product,
            "product_id": c.product_id,
            "regimen_id": c.regimen_id,
            "next_due_on": c.next_due_on,
            "dose_unit": c.dose_unit,
            "with_omalizumab": c.with_omalizumab,
        }
        pseudo = p.pseudo_id
    last = next((r for r in reversed(shown) if not r["voided"]), None)
    observation = nxt.get("observation_minutes") or plan_result.get("observation_minutes")
    timer = None
    if last is not None and observation and clock.local_date(last["given_at"]) == clock.today():
        start = last["given_at"]
        timer = {
            "start": start,
            "minutes": int(observation),
            "until": start + timedelta(minutes=int(observation)),
        }
    earliest = nxt.get("earliest_at")
    due_now = (
        nxt["kind"] == "dose"
        and not nxt["visit_complete"]
        and (
            (nxt["due_date"] is None or nxt["due_date"] <= clock.today())
            and (earliest is None or earliest <= now)
        )
    )
    return {
        "patient_id": patient_id,
        "pseudo_id": pseudo,
        "due_now": due_now,
        "course": course,
        "next": nxt,
        "injections": shown,
        "last": last,
        "timer": timer,
        "observation_minutes": observation,
        "omalizumab_plan": plan_result.get("omalizumab") or {},
        "omalizumab_given": omalizumab_given,
        "status": due_status(nxt["due_date"], clock.today()),
    }
