"""A course's live injections as the engine sees them, and the next injection computed from them.

Every writer and reader of a course's next dose goes through `next_injection_view` (and `recompute_next_due`
for the due date stored on the course), so a recording, a reaction and a correction compute it the same way.
Voided injections and voided reactions are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from immunoplan import clock
from immunoplan.clinical import vocabularies
from immunoplan.clinical.immunotherapy import GivenInjection, NextInjection, next_injection
from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.records.common import as_row, live_rows
from immunoplan.services.records.courses import course_by_id
from immunoplan.services.records.injections.inputs import ENGINE_SCALES, LOCAL_SCALE


def live_injections(s: Session, course_id: int) -> list[m.Injection]:
    """The course's injections not voided, in the order given."""
    return live_rows(
        s, m.Injection, m.Injection.course_id == course_id, order_by=(m.Injection.given_at, m.Injection.id)
    )


def reactions_by_injection(
    s: Session, injections: Sequence[m.Injection], *, live: bool = True
) -> dict[int, list[Any]]:
    """Injection id -> its reactions (``live``: those not voided), oldest first."""
    ids = [i.id for i in injections] or [-1]
    q = select(m.Reaction).where(m.Reaction.injection_id.in_(ids))
    if live:
        q = q.where(m.Reaction.voided_at.is_(None))
    out: dict[int, list[m.Reaction]] = {}
    for r in s.scalars(q.order_by(m.Reaction.id)):
        out.setdefault(r.injection_id or -1, []).append(r)
    return out


def injection_row(inj: m.Injection) -> dict[str, Any]:
    """The stored injection with its instants in clinic time (JSON: clinic-local ISO with offset)."""
    row = as_row(inj)
    for key in ("given_at", "voided_at", "amended_at"):
        value = getattr(inj, key)
        row[key] = None if value is None else clock.local(value)
    return row


def catalogue_ids(c: m.Course) -> tuple[str, str] | None:
    """(product id, regimen id) of a course planned from the ``scit_products`` catalogue, else None."""
    if c.product_id and c.regimen_id:
        return c.product_id, c.regimen_id
    return None


def _given(i: m.Injection, reactions: list[m.Reaction]) -> GivenInjection:
    """One live injection as the engine sees it: clinic-local date and time, and the reactions it caused."""
    local, scale, grade = "none", None, None
    for r in reactions:
        if r.kind == "systemic" and r.scale in ENGINE_SCALES and r.grade:
            scale, grade = r.scale, r.grade
        elif r.kind == "local" and r.scale == LOCAL_SCALE and r.grade in vocabularies.LOCAL_REACTION_SIZES:
            local = max(local, r.grade, key=vocabularies.LOCAL_REACTIONS.index)
    at = clock.local(i.given_at)
    return GivenInjection(at.date(), Decimal(i.dose), local, scale, grade, at)


def _history_entry(i: m.Injection, g: GivenInjection) -> dict[str, Any]:
    return {
        "injection_id": i.id,
        "sequence": i.sequence,
        "given_at": clock.local(i.given_at),
        "date": g.date,
        "dose": to_jsonable(i.dose),
        "unit": i.dose_unit,
        "vial": i.vial,
        "vial_id": i.vial_id,
        "volume_ml": to_jsonable(i.volume_ml),
        "lot": i.lot,
        "new_vial": bool(i.new_vial),
        "local_reaction": g.local_reaction,
        "systemic_reaction": {"scale": g.systemic_scale, "grade": g.systemic_grade}
        if g.systemic_grade
        else None,
    }


def _start_of(day: date) -> datetime:
    """Clinic-local midnight of ``day``, aware."""
    return clock.local(clock.to_utc(datetime.combine(day, time.min)))


def _rule(r: Any) -> dict[str, Any] | None:
    if r is None:
        return None
    b = r.basis
    return {"id": r.id, "text": r.text, "source": b.source, "status": b.status, "basis": b.to_dict()}


