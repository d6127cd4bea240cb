"""Intramuscular adrenaline (epinephrine) 1 mg/mL for anaphylaxis, by body weight.

The numbers live in ``reference/data/anaphylaxis_adrenaline.json`` with their sources and status:
0.01 mg/kg IM capped at 0.3 mg for a child and 0.5 mg for an adult (US Adrenalin label and WAO Anaphylaxis
Guidance 2020, as quoted: SECONDARY), and the auto-injector strength by weight band (US AUVI-Q label: 0.1 mg
7.5 to < 15 kg, 0.15 mg 15 to < 30 kg, 0.3 mg from 30 kg: VERIFIED). Pure: no I/O. The dose is exact
(``Decimal``); how it is drawn up (syringe graduation) is left to the clinician.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from immunoplan import reference
from immunoplan.reference import Basis, limits

DATA = "anaphylaxis_adrenaline"


def _fmt(x: Decimal) -> str:
    return format(x.normalize(), "f")


@dataclass(frozen=True)
class AdrenalineDose:
    """The IM adrenaline dose for one weight: ``im_dose_mg`` (weight x mg/kg, capped at ``cap_mg``), the
    ``volume_ml`` of 1 mg/mL, the auto-injector strength of the weight band (``None`` below the smallest band,
    with ``autoinjector_reason``), the `Basis` of each rule used and any warnings."""

    weight_kg: Decimal
    age_years: Decimal | None
    mg_per_kg: Decimal
    weight_based_mg: Decimal
    im_dose_mg: Decimal
    volume_ml: Decimal
    concentration_mg_ml: Decimal
    cap_mg: Decimal
    cap: str
    capped: bool
    autoinjector_mg: Decimal | None
    autoinjector_reason: str
    basis: list[Basis] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "weight_kg": _fmt(self.weight_kg),
            "age_years": None if self.age_years is None else _fmt(self.age_years),
            "mg_per_kg": _fmt(self.mg_per_kg),
            "weight_based_mg": _fmt(self.weight_based_mg),
            "im_dose_mg": _fmt(self.im_dose_mg),
            "volume_ml": _fmt(self.volume_ml),
            "concentration_mg_ml": _fmt(self.concentration_mg_ml),
            "cap_mg": _fmt(self.cap_mg),
            "cap": self.cap,
            "capped": self.capped,
            "autoinjector_mg": None if self.autoinjector_mg is None else _fmt(self.autoinjector_mg),
            "autoinjector_reason": self.autoinjector_reason,
            "basis": [b.to_dict() for b in self.basis],
            "warnings": list(self.warnings),
        }


def _band(weight: Decimal, ai: dict[str, Any]) -> dict[str, Any] | None:
    for band in ai["bands"]:
        lo = Decimal(band["min_kg"])
        hi = None if band["max_kg"] is None else Decimal(band["max_kg"])
        if weight >= lo and (hi is None or weight < hi):
            return band
    return None


def adrenaline_dose(weight_kg: Any, age_years: Any = None) -> AdrenalineDose:
    """The IM adrenaline 1 mg/mL dose for anaphylaxis at ``weight_kg`` (and ``age_years`` when known, which
    can only lower the cap: under 12 years the child cap applies).

    A weight or age outside the field limits (``weight_kg`` (0, 500] kg, ``age_years`` [0, 120] years)
    raises `InvalidInput` naming the field and the accepted range."""
    weight = limits.check("weight_kg", weight_kg)
    age = limits.check_optional("age_years", age_years)
    d = reference.load(DATA)
    im, caps, ai = d["im_dose"], d["caps"], d["autoinjector"]
    mg_per_kg = Decimal(im["mg_per_kg"])
    conc = Decimal(d["concentration_mg_ml"])
    child_rule = caps["child_rule"]
    child_by_weight = weight < Decimal(child_rule["weight_below_kg"])
    child_by_age = age is not None and age < Decimal(child_rule["age_below_years"])
    child = child_by_weight or child_by_age
    cap = Decimal(caps["child_mg"] if child else caps["adult_mg"])
    cap_rule = child_rule["id"] if child else caps["adult_rule"]["id"]
    weight_based = weight * mg_per_kg
    dose = min(weight_based, cap)
    warnings: list[str] = []
    if weight_based > cap:
        warnings.append(
            f"weight-based dose {_fmt(weight_based)} mg is above the {'child' if child else 'adult'} "
            f"maximum single dose: the dose is {_fmt(cap)} mg"
        )
    if age is not None and child_by_age and not child_by_weight:
        warnings.append(
            f"age {_fmt(age)} years (under {child_rule['age_below_years']}): the child cap "
            f"{caps['child_mg']} mg applies although the weight is {_fmt(weight)} kg"
        )
    basis = [
        reference.basis(DATA, im["id"], status=im["status"], source=im["source"]),
        reference.basis(DATA, cap_rule, status=caps["status"], source=caps["source"]),
    ]
    band = _band(weight, ai)
    if band is None:
        ai_mg = None
        reason = ai["below_smallest"]
        warnings.append(f"no auto-injector strength for {_fmt(weight)} kg: {reason}")
        basis.append(reference.basis(DATA, "ai-below-smallest", status=ai["status"], source=ai["source"]))
    else:
        ai_mg = Decimal(band["mg"])
        reason = f"{band['text']} ({band['products']})"
        if band.get("warning"):
            warnings.append(band["warning"])
        basis.append(reference.basis(DATA, band["id"], status=ai["status"], source=ai["source"]))
    for b in basis:
        if not b.verified:  # pragma: no cover - no rule in the shipped data is UNVERIFIED
            warnings.append(f"rule {b.rule} is UNVERIFIED: confirm before use")
    return AdrenalineDose(
        weight_kg=weight,
        age_years=age,
        mg_per_kg=mg_per_kg,
        weight_based_mg=weight_based,
        im_dose_mg=dose,
        volume_ml=dose / conc,
        concentration_mg_ml=conc,
        cap_mg=cap,
        cap=cap_rule,
        capped=weight_based > cap,
        autoinjector_mg=ai_mg,
        autoinjector_reason=reason,
        basis=basis,
        warnings=warnings,
    )
