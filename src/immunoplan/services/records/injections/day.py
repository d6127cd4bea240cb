"""The injection-day read model: everything the nurse's page shows for one course."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from immunoplan import clock
from immunoplan.clinical.anaphylaxis import adrenaline_dose
from immunoplan.clinical.immunotherapy import due_status, product
from immunoplan.clinical.immunotherapy.preinjection import check_questions
from immunoplan.clinical.omalizumab.observation import omalizumab_observation_minutes
from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
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
from immunoplan.services.records.omalizumab import observation_for
from immunoplan.services.records.patients import age_on, latest_weight_kg
from immunoplan.services.records.vials import is_new_vial, live_vials, vial_row


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
        {
            "id": o.id,
            "given_at": clock.local(o.given_at),
            "dose_mg": o.dose_mg,
            "lot": o.lot,
            "expiry_on": o.expiry_on,
            "observed_minutes": o.observed_minutes,
        }
        for o in rows
    ]


def _observation_source(product_id: str | None) -> str | None:
    """Where the product's observation time comes from (``scit_products`` ``observation_source``)."""
    if not product_id:
        return None
    try:
        return str(product(product_id).get("observation_source") or "") or None
    except InvalidInput:
        return None


def _omalizumab_timer(given: list[dict[str, Any]], following: dict[str, Any] | None) -> dict[str, Any] | None:
    """The observation timer of an omalizumab dose given today (the course's last), for that dose's number
    among the patient's doses (the first doses are observed longer: `omalizumab_observation_minutes`)."""
    if not given or not following or not following.get("dose_number"):
        return None
    start = given[-1]["given_at"]
    if clock.local_date(start) != clock.today():
        return None
    number = max(int(following["dose_number"]) - 1, 1)
    minutes, basis = omalizumab_observation_minutes(number)
    until = start + timedelta(minutes=minutes)
    return {
        "start": start,
        "minutes": minutes,
        "until": until,
        "dose_number": number,
        "basis": basis.to_dict(),
    }


def _default_vial(s: Any, c: m.Course, live: list[m.Injection], now: Any) -> m.Vial | None:
    """The vial the page proposes: the newest in-date vial at the strength of the dose due (its lot decides
    whether the new-vial rule applies), else None (the nurse chooses)."""
    vials = [v for v in live_vials(s, c) if v.expiry_on >= clock.local_date(now)]
    if not vials:
        return None
    plain, _ = next_injection_view(c, live, reactions_by_injection(s, live), now)
    strength = str((plain.get("dose") or {}).get("vial", ""))
    same = [v for v in vials if v.strength == strength]
    last = [v for v in same if live and live[-1].vial_id == v.id]
    chosen = last or same
    return chosen[0] if chosen else None


def _adrenaline(weight_kg: float | None, age_years: int | None) -> dict[str, Any]:
    """The IM adrenaline dose for the patient's latest weight (`clinical.anaphylaxis`), or why not."""
    if weight_kg is None:
        return {"dose": None, "reason": "no weight recorded: record the weight to show the adrenaline dose"}
    try:
        dose = adrenaline_dose(Decimal(str(weight_kg)), None if age_years is None else Decimal(age_years))
    except InvalidInput as exc:
        return {"dose": None, "reason": str(exc)}
    return {"dose": to_jsonable(dose.to_dict()), "reason": None}


def _omalizumab_due(plan: dict[str, Any], given: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The next planned omalizumab administration not yet given (by count), and whether it is due today."""
    planned = plan.get("administrations") or []
    if len(given) >= len(planned):
        return None
    nxt = planned[len(given)]
    on = clock.parse_date("date", nxt["date"]) if nxt.get("date") else None
    return {**nxt, "number": len(given) + 1, "due_today": on is not None and on <= clock.today()}


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
        usable = [vial_row(v) for v in live_vials(s, c) if v.expiry_on >= clock.today()]
        default_vial = _default_vial(s, c, live, now)
        new_vial = default_vial is not None and is_new_vial(default_vial, live)
        nxt, _ = next_injection_view(c, live, reactions_by_injection(s, live), now, new_vial=new_vial)
        nxt["vial"] = None if default_vial is None else {**vial_row(default_vial), "new_vial": new_vial}
        weight = latest_weight_kg(s, p.id)
        age = age_on(p.birth_date, p.age_years, clock.today())
        omalizumab_observation = observation_for(s, p.id) if c.with_omalizumab else None
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
        product_id = c.product_id
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
        "vials": usable,
        "questions": check_questions(),
        "adrenaline": _adrenaline(weight, age),
        "omalizumab_due": _omalizumab_due(plan_result.get("omalizumab") or {}, omalizumab_given),
        "omalizumab_observation": omalizumab_observation,
        "omalizumab_timer": _omalizumab_timer(omalizumab_given, omalizumab_observation),
        "observation_source": _observation_source(product_id),
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
