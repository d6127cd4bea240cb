"""Laboratory biomarkers: ImmunoCAP sIgE class, sIgE/total-IgE ratio, IgE mass conversion, eosinophil and FeNO
categories. Every cut-off is read from ``reference/data/assess_biomarkers.json`` (sources:
clinical_measures.md section 2 -- Nordx/Phadia class table, ATS 2011 FeNO guideline, eviCore/GINA eosinophil
criteria).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from immunoplan.clinical.assess_rules import (
    FiredRule,
    age_years,
    find_band,
    fire,
    number,
)
from immunoplan.reference import limits, load
from immunoplan.validation import check_choice

TABLE = "assess_biomarkers"
HUNDRED = Decimal(100)


def _table() -> dict[str, Any]:
    return load(TABLE)


def sige_kua_l(value: Any) -> Decimal:
    """Validate an allergen-specific IgE result (kUA/L; field limit ``sige_kua_l``)."""
    return limits.check("sige_kua_l", value)


def total_ige_iu_ml(value: Any) -> Decimal:
    """Validate a total IgE result (IU/mL = kU/L; field limit ``total_ige_iu_ml``: > 0, so a ratio exists)."""
    return limits.check("total_ige_iu_ml", value)


def sige_class(sige: Any) -> int:
    """ImmunoCAP class 0-6 of an sIgE result in kUA/L; lower class bounds are inclusive (Nordx/Phadia)."""
    value = sige_kua_l(sige)
    band = find_band(value, [{**c, "max_inclusive": False} for c in _table()["sige_classes"]["classes"]])
    assert band is not None  # the classes cover [0, inf)
    return int(band["class"])


def sige_class_rule(cls: int) -> FiredRule:
    item = _table()["sige_classes"]
    label = item["classes"][cls]["label"]
    return fire(TABLE, item, "sige_class", f"ImmunoCAP class {cls} ({label}); lower bounds inclusive.")


def ratio_percent(sige: Any, total_ige: Any) -> Decimal:
    """sIgE/total-IgE ratio in percent: sIgE (kUA/L) / total IgE (kU/L = IU/mL) x 100, exact Decimal."""
    return sige_kua_l(sige) / total_ige_iu_ml(total_ige) * HUNDRED


def display_ratio(ratio: Decimal) -> Decimal:
    """The ratio rounded for display (decisions always use the exact value)."""
    places = int(_table()["sige_total_ratio"]["display_places"])
    return ratio.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def ratio_rule() -> FiredRule:
    item = _table()["sige_total_ratio"]
    return fire(TABLE, item, "sige_total_ratio", f"ratio = {item['formula']}")


@dataclass(frozen=True)
class Conversion:
    """A total-IgE unit conversion with the factor used and its basis."""

    value: Decimal
    unit: str
    factor_ng_per_iu: Decimal
    rule: FiredRule

    @property
    def warning(self) -> str | None:
        """Set when the factor is UNVERIFIED: the converted value must not feed a dose calculation."""
        if self.rule.basis.status != "UNVERIFIED":
            return None
        return (
            f"IgE mass factor {self.factor_ng_per_iu} ng/IU is UNVERIFIED: check the laboratory's own factor "
            "before using a converted value to dose (e.g. omalizumab)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "warning": self.warning,
            "value": self.value,
            "unit": self.unit,
            "factor_ng_per_iu": self.factor_ng_per_iu,
            "rule": self.rule.to_dict(),
        }


def _factor(factor: str | None) -> tuple[Decimal, FiredRule]:
    item = _table()["ige_mass_conversion"]
    key = factor if factor is not None else item["default_factor"]
    key = check_choice("factor_ng_per_iu", key, tuple(item["factors"]))
    meta = item["factors"][key]
    return Decimal(key), fire(TABLE, meta, "ige_mass_conversion", f"1 IU of IgE = {key} ng. {item['note']}")


def iu_ml_to_ng_ml(iu_ml: Any, factor: str | None = None) -> Conversion:
    """Total IgE IU/mL -> ng/mL (ng/mL = IU/mL x factor; default factor from the data, see its status)."""
    value = limits.check("total_ige_iu_ml", iu_ml)
    f, rule = _factor(factor)
    return Conversion(value * f, "ng/mL", f, rule)


def ng_ml_to_iu_ml(ng_ml: Any, factor: str | None = None) -> Conversion:
    """Total IgE ng/mL -> IU/mL (IU/mL = ng/mL / factor; bounds: field limit ``total_ige_iu_ml`` x factor)."""
    f, rule = _factor(factor)
    lim = limits.limit("total_ige_iu_ml")
    lo, hi = (None if b is None else b * f for b in (lim.low, lim.high))
    value = number("total_ige_ng_ml", ng_ml, lo, hi, unit="ng/mL", low_inclusive=lim.low_inclusive)
    return Conversion(value / f, "IU/mL", f, rule)


@dataclass(frozen=True)
class Category:
    """A biomarker category with its meaning and basis."""

    category: str
    meaning: str
    rule: FiredRule

    def to_dict(self) -> dict[str, Any]:
        return {"category": self.category, "meaning": self.meaning, "rule": self.rule.to_dict()}


def eosinophil_category(eosinophils_cells_ul: Any) -> Category:
    """Blood eosinophil category (cells/uL): low < 150 <= intermediate < 300 <= high (eviCore, GINA)."""
    value = limits.check("eosinophils_cells_ul", eosinophils_cells_ul)
    item = _table()["eosinophils"]
    band = find_band(value, [{**c, "max_inclusive": False} for c in item["categories"]])
    assert band is not None
    finding = f"eosinophils {value} cells/uL: {band['category']} ({band['meaning']}). {item['children_note']}"
    return Category(band["category"], band["meaning"], fire(TABLE, item, "eosinophil_category", finding))


def feno_category(feno_ppb: Any, age: Any) -> Category:
    """FeNO (ATS 2011): adults low < 25, 25-50 intermediate, > 50 high; children < 20, 20-35, > 35"""
    value = limits.check("feno_ppb", feno_ppb)
    years = age_years(age)
    item = _table()["feno"]
    group = "child" if years < Decimal(item["child_below_age_years"]) else "adult"
    band = find_band(value, item[group])
    assert band is not None
    finding = f"FeNO {value} ppb ({group} cut-offs): {band['category']} ({band['meaning']})."
    if years < Decimal(item["minimum_age_note_years"]):
        finding += " The child cut-offs were validated from 5 years; interpret with caution."
    return Category(band["category"], band["meaning"], fire(TABLE, item, f"feno_category_{group}", finding))
