"""Bag preparation with measurable volumes, shown separately from the exact plan.

The exact plan (``plan.generate``) is what the protocol prescribes. A pharmacy draws the drug from a stock
solution with a syringe, so each bag's drug volume is rounded to a measurable increment (reference file
``rdd_protocols`` -> ``measurable_volume_increments``: 0.05 mL up to 3 mL, 0.1 mL up to 10 mL, 0.5 mL above;
SECONDARY, from the open-source PharmacyDoc2018 calculator). This module reports, per bag, the drawn volume,
the concentration actually prepared and the resulting dose error of the infused part, and the total error.
Assumption stated on the sheet: the drug volume is part of the bag volume (remove the same volume of diluent).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from immunoplan import reference
from immunoplan.errors import InvalidInput
from immunoplan.reference import Basis, limits

from .plan import DATA, PRECISION, RddPlan, _q


@dataclass(frozen=True)
class BagPreparation:
    bag: int
    dilution: str
    volume_ml: Decimal
    drug_volume_exact_ml: Decimal
    drug_volume_measured_ml: Decimal
    increment_ml: Decimal
    diluent_volume_ml: Decimal
    mg_in_bag_exact: Decimal
    mg_in_bag_prepared: Decimal
    concentration_prepared_mg_ml: Decimal
    dose_infused_exact_mg: Decimal
    dose_infused_prepared_mg: Decimal
    dose_error_mg: Decimal
    dose_error_pct: Decimal | None
    measurable: bool


@dataclass(frozen=True)
class Preparation:
    stock_mg_ml: Decimal
    bags: list[BagPreparation]
    total_dose_prepared_mg: Decimal
    total_dose_error_mg: Decimal
    total_dose_error_pct: Decimal
    basis: Basis
    warnings: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "stock_mg_ml": self.stock_mg_ml,
            "bags": self.bags,
            "total_dose_prepared_mg": self.total_dose_prepared_mg,
            "total_dose_error_mg": self.total_dose_error_mg,
            "total_dose_error_pct": self.total_dose_error_pct,
            "basis": self.basis.to_dict(),
            "warnings": self.warnings,
        }


def increment_for(volume_ml: Decimal) -> Decimal:
    """Measurable syringe increment for a drawn volume (bands from ``rdd_protocols``)."""
    for band in reference.load(DATA)["measurable_volume_increments"]["bands"]:
        if band["up_to_ml"] is None or volume_ml <= Decimal(band["up_to_ml"]):
            return Decimal(band["increment_ml"])
    raise AssertionError("the last band is open-ended")  # pragma: no cover


def round_measurable(volume_ml: Decimal) -> tuple[Decimal, Decimal]:
    """Round ``volume_ml`` to the nearest measurable increment (half up); returns (rounded, increment)."""
    inc = increment_for(volume_ml)
    rounded = (volume_ml / inc).quantize(Decimal(1), rounding=ROUND_HALF_UP) * inc
    return rounded, inc


def prepare(plan: RddPlan, stock_mg_ml: Decimal) -> Preparation:
    """Measurable preparation of every bag of ``plan`` from a stock solution of ``stock_mg_ml``."""
    limits.check("stock_mg_ml", stock_mg_ml)
    data = reference.load(DATA)["measurable_volume_increments"]
    warnings: list[str] = []
    out: list[BagPreparation] = []
    with localcontext() as ctx:
        ctx.prec = PRECISION
        for bag in plan.bags:
            exact = bag.mg_in_bag / stock_mg_ml
            if exact > bag.volume_ml:
                raise InvalidInput(
                    "stock_mg_ml",
                    f"bag {bag.bag} needs {exact.quantize(Decimal('0.01'))} mL of stock, more than the "
                    f"{bag.volume_ml} mL bag",
                    "a more concentrated stock",
                )
            measured, inc = round_measurable(exact)
            prepared_mg = measured * stock_mg_ml
            conc = prepared_mg / bag.volume_ml
            dose_prepared = _q(conc * bag.volume_infused_ml)
            err = dose_prepared - bag.dose_infused_mg
            pct = err / bag.dose_infused_mg * 100 if bag.dose_infused_mg else None
            measurable = measured > 0
            if not measurable:
                warnings.append(
                    f"Bag {bag.bag}: {exact.quantize(Decimal('0.0001'))} mL of stock is below the smallest "
                    f"measurable increment ({inc} mL): prepare it from an intermediate dilution."
                )
            out.append(
                BagPreparation(
                    bag.bag,
                    bag.dilution,
                    bag.volume_ml,
                    exact,
                    measured,
                    inc,
                    bag.volume_ml - measured,
                    bag.mg_in_bag,
                    prepared_mg,
                    conc,
                    bag.dose_infused_mg,
                    dose_prepared,
                    err,
                    pct,
                    measurable,
                )
            )
        total = sum((b.dose_infused_prepared_mg for b in out), Decimal(0))
        total_err = total - plan.target_mg
        total_pct = total_err / plan.target_mg * 100
    basis = reference.basis(
        DATA, "measurable volume increments", status=data["status"], source=data["source"]
    )
    return Preparation(stock_mg_ml, out, total, total_err, total_pct, basis, warnings)