def next_injection_view(
    c: m.Course,
    live: list[m.Injection],
    reactions: dict[int, list[Any]],
    at: datetime,
    *,
    new_vial: bool = False,
) -> tuple[dict[str, Any], NextInjection | None]:
    """The next injection of course ``c`` at aware instant ``at`` from its live injections: the view
    (JSON-able values, clinic-local times) and the engine's answer (None when it cannot answer).
    ``new_vial``: the dose will be drawn from a new vial or lot (the new-vial rule applies)."""
    at_local = clock.local(at)
    given = [_given(i, reactions.get(i.id, [])) for i in live]
    history = [_history_entry(i, g) for i, g in zip(live, given, strict=True)]
    base: dict[str, Any] = {
        "course_id": c.id,
        "product_id": c.product_id,
        "regimen_id": c.regimen_id,
        "at": at_local,
        "history": history,
    }
    ids = catalogue_ids(c)
    reason = None
    nx = None
    if ids is None:
        reason = (
            f"course {c.id} has no catalogue product and regimen (product_id/regimen_id): the next dose "
            "cannot be computed; the planned next due date is shown"
        )
    else:
        try:
            nx = next_injection(
                ids[0],
                ids[1],
                given,
                at_local,
                maintenance_interval_weeks=c.maintenance_interval_weeks,
                new_vial=new_vial and bool(live),
            )
        except InvalidInput as exc:
            if exc.field == "at":
                raise
            reason = str(exc)
    if nx is None:
        view = {
            **base,
            "kind": "cannot-answer",
            "phase": None,
            "dose": None,
            "dose_ml": None,
            "due_date": c.next_due_on,
            "earliest_at": None,
            "earliest": None,
            "rule": None,
            "rules": [],
            "warnings": [reason],
            "visit_injections": [],
            "same_visit": False,
            "visit_complete": False,
            "visit": None,
            "observation_minutes": None,
            "next_visit_after": None,
        }
        return view, None
    d = nx.decision
    earliest = nx.earliest_at or (_start_of(nx.earliest_on) if nx.earliest_on else None)
    due = nx.due_date if live else (c.next_due_on or c.started_on)
    view = {
        **base,
        "kind": d.kind,
        "phase": d.phase,
        "dose": to_jsonable(d.dose) if d.dose else None,
        "dose_ml": to_jsonable(d.dose.volume_ml) if d.dose else None,
        "due_date": due,
        "earliest_at": earliest,
        "earliest": {"at": earliest, "same_visit": nx.same_visit, "rule": _rule(nx.interval)},
        "rule": _rule(d.rule),
        "rules": to_jsonable(d.rules),
        "warnings": list(d.warnings),
        "visit_injections": to_jsonable(d.visit_injections),
        "same_visit": nx.same_visit,
        "visit_complete": nx.visit_complete,
        "visit": _rule(nx.visit),
        "observation_minutes": d.observation_minutes,
        "next_visit_after": d.next_due,
    }
    return view, nx


def recompute_next_due(s: Session, c: m.Course, *, fallback_due: date | None = None) -> dict[str, Any]:
    """After a write that changes the course's injections or their reactions (in the caller's transaction):
    the next injection now (or after the latest live injection, if later) as `next_injection_view`, and the
    due date stored on the course: the engine's; when the engine cannot answer, ``fallback_due`` when given,
    else the date already stored. Returns the view, its ``due_date`` the course's."""
    live = live_injections(s, c.id)
    latest = max([clock.now(), *(clock.to_utc_stored(i.given_at) for i in live)])
    view, engine = next_injection_view(c, live, reactions_by_injection(s, live), latest)
    if engine is not None:  # the engine's due date (None: the reference data has no interval)
        c.next_due_on = view["due_date"]
    else:
        if fallback_due is not None:
            c.next_due_on = fallback_due
        view["due_date"] = c.next_due_on
    return view


def next_dose(
    reg: Registry, course_id: Any, at: Any = None, *, patient_id: int | None = None, vial_id: Any = None
) -> dict[str, Any]:
    """What the next injection of a course is at clinic time ``at`` (default now): ``dose``/``dose_ml``,
    ``due_date``, ``earliest_at`` (clinic time) with its rule, the ``rule`` that fired (id, source, status,
    basis) and the ``history`` the engine saw (live injections with their clinic-local ``date``).

    ``vial_id``: the dose is for that registered vial (checked as at an injection; a change of vial or lot
    applies the new-vial rule, ``vial`` in the answer says so).

    Raises `LookupError` for an unknown course (or one of another patient when ``patient_id`` is given)."""
    from immunoplan.services.records import vials

    when = clock.now() if at in (None, "") else clock.parse_local("at", at)
    with reg.session() as s:
        c = course_by_id(s, course_id, patient_id=patient_id)
        live = live_injections(s, c.id)
        chosen, new = None, False
        if vial_id not in (None, ""):
            chosen = vials.vial_for_injection(s, vials.vial_id_of(vial_id), c, clock.local_date(when))
            new = vials.is_new_vial(chosen, live)
        view, _ = next_injection_view(c, live, reactions_by_injection(s, live), when, new_vial=new)
        view["vial"] = None if chosen is None else {**vials.vial_row(chosen), "new_vial": new}
    return view
