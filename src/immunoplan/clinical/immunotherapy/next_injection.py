"""The next injection of a SCIT course: its dose (the rules engine, `adjustment.next_dose`), the date it is
due and the earliest clinic time it may be given, each with the rule and reference data behind it.

- **No injection yet**: the first visit of the regimen's schedule (rule ``schedule-first-injection`` of
  ``scit_adjustment``; basis: the regimen's schedule in ``scit_products`` with its own source and status).
- **A multi-injection visit under way** (cluster day, rush, ultra-rush: today's injections are the visit's
  first ones and caused no reaction): the visit's next injection, due the same day, at the earliest the
  previous injection + the same-day interval (the regimen's ``interval_minutes``, else the product's
  ``same_day_min_interval_minutes``).
- **Otherwise** the next visit: due on the last visit's date + the visit interval (`interval_days_after`:
  build-up interval, maintenance interval or the Norwegian return intervals); the earliest time is that date.
  When the injection is computed on or after the due date, the missed-dose rules apply to the day it is given.
- Where the reference data has no interval (e.g. maintenance after the Lee 2019 ultra-rush), ``due_date`` and
  the earliest time are None and the rule says so: no interval is invented.
- When the last injection was given on the day asked about and the visit is not continuing, the visit is
  complete (``visit_complete``; ``visit`` says why: ``visit-complete``, or ``visit-stops-after-reaction``
  when a reaction ended a multi-injection visit before its last planned injection).

Pure: the caller passes the history with clinic-local dates (and clinic-local times for the same-day
interval).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from immunoplan import reference
from immunoplan.errors import InvalidInput

from .adjustment import (
    DATA,
    FiredRule,
    GivenInjection,
    Interval,
    NextDose,
    _merge_days,
    _same_day_continuation,
    interval_days_after,
    next_dose,
)
from .catalogue import dose_of, maintenance_dose, product, regimen


@dataclass
class NextInjection:
    """The engine's answer for the next injection: ``decision`` (dose, rule, basis, warnings) for the day it
    is computed on, ``due_date``, ``earliest_on``/``earliest_at`` (``earliest_at`` only for a same-visit
    interval, in the history's clinic time) and ``interval`` (where the due date and earliest time come
    from)."""

    decision: NextDose
    due_date: date | None
    earliest_on: date | None
    earliest_at: datetime | None
    interval: Interval
    same_visit: bool = False
    #: the visit of ``at``'s date has had its injections: nothing more today (``visit``: why, with the rule)
    visit_complete: bool = False
    visit: Interval | None = None

    def to_dict(self) -> dict[str, Any]:
        d = self.decision.to_dict()
        d.update(
            due_date=self.due_date,
            earliest_on=self.earliest_on,
            earliest_at=self.earliest_at,
            interval=self.interval.to_dict(),
            same_visit=self.same_visit,
            visit_complete=self.visit_complete,
            visit=self.visit.to_dict() if self.visit else None,
        )
        return d


def _checked_regimen(product_id: str, regimen_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    p = product(product_id)
    reg = regimen(product_id, regimen_id)
    if reg["status"] == "UNVERIFIED" or not reg["rows"]:
        raise InvalidInput(
            "regimen",
            f"{regimen_id!r} has no verified step table for {product_id}",
            ", ".join(k for k, v in p["regimens"].items() if v["rows"]),
        )
    return p, reg


def first_dose(product_id: str, regimen_id: str, on: date) -> NextDose:
    """The first dose of a course with no injection yet: the first visit of the regimen's schedule (rule
    ``schedule-first-injection``; basis = that schedule, with its source and status)."""
    p, reg = _checked_regimen(product_id, regimen_id)
    rows = reg["rows"]
    week = min(int(r["week"]) for r in rows)
    visit = [dose_of(product_id, int(r["vial"]), Decimal(r["ml"])) for r in rows if int(r["week"]) == week]
    r0 = reference.load(DATA)["first_dose"]
    basis = reference.basis(
        "scit_products", f"{regimen_id} schedule, visit {week}", status=reg["status"], source=reg["source"]
    )
    rule = FiredRule(r0["id"], f"{r0['text']} ({reg['name']})", True, visit[0].units, basis)
    warnings = []
    if reg["status"] != "VERIFIED":
        warnings.append(
            f"Schedule status {reg['status']}: {reg['source']}. Check against the SmPC before use."
        )
    if len(visit) > 1:
        minutes = int(reg.get("interval_minutes", p["same_day_min_interval_minutes"]))
        warnings.append(f"{len(visit)} injections at the first visit, at least {minutes} min apart.")
    nxt = [int(r["week"]) for r in rows if int(r["week"]) > week]
    next_due = on + timedelta(days=7 * (min(nxt) - week)) if nxt else None
    return NextDose(
        "dose",
        on,
        "build-up",
        visit[0],
        rule,
        [rule],
        None,
        next_due,
        int(p["observation_minutes"]),
        warnings,
        visit,
    )


def _same_visit_interval(p: dict[str, Any], reg: dict[str, Any], product_id: str) -> tuple[int, Interval]:
    iv = reference.load(DATA)["intervals"]["same_visit"]
    if "interval_minutes" in reg:
        minutes = int(reg["interval_minutes"])
        b = reference.basis(
            "scit_products", "same-visit interval", status=reg["status"], source=reg["source"]
        )
    else:
        minutes = int(p["same_day_min_interval_minutes"])
        b = reference.basis("scit_products", f"{product_id} same-day interval", source=p["same_day_source"])
    return minutes, Interval(iv["id"], iv["text"].format(minutes=minutes), b)


def _no_history_interval() -> Interval:
    r0 = reference.load(DATA)["first_dose"]
    return Interval(
        r0["id"],
        "first injection of the course: no earlier injection, so no interval applies",
        reference.basis(DATA, r0["id"], source=r0["source"]),
    )


def _visit_outcome(
    product_id: str, regimen_id: str, reg: dict[str, Any], hist: list[GivenInjection], day: date
) -> Interval:
    """Why the visit of ``day`` (which had injections and is not continuing) is over: complete, or stopped by
    a reaction before the schedule visit's last injection (``scit_adjustment`` ``intervals``)."""
    iv = reference.load(DATA)["intervals"]
    today = [h for h in hist if h.date == day]
    given = [h.dose for h in today]
    reacted = [i for i, h in enumerate(today, 1) if h.systemic or h.local_reaction != "none"]
    if reacted:
        rows = reg["rows"]
        doses = [dose_of(product_id, int(r["vial"]), Decimal(r["ml"])).units for r in rows]
        for week in sorted({int(r["week"]) for r in rows}):
            visit = [d for r, d in zip(rows, doses, strict=True) if int(r["week"]) == week]
            if len(visit) > len(given) and visit[: len(given)] == given:
                r = iv["visit_stopped"]
                text = r["text"].format(
                    given=reacted[0], planned=len(visit), remaining=len(visit) - len(given)
                )
                return Interval(
                    r["id"], text, reference.basis(DATA, r["id"], status=r["status"], source=r["source"])
                )
    r = iv["visit_complete"]
    basis = reference.basis(
        "scit_products", f"{regimen_id} schedule", status=reg["status"], source=reg["source"]
    )
    return Interval(r["id"], r["text"].format(given=len(today)), basis)


