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

from typing import Any

from immunoplan.clinical.omalizumab.redosing import ige_for_dosing, redose_for_weight_change
from immunoplan.clinical.omalizumab.tables import DoseResult, lookup_dose

__all__ = ["label_dose", "ige_for_dosing", "redose_for_weight_change"]


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
