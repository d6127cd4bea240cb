"""Observation time after an omalizumab dose (reference/data/omalizumab_administration.json ``observation``).

AAAAI/ACAAI Omalizumab Joint Task Force (Cox et al. JACI 2007;120:1373-7): observe 2 hours after each of the
first 3 injections of a course and 30 minutes after later injections; the physician may modify this after
discussing the risks with the patient. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from immunoplan import reference
from immunoplan.errors import InvalidInput
from immunoplan.reference import Basis

DATA = "omalizumab_administration"


def omalizumab_observation_minutes(dose_number: int) -> tuple[int, Basis]:
    """Minutes to observe the patient after dose ``dose_number`` of a course (1 = the first dose), and the
    `Basis` of the rule used. A dose number that is not a whole number >= 1 raises `InvalidInput`."""
    if isinstance(dose_number, bool) or not isinstance(dose_number, int) or dose_number < 1:
        raise InvalidInput("dose_number", f"{dose_number!r} is not a dose number", "a whole number >= 1")
    block: dict[str, Any] = reference.load(DATA)["observation"]
    for rule in block["rules"]:
        hi = rule["to_dose"]
        if dose_number >= rule["from_dose"] and (hi is None or dose_number <= hi):
            basis = reference.basis(DATA, rule["id"], status=block["status"], source=block["source"])
            return int(rule["minutes"]), basis
    raise ValueError(f"{DATA}.observation has no rule for dose {dose_number}")  # pragma: no cover
