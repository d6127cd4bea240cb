"""Omalizumab: label dosing tables, injections, re-dosing rules, treatment timelines and PK/PD simulation.

Pure core (no I/O). Every number comes from ``reference/data/omalizumab_*.json``; see docs/omalizumab.md.
"""

from immunoplan.clinical.omalizumab.injections import Injection, split_injections
from immunoplan.clinical.omalizumab.tables import (
    INDICATIONS,
    REGIONS,
    DoseResult,
    ResultKind,
    lookup_dose,
)

__all__ = [
    "INDICATIONS",
    "REGIONS",
    "DoseResult",
    "Injection",
    "ResultKind",
    "lookup_dose",
    "split_injections",
]
