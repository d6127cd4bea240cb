"""The late-shot list: who is due or late on a clinic date, how late, and what the missed-dose rule will do
to their next dose if they come that day (the engine's answer, with the rule's id, text, source, status).

Due/late comes from `immunoplan.clinical.immunotherapy.due_status` (the one definition); the next dose from
the injection engine through `immunoplan.services.records.injections.next_injection_view` (the same call the
injection-day page makes), so the list and the injection-day page cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from immunoplan import clock, reference
from immunoplan.clinical.immunotherapy import DUE_STATUSES, due_status
from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.reference.limits import limit
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.inputs import InputModel, validate
from immunoplan.services.records import injections
from immunoplan.services.records.fields import OptionalClinicDate, choice_field, one_of
from immunoplan.services.records.front_desk.csv_cells import csv_text

#: at most this many courses are listed (and engine-computed) per call; ``truncated`` and ``total`` say
#: when more are due, so a cap never hides a patient silently (bounded work per request)
MAX_ROWS = 2000
#: the clinic time at which the next dose is computed for a date other than today (today: now). The
#: missed-dose bands are counted in days, so the hour only matters inside a multi-injection visit.
ENGINE_HOUR = time(12, 0)
#: the late-shot CSV, one line per course (docs/injection-day.md "Front desk")
CSV_COLUMNS = (
    "pseudo_id",
    "mrn",
    "display_name",
    "course_id",
    "kind",
    "product",
    "product_id",
    "regimen_id",
    "last_injection_at",
    "next_due_on",
    "days_overdue",
    "status",
    "next_kind",
    "next_dose",
    "next_dose_unit",
    "next_dose_ml",
    "rule_id",
    "rule_text",
    "rule_status",
    "rule_source",
    "on_time_dose",
    "no_show_recorded_at",
    "warnings",
)


def product_ids() -> tuple[str, ...]:
    """The catalogue's product ids (``scit_products``): what the product filter accepts."""
    return tuple(sorted(reference.load("scit_products")["products"]))


def product_choices() -> list[tuple[str, str]]:
    """(product id, name) of every catalogue product, for a filter form."""
    products = reference.load("scit_products")["products"]
    return [(pid, str(products[pid].get("name") or pid)) for pid in product_ids()]


class LateListQuery(InputModel):
    """The filters of the late-shot list (page query, CLI options). ``on``: the clinic date (empty: today);
    ``product_id``: a catalogue product; ``status``: due or late; ``grace_days``/``window_days``: the clinic's
    own due/late policy (`due_status`)."""

    on: OptionalClinicDate = Field(None, json_schema_extra={"accepted": "YYYY-MM-DD (clinic date)"})
    product_id: Annotated[str | None, one_of(product_ids())] = choice_field(product_ids(), None)
    status: Annotated[str | None, one_of(DUE_STATUSES)] = choice_field(DUE_STATUSES, None)
    grace_days: int = limit("due_grace_days").pydantic(0)
    window_days: int = limit("due_window_days").pydantic(0)


def _engine_at(day: date) -> datetime:
    """When the next dose is computed for clinic date ``day``: now for today, else `ENGINE_HOUR` that day."""
    if day == clock.today():
        return clock.now()
    return clock.to_utc(datetime.combine(day, ENGINE_HOUR))


