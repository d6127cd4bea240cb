"""Re-dosing rules from the US label (text via drugs.com; reference/data/omalizumab_administration.json).

- "Adjust doses for significant changes in body weight": re-read the table with the new weight and the
  pre-treatment IgE (`redose_for_weight_change`).
- "re-testing of IgE levels during Xolair treatment cannot be used as a guide for dose determination":
  only pre-treatment IgE is ever used (`ige_for_dosing`).
- Interruption < 1 year: dose on the IgE from the initial dose determination; >= 1 year: re-test total IgE.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from immunoplan import reference
from immunoplan.clinical.omalizumab.tables import DoseResult, lookup_dose
from immunoplan.errors import InvalidInput
from immunoplan.reference import Basis, limits


@dataclass(frozen=True)
class IgeForDosing:
    """Which total IgE (IU/mL) to dose on, or that a re-test is required (``ige_iu_ml`` None)."""

    ige_iu_ml: Decimal | None
    action: str
    rule: str
    basis: Basis

    def to_dict(self) -> dict[str, Any]:
        return {
            "ige_iu_ml": self.ige_iu_ml,
            "action": self.action,
            "rule": self.rule,
            "basis": self.basis.to_dict(),
        }


def _rule(key: str) -> dict[str, Any]:
    return reference.load("omalizumab_administration")["redosing_rules"][key]


def ige_for_dosing(
    initial_ige_iu_ml: Any,
    *,
    last_dose: date | None = None,
    restart: date | None = None,
    pretreatment_retest_iu_ml: Any = None,
) -> IgeForDosing:
    """IgE to use when (re)starting. Without an interruption, or one < 1 year: the initial pre-treatment IgE.

    An interruption of >= 1 year (``restart - last_dose``) needs a re-tested IgE; if
    ``pretreatment_retest_iu_ml`` is given it is used, otherwise the answer says a re-test is required.
    IgE measured *on* treatment is never an input here (label: it cannot guide dosing).
    """
    initial = limits.check("total_ige_iu_ml", initial_ige_iu_ml, "initial_ige_iu_ml")
    if (last_dose is None) != (restart is None):
        raise InvalidInput("restart", "give both the last dose date and the restart date, or neither")
    one_year = int(_rule("one_year_days")["value"])
    if last_dose is None or restart is None:
        r = _rule("ige_on_treatment")
        return IgeForDosing(
            initial,
            "use the initial pre-treatment IgE",
            r["text"],
            reference.basis("omalizumab_administration", rule="ige_on_treatment"),
        )
    if restart < last_dose:
        raise InvalidInput("restart", "restart date is before the last dose", f">= {last_dose.isoformat()}")
    gap_days = (restart - last_dose).days
    if gap_days < one_year:
        r = _rule("interruption_lt_1_year")
        return IgeForDosing(
            initial,
            f"interruption of {gap_days} days (< 1 year): use the initial IgE",
            r["text"],
            reference.basis("omalizumab_administration", rule="interruption_lt_1_year"),
        )
    r = _rule("interruption_ge_1_year")
    b = reference.basis("omalizumab_administration", rule="interruption_ge_1_year")
    if pretreatment_retest_iu_ml is None:
        return IgeForDosing(
            None,
            f"interruption of {gap_days} days (>= 1 year): re-test total IgE before dosing",
            r["text"],
            b,
        )
    retest = limits.check("total_ige_iu_ml", pretreatment_retest_iu_ml, "pretreatment_retest_iu_ml")
    return IgeForDosing(
        retest, f"interruption of {gap_days} days (>= 1 year): use the re-tested IgE", r["text"], b
    )


@dataclass(frozen=True)
class WeightChange:
    before: DoseResult
    after: DoseResult
    changed: bool
    basis: Basis

    def to_dict(self) -> dict[str, Any]:
        return {
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "changed": self.changed,
            "rule": _rule("weight_change")["text"],
            "basis": self.basis.to_dict(),
        }


def redose_for_weight_change(
    indication: str,
    region: str,
    age_years: Any,
    initial_ige_iu_ml: Any,
    old_weight_kg: Any,
    new_weight_kg: Any,
    **kw: Any,
) -> WeightChange:
    """Re-read the table with the new weight and the *initial* IgE; ``changed`` if the answer differs."""
    before = lookup_dose(indication, region, age_years, old_weight_kg, initial_ige_iu_ml, **kw)
    after = lookup_dose(indication, region, age_years, new_weight_kg, initial_ige_iu_ml, **kw)
    changed = (before.status, before.dose_mg, before.interval_weeks) != (
        after.status,
        after.dose_mg,
        after.interval_weeks,
    )
    return WeightChange(
        before, after, changed, reference.basis("omalizumab_administration", rule="weight_change")
    )
