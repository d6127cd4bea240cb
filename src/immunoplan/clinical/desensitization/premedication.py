"""Premedication regimens and the bedside checklist, as published (reference files ``rdd_premedication`` and
``rdd_bedside_checklist``). The prescriber chooses the regimen; symptom-driven additions follow the UpToDate
platinum worksheet (aspirin if the initial reaction included flushing, montelukast if respiratory symptoms).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from immunoplan import reference
from immunoplan.reference import Basis
from immunoplan.validation import check_choice

PREMED = "rdd_premedication"
CHECKLIST = "rdd_bedside_checklist"


@dataclass(frozen=True)
class Premedication:
    regimen_id: str
    name: str
    items: list[dict[str, Any]]
    basis: Basis
    warnings: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "regimen_id": self.regimen_id,
            "name": self.name,
            "items": self.items,
            "basis": self.basis.to_dict(),
            "warnings": self.warnings,
        }


def regimen_ids() -> list[str]:
    return [r["id"] for r in reference.load(PREMED)["regimens"]]


def premedication(regimen_id: str, initial_symptoms: tuple[str, ...] = ()) -> Premedication:
    """The regimen ``regimen_id`` plus its symptom-driven additions (``flushing``, ``respiratory``)."""
    ids = regimen_ids()
    check_choice("premedication", regimen_id, ids)
    reg = next(r for r in reference.load(PREMED)["regimens"] if r["id"] == regimen_id)
    items = [dict(i) for i in reg["items"]]
    warnings: list[str] = []
    extra = reg.get("if_symptoms", {})
    for sym in initial_symptoms:
        if sym in extra:
            items += [dict(i, reason=f"initial reaction included {sym}") for i in extra[sym]]
        else:
            warnings.append(f"regimen {regimen_id!r} has no published addition for {sym!r}")
    if any(i.get("status") == "UNVERIFIED" for i in items):
        warnings.append(
            "Some items were not read in the source (UNVERIFIED): the prescriber must complete them."
        )
    basis = reference.basis(PREMED, regimen_id, status=reg["status"], source=reg["source"])
    return Premedication(regimen_id, reg["name"], items, basis, warnings)


def bedside_checklist() -> dict[str, Any]:
    """The bedside checklist with its basis."""
    d = reference.load(CHECKLIST)
    return {
        "before": d["before"],
        "at_bedside": d["at_bedside"],
        "during": d["during"],
        "after": d["after"],
        "basis": reference.basis(CHECKLIST).to_dict(),
    }
