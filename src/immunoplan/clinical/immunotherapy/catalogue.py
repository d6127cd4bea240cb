"""SCIT product catalogue (reference file ``scit_products``): vials, units, maintenance dose and regimens."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from immunoplan import reference
from immunoplan.errors import InvalidInput
from immunoplan.validation import check_choice

DATA = "scit_products"


@dataclass(frozen=True)
class Vial:
    vial: int
    units_per_ml: Decimal
    colour: str


@dataclass(frozen=True)
class Dose:
    """One injection: amount in product units, and the vial + volume that deliver it."""

    units: Decimal
    unit: str
    vial: int
    volume_ml: Decimal

    def to_dict(self) -> dict[str, Any]:
        return {"dose": self.units, "unit": self.unit, "vial": self.vial, "volume_ml": self.volume_ml}


def product_ids() -> list[str]:
    return list(reference.load(DATA)["products"])


def product(product_id: str) -> dict[str, Any]:
    check_choice("product", product_id, product_ids())
    return dict(reference.load(DATA)["products"][product_id])


def vials(product_id: str) -> list[Vial]:
    return [
        Vial(int(v["vial"]), Decimal(v["units_per_ml"]), v["colour"]) for v in product(product_id)["vials"]
    ]


def regimen(product_id: str, regimen_id: str) -> dict[str, Any]:
    regs = product(product_id)["regimens"]
    if regimen_id not in regs:
        raise InvalidInput("regimen", f"{product_id} has no regimen {regimen_id!r}", ", ".join(regs))
    return dict(regs[regimen_id])


def dose_of(product_id: str, vial: int, volume_ml: Decimal) -> Dose:
    v = {x.vial: x for x in vials(product_id)}
    if vial not in v:
        raise InvalidInput("vial", f"{product_id} has no vial {vial}", ", ".join(str(k) for k in v))
    return Dose(v[vial].units_per_ml * volume_ml, product(product_id)["unit"], vial, volume_ml)


def dose_for_units(product_id: str, units: Decimal) -> Dose:
    """Deliver ``units`` from the most concentrated vial giving at least the smallest scheduled volume."""
    p = product(product_id)
    min_ml = Decimal(p["min_volume_ml"])
    ordered = sorted(vials(product_id), key=lambda x: x.units_per_ml, reverse=True)
    for v in ordered:
        ml = units / v.units_per_ml
        if ml >= min_ml:
            return Dose(units, p["unit"], v.vial, ml)
    v = ordered[-1]
    return Dose(units, p["unit"], v.vial, units / v.units_per_ml)


def maintenance_dose(product_id: str) -> Decimal:
    return Decimal(product(product_id)["maintenance_dose_units"])


def ladder(product_id: str, regimen_id: str) -> list[Dose]:
    """The regimen's injections in order (rows of the schedule table)."""
    return [
        dose_of(product_id, int(r["vial"]), Decimal(r["ml"])) for r in regimen(product_id, regimen_id)["rows"]
    ]


def dose_steps(product_id: str, regimen_id: str) -> list[Dose]:
    """Distinct doses of the regimen in increasing order ('dose steps' for going back n steps)."""
    seen: dict[Decimal, Dose] = {}
    for d in ladder(product_id, regimen_id):
        seen.setdefault(d.units, d)
    return [seen[k] for k in sorted(seen)]