def _rule(r: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not r:
        return None
    return {k: r.get(k) for k in ("id", "text", "source", "status")}


def _next(view: Mapping[str, Any]) -> dict[str, Any]:
    """What the engine answers for the visit (dose, the rule that fired, warnings), JSON-able."""
    return to_jsonable(
        {
            "kind": view.get("kind"),
            "at": view.get("at"),
            "phase": view.get("phase"),
            "dose": view.get("dose"),
            "dose_ml": view.get("dose_ml"),
            "rule": _rule(view.get("rule")),
            "warnings": list(view.get("warnings") or []),
        }
    )


def _engine(
    c: m.Course, live: Sequence[m.Injection], reactions: dict[int, list[Any]], at: datetime
) -> dict[str, Any]:
    """The engine's next injection of ``c`` at ``at`` from the injections given by then; an answer the engine
    refuses (a time before the course's own history) is a ``cannot-answer`` with the reason."""
    prior = [i for i in live if clock.to_utc_stored(i.given_at) <= at]
    try:
        view, _ = injections.next_injection_view(c, prior, reactions, at)
    except InvalidInput as exc:
        view = {"kind": "cannot-answer", "at": clock.local(at), "warnings": [str(exc)]}
    return _next(view)


def _live_by_course(s: Session, course_ids: Sequence[int]) -> dict[int, list[m.Injection]]:
    """The live injections of each course, in the order given (one query)."""
    out: dict[int, list[m.Injection]] = {cid: [] for cid in course_ids}
    if not course_ids:
        return out
    q = (
        select(m.Injection)
        .where(m.Injection.course_id.in_(course_ids), m.Injection.voided_at.is_(None))
        .order_by(m.Injection.course_id, m.Injection.given_at, m.Injection.id)
    )
    for i in s.scalars(q):
        out[i.course_id].append(i)
    return out


def no_show_row(n: m.NoShow) -> dict[str, Any]:
    """A no-show as the list, the CLI and the API show it (instants in clinic time)."""
    return {
        "id": n.id,
        "patient_id": n.patient_id,
        "course_id": n.course_id,
        "due_on": n.due_on.isoformat(),
        "recorded_at": clock.iso_local(n.recorded_at),
        "recorded_by": n.recorded_by,
        "note": n.note,
    }


def _no_shows(s: Session, due: Mapping[int, date]) -> dict[int, list[dict[str, Any]]]:
    """Live no-shows recorded for each course's current due date (one query)."""
    out: dict[int, list[dict[str, Any]]] = {}
    if not due:
        return out
    q = (
        select(m.NoShow)
        .where(m.NoShow.course_id.in_(list(due)), m.NoShow.voided_at.is_(None))
        .order_by(m.NoShow.id)
    )
    for n in s.scalars(q):
        if n.due_on == due.get(n.course_id):
            out.setdefault(n.course_id, []).append(no_show_row(n))
    return out


def late_shot_list(
    reg: Registry,
    *,
    on: Any = None,
    product_id: Any = None,
    status: Any = None,
    grace_days: Any = 0,
    window_days: Any = 0,
) -> dict[str, Any]:
    """Every active immunotherapy course due by clinic date ``on`` (default today) + ``window_days``, most
    overdue first: the patient (registry id, pseudo id, MRN, name: this list is for the front desk), course
    and product, the last live injection (clinic time), ``next_due_on``, ``days_overdue`` and ``status``
    (`due_status`); ``next``: what the engine answers if the patient comes on ``on`` (its dose, the rule
    that fired with id, text, source and status: the missed-dose band, e.g. repeat, back 2 steps, restart);
    ``on_time``: the dose the schedule gave on the due date (late courses only); ``no_shows``: live no-shows
    recorded for that due date. Filters: ``product_id`` (catalogue), ``status`` (due/late). At most
    `MAX_ROWS` courses (``total`` and ``truncated`` say how many matched)."""
    q = validate(
        LateListQuery,
        {
            "on": on,
            "product_id": product_id,
            "status": status,
            "grace_days": grace_days,
            "window_days": window_days,
        },
    )
    day = q.on or clock.today()
    horizon = day + timedelta(days=q.window_days)
    at = _engine_at(day)
    where = [
        m.Course.status == "active",
        m.Course.kind.in_(injections.IMMUNOTHERAPY_KINDS),
        m.Course.next_due_on.is_not(None),
        m.Course.next_due_on <= horizon,
    ]
    if q.product_id is not None:
        where.append(m.Course.product_id == q.product_id)
    if q.status == "late":  # late: more than grace_days past the due date (due_status)
        where.append(m.Course.next_due_on < day - timedelta(days=q.grace_days))
    elif q.status == "due":
        where.append(m.Course.next_due_on >= day - timedelta(days=q.grace_days))
    with reg.session() as s:
        total = int(s.scalar(select(func.count()).select_from(m.Course).where(*where)) or 0)
        found = s.execute(
            select(m.Course, m.Patient)
            .join(m.Patient, m.Patient.id == m.Course.patient_id)
            .where(*where)
            .order_by(m.Course.next_due_on, m.Course.id)
            .limit(MAX_ROWS)
        ).all()
        ids = [c.id for c, _ in found]
        live = _live_by_course(s, ids)
        reactions = injections.reactions_by_injection(s, [i for rows in live.values() for i in rows])
        no_shows = _no_shows(s, {c.id: c.next_due_on for c, _ in found if c.next_due_on})
        rows = []
        for c, p in found:
            due_on = c.next_due_on
            st = due_status(due_on, day, q.grace_days, q.window_days)
            if st is None or due_on is None:  # pragma: no cover - the SQL filter is due_status's
                continue
            given = live[c.id]
            late = (day - due_on).days > 0
            on_time = _engine(c, given, reactions, _engine_at(due_on)) if late else None
            rows.append(
                {
                    "course_id": c.id,
                    "patient_id": p.id,
                    "pseudo_id": p.pseudo_id,
                    "mrn": p.mrn,
                    "display_name": p.display_name,
                    "kind": c.kind,
                    "product": c.product,
                    "product_id": c.product_id,
                    "regimen_id": c.regimen_id,
                    "last_injection_at": clock.iso_local(given[-1].given_at) if given else None,
                    "next_due_on": due_on.isoformat(),
                    "days_overdue": max((day - due_on).days, 0),
                    "status": st,
                    "next": _engine(c, given, reactions, at),
                    "on_time": None
                    if on_time is None
                    else {"dose": on_time["dose"], "rule": on_time["rule"]},
                    "no_shows": no_shows.get(c.id, []),
                }
            )
    return {
        "on": day.isoformat(),
        "as_of": day.isoformat(),
        "engine_at": clock.iso_local(at),
        "clinic_zone": clock.zone_name(),
        "product_id": q.product_id,
        "status": q.status,
        "grace_days": q.grace_days,
        "window_days": q.window_days,
        "total": total,
        "truncated": total > len(rows),
        "injections": rows,
    }


def _dose_text(dose: Mapping[str, Any] | None) -> str | None:
    if not dose:
        return None
    return f"{dose.get('dose')} {dose.get('unit')}"


def csv_row(r: Mapping[str, Any]) -> dict[str, Any]:
    """One late-shot row as the `CSV_COLUMNS` cells."""
    nxt = r.get("next") or {}
    rule = nxt.get("rule") or {}
    dose = nxt.get("dose") or {}
    shows = r.get("no_shows") or []
    return {
        **{k: r.get(k) for k in CSV_COLUMNS if k in r},
        "next_kind": nxt.get("kind"),
        "next_dose": dose.get("dose"),
        "next_dose_unit": dose.get("unit"),
        "next_dose_ml": nxt.get("dose_ml"),
        "rule_id": rule.get("id"),
        "rule_text": rule.get("text"),
        "rule_status": rule.get("status"),
        "rule_source": rule.get("source"),
        "on_time_dose": _dose_text((r.get("on_time") or {}).get("dose")),
        "no_show_recorded_at": shows[-1]["recorded_at"] if shows else None,
        "warnings": "; ".join(str(w) for w in nxt.get("warnings") or []),
    }


def late_shot_csv(listing: Mapping[str, Any]) -> str:
    """The late-shot list (`late_shot_list`'s answer) as CSV text, `CSV_COLUMNS`, every cell neutralised
    against spreadsheet formulas."""
    return csv_text(CSV_COLUMNS, (csv_row(r) for r in listing["injections"]))