def next_injection(
    product_id: str,
    regimen_id: str,
    history: list[GivenInjection],
    at: datetime,
    *,
    ruleset: str | None = None,
    new_vial: bool = False,
    maintenance_interval_weeks: int | None = None,
) -> NextInjection:
    """The next injection after ``history`` as seen at clinic time ``at`` (see module docstring).

    Before the due date the dose is the one due on that date; on or after it, the dose for ``at``'s date (the
    missed-dose rules apply)."""
    p, reg = _checked_regimen(product_id, regimen_id)
    today = at.date()
    if not history:
        decision = first_dose(product_id, regimen_id, today)
        return NextInjection(decision, None, None, None, _no_history_interval())
    hist = sorted(history, key=lambda h: h.date)  # stable: same-day injections keep the caller's order
    last = hist[-1]
    if today < last.date:
        raise InvalidInput("at", f"{today} is before the last injection ({last.date})", f">= {last.date}")
    kw: dict[str, Any] = {
        "ruleset": ruleset,
        "new_vial": new_vial,
        "maintenance_interval_weeks": maintenance_interval_weeks,
    }
    visit = None if new_vial else _same_day_continuation(p, product_id, regimen_id, reg, hist, last.date)
    if visit is not None:
        minutes, interval = _same_visit_interval(p, reg, product_id)
        earliest = None if last.given_at is None else last.given_at + timedelta(minutes=minutes)
        decision = visit if today == last.date else next_dose(product_id, regimen_id, hist, today, **kw)
        return NextInjection(decision, last.date, last.date, earliest, interval, same_visit=True)
    merged = _merge_days(hist) if reg.get("day_total_is_maintenance_dose") else hist
    top = maintenance_dose(product_id)
    phase = "maintenance" if any(h.dose >= top for h in merged) else "build-up"
    days, interval = interval_days_after(
        p, merged[:-1], phase, merged[-1].dose, top, reference.load(DATA), maintenance_interval_weeks
    )
    due = None if days is None else merged[-1].date + timedelta(days=days)
    on = max(today, due) if due is not None else today
    decision = next_dose(product_id, regimen_id, hist, on, **kw)
    if last.date == today:
        visit_done = _visit_outcome(product_id, regimen_id, reg, hist, today)
        return NextInjection(decision, due, due, None, interval, visit_complete=True, visit=visit_done)
    return NextInjection(decision, due, due, None, interval)
