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
from typing import Any

from immunoplan.clinical.omalizumab import simulation
from immunoplan.clinical.omalizumab.redosing import ige_for_dosing, redose_for_weight_change
from immunoplan.clinical.omalizumab.simulation import SimulationResult
from immunoplan.clinical.omalizumab.tables import DoseResult, lookup_dose

__all__ = ["label_dose", "ige_for_dosing", "redose_for_weight_change", "simulate"]


def label_dose(
    indication: str,
    region: str,
    age_years: Any,
    weight_kg: Any,
    total_ige_iu_ml: Any,
    *,
    override_reason: str | None = None,
    csu_dose_mg: int | None = None,
) -> DoseResult:
    """Label-table dose (status dose / do-not-dose / outside-table / unverified-table)."""
    return lookup_dose(
        indication,
        region,
        age_years,
        weight_kg,
        total_ige_iu_ml,
        override_reason=override_reason,
        csu_dose_mg=csu_dose_mg,
    )


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
