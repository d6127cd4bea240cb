"""Allergen immunotherapy (SCIT): product catalogue, dated schedules, next-dose rules engine, the next
injection (dose, due date, earliest time) and the one due/late definition."""

from .adjustment import LOCAL, RULESETS, GivenInjection, Interval, NextDose, next_dose
from .catalogue import (
    Dose,
    dose_for_units,
    dose_of,
    dose_steps,
    ladder,
    maintenance_dose,
    product,
    product_ids,
)
from .due import DUE_STATUSES, due_status
from .next_injection import NextInjection, first_dose, next_injection
from .schedule import Injection, Schedule, Visit, build_schedule

__all__ = [
    "DUE_STATUSES",
    "LOCAL",
    "RULESETS",
    "Dose",
    "GivenInjection",
    "Injection",
    "Interval",
    "NextDose",
    "NextInjection",
    "Schedule",
    "Visit",
    "build_schedule",
    "dose_for_units",
    "dose_of",
    "dose_steps",
    "due_status",
    "first_dose",
    "ladder",
    "maintenance_dose",
    "next_dose",
    "next_injection",
    "product",
    "product_ids",
]
