"""Omalizumab use cases shared by the CLI, the web app and other services.

Public functions (keyword arguments, plain types in, result objects with ``to_dict()`` out):

- ``label_dose(indication, region, age_years, weight_kg, total_ige_iu_ml, override_reason=None)``
  -> DoseResult
- ``ige_for_dosing(...)`` / ``redose_for_weight_change(...)``: label re-dosing rules
- ``build_schedule(kind, start, ...)`` -> Schedule (dated administrations; ``schedule_to_ics`` for iCalendar)
- ``simulate(...)`` -> SimulationResult (one patient or a population, Lowe 2009 or Hayashi 2007)
- ``build_nomogram(...)`` -> Nomogram (model-based doses compared with the US label table cell by cell)

Invalid input raises ``immunoplan.errors.InvalidInput``; clinical answers are values.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from icalendar import Calendar, Event

from immunoplan import clock
from immunoplan.clinical.omalizumab import nomogram, schedules, simulation
from immunoplan.clinical.omalizumab.nomogram import Nomogram
from immunoplan.clinical.omalizumab.redosing import ige_for_dosing, redose_for_weight_change
from immunoplan.clinical.omalizumab.schedules import KINDS, Schedule
from immunoplan.clinical.omalizumab.simulation import SimulationResult
from immunoplan.clinical.omalizumab.tables import lookup_dose
from immunoplan.errors import InvalidInput
from immunoplan.reference import limits
from immunoplan.validation import check_choice

__all__ = [
    "KINDS",
    "build_nomogram",
    "build_schedule",
    "ige_for_dosing",
    "label_dose",
    "redose_for_weight_change",
    "schedule_to_ics",
    "simulate",
]


# The label-table dose (status dose / do-not-dose / outside-table / unverified-table) is the clinical core's
# `lookup_dose` itself: same arguments, same result.
label_dose = lookup_dose


def simulate(
    *,
    weight_kg: Any,
    total_ige_iu_ml: Any,
    dose_mg: Any,
    interval_weeks: Any,
    weeks: Any,
    model: str = "lowe2009",
    population: int | None = None,
    seed: int | None = None,
    weight_range_kg: tuple[Any, Any] | None = None,
    ige_range_iu_ml: tuple[Any, Any] | None = None,
    progress: Callable[[float], None] | None = None,
) -> SimulationResult:
    """Simulate ``dose_mg`` every ``interval_weeks`` for ``weeks`` (Lowe 2009 by default).

    ``population`` None: one typical patient (series are lists); otherwise N virtual patients with
    inter-individual variability and, optionally, covariates sampled in the given ranges (series are
    5th/50th/95th percentiles). ``progress(fraction)`` is called as the simulation advances.
    """
    events = simulation.regular_events(dose_mg, interval_weeks, weeks)
    inputs = {
        "weight_kg": weight_kg,
        "total_ige_iu_ml": total_ige_iu_ml,
        "dose_mg": dose_mg,
        "interval_weeks": interval_weeks,
        "weeks": weeks,
        "population": population,
        "weight_range_kg": weight_range_kg,
        "ige_range_iu_ml": ige_range_iu_ml,
    }
    return simulation.simulate(
        weight_kg=weight_kg,
        total_ige_iu_ml=total_ige_iu_ml,
        events=events,
        weeks=weeks,
        model=model,
        interval_weeks=interval_weeks,
        population=population,
        seed=seed,
        weight_range_kg=weight_range_kg,
        ige_range_iu_ml=ige_range_iu_ml,
        progress=progress,
        inputs=inputs,
    )


def _need(field: str, value: Any) -> Any:
    if value is None:
        known = limits.catalogue().get(field)
        raise InvalidInput(field, "required for this schedule kind", known.accepted if known else None)
    return value


def build_schedule(
    kind: str,
    start: date,
    *,
    indication: str = "asthma",
    region: str = "us",
    age_years: Any = None,
    weight_kg: Any = None,
    total_ige_iu_ml: Any = None,
    override_reason: str | None = None,
    protocol: str = "rush",
    weeks: Any = None,
    weeks_before: Any = None,
    continue_weeks: Any = None,
    cycles: Any = 6,
    cycle_weeks: Any = 3,
    tolerated_from_cycle: Any = None,
    days_before: list[int] | None = None,
    mg_per_kg: Any = None,
) -> Schedule:
    """Dated omalizumab plan. ``start`` means, by ``kind``:

    - ``maintenance``: first omalizumab dose (label dose every label interval, ``weeks`` default 48);
    - ``pretreatment``: first allergen dose of the ``protocol`` (rush | cluster) build-up;
    - ``concurrent-scit``: first SCIT injection (seed 001; omalizumab the same day);
    - ``desensitization``: first drug desensitization (seed 004; off-label, 300 mg fixed);
    - ``oit``: first omalizumab dose of the weight-based regimen (``mg_per_kg`` 8 or 16; off-label).

    Label kinds need age_years, weight_kg and total_ige_iu_ml (pre-treatment); if the table gives no dose the
    schedule's ``status`` is that result kind and it has no administrations.
    """
    kind = check_choice("kind", kind, KINDS)
    if not isinstance(start, date):
        raise InvalidInput("start", "must be a date (YYYY-MM-DD)")
    if kind == "desensitization":
        return schedules.desensitization(start, cycles, cycle_weeks, tolerated_from_cycle, days_before)
    if kind == "oit":
        return schedules.oit(start, _need("weight_kg", weight_kg), _need("mg_per_kg", mg_per_kg))
    dose = label_dose(
        indication,
        region,
        _need("age_years", age_years),
        _need("weight_kg", weight_kg),
        _need("total_ige_iu_ml", total_ige_iu_ml),
        override_reason=override_reason,
    )
    if kind == "maintenance":
        return schedules.maintenance(start, dose, 48 if weeks is None else weeks)
    if kind == "pretreatment":
        return schedules.pretreatment(start, protocol, dose, weeks_before, continue_weeks)
    return schedules.concurrent_scit(start, dose, weeks)


def schedule_to_ics(schedule: Schedule, *, now: datetime | None = None) -> bytes:
    """iCalendar export: one all-day event per administration and per milestone (stable UIDs)."""
    stamp = now or clock.now()
    cal = Calendar()
    cal.add("prodid", "-//immunoplan//omalizumab schedule//EN")
    cal.add("version", "2.0")
    for i, a in enumerate(schedule.administrations):
        ev = Event()
        label = "OFF-LABEL " if a.off_label else ""
        ev.add("uid", f"omalizumab-{schedule.kind}-{a.date.isoformat()}-{i}@immunoplan")
        ev.add("dtstamp", stamp)
        ev.add("dtstart", a.date)
        ev.add("summary", f"{label}omalizumab {a.dose_mg} mg ({' + '.join(str(x) for x in a.injections)} mg)")
        ev.add("description", f"{a.phase}: {a.rationale}")
        cal.add_component(ev)
    for i, m in enumerate(schedule.milestones):
        ev = Event()
        ev.add("uid", f"milestone-{schedule.kind}-{m.date.isoformat()}-{i}@immunoplan")
        ev.add("dtstamp", stamp)
        ev.add("dtstart", m.date)
        ev.add("summary", m.label)
        cal.add_component(ev)
    return cal.to_ical()


def build_nomogram(
    *,
    model: str = "lowe2009",
    target_ng_ml: float = 14.0,
    fraction: float = 0.5,
    patients_per_cell: int = 200,
    weeks: int = 16,
    seed: int = 0,
    extra_ige_iu_ml: tuple[float, ...] = (),
    intervals_weeks: tuple[int, ...] = (4, 2),
    progress: Callable[[float], None] | None = None,
) -> Nomogram:
    """Model-based nomogram over the US asthma >=12 bands (plus optional hyper-IgE rows) and its agreement
    table with the label, cell by cell (see `immunoplan.clinical.omalizumab.nomogram`)."""
    return nomogram.build_nomogram(
        model=model,
        target_ng_ml=target_ng_ml,
        fraction=fraction,
        patients_per_cell=patients_per_cell,
        weeks=weeks,
        seed=seed,
        extra_ige_iu_ml=extra_ige_iu_ml,
        intervals_weeks=intervals_weeks,
        progress=progress,
    )
