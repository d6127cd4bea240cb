"""Allergen immunotherapy (SCIT): product catalogue, dated schedules, next-dose rules engine."""

from .adjustment import LOCAL, RULESETS, GivenInjection, NextDose, next_dose
from .catalogue import Dose, dose_for_units, dose_of, dose_steps, ladder, maintenance_dose, product_ids
from .schedule import Injection, Schedule, Visit, build_schedule

__all__ = [
    "LOCAL",
    "RULESETS",
    "Dose",
    "GivenInjection",
    "Injection",
    "NextDose",
    "Schedule",
    "Visit",
    "build_schedule",
    "dose_for_units",
    "dose_of",
    "dose_steps",
    "ladder",
    "maintenance_dose",
    "next_dose",
    "product_ids",
]
