"""Label dosing tables: look up an omalizumab dose by indication, region, age, weight and baseline total IgE.

Tables are versioned data (``reference/data/omalizumab_<region>_<indication>.json``). Band edges keep their
printed open/closed ends: the US asthma >=12 table reads "≥30-100, >100-200 ..." (IgE, IU/mL) and
"30-60, >60-70, >70-90, >90-150" (kg), so IgE 100 and weight 60 fall in the first row and column (US label via
drugs.com; see /work/shared/reference/omalizumab_dosing.md section 1.1).

Four result kinds (values, never exceptions):
- ``dose``: dose_mg + interval_weeks + the syringe split (<= 150 mg per site);
- ``do-not-dose``: the cell is printed "do not dose";
- ``outside-table``: IgE or weight outside the table ("insufficient data to recommend a dose"), or no label
  table for this age/indication/region;
- ``unverified-table``: the table or cell was not verified; no dose unless an explicit override reason is
  given, which is then echoed in the result. Cells whose value was never read give no dose even with an
  override.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from immunoplan import reference
from immunoplan.clinical.omalizumab.injections import split_injections
from immunoplan.errors import InvalidInput
from immunoplan.reference import Basis, limits
from immunoplan.validation import check_choice

REGIONS = ("us", "eu")
INDICATIONS = ("asthma", "crswnp", "food-allergy", "csu")


class ResultKind(StrEnum):
    DOSE = "dose"
    DO_NOT_DOSE = "do-not-dose"
    OUTSIDE_TABLE = "outside-table"
    UNVERIFIED_TABLE = "unverified-table"


@dataclass(frozen=True)
class DoseResult:
    """Answer of a label-table lookup; ``to_dict`` gives the CLI/API JSON shape."""

    status: ResultKind
    reason: str
    inputs: dict[str, Any]
    table: dict[str, str] | None = None
    cell: dict[str, str] | None = None
    dose_mg: Decimal | None = None
    interval_weeks: int | None = None
    injections: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    basis: Basis | None = None
    override: dict[str, Any] | None = None
    alternatives_mg: list[int] = field(default_factory=list)

    @property
    def injection_sites(self) -> int:
        return len(self.injections)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "dose_mg": self.dose_mg,
            "interval_weeks": self.interval_weeks,
            "injections": list(self.injections),
            "injection_sites": self.injection_sites,
            "table": self.table,
            "cell": self.cell,
            "warnings": list(self.warnings),
            "reason": self.reason,
            "override": self.override,
            "alternatives_mg": list(self.alternatives_mg),
            "inputs": self.inputs,
            "basis": self.basis.to_dict() if self.basis else None,
        }


def in_band(value: Decimal, band: dict[str, Any]) -> bool:
    """True if ``value`` lies in ``band`` honouring its printed open/closed ends."""
    low, high = Decimal(str(band["low"])), Decimal(str(band["high"]))
    above = value >= low if band["low_inclusive"] else value > low
    below = value <= high if band["high_inclusive"] else value < high
    return above and below


def find_band(value: Decimal, bands: list[dict[str, Any]]) -> int | None:
    for i, band in enumerate(bands):
        if in_band(value, band):
            return i
    return None


def table_name(indication: str, region: str, age_years: Decimal) -> str | None:
    """Which shipped table applies (None: no label table for this combination)."""
    if indication == "csu":
        return "omalizumab_csu_fixed"
    if region == "us":
        if indication == "asthma":
            for name in ("omalizumab_us_asthma_12plus", "omalizumab_us_asthma_6_to_11"):
                if age_years >= reference.load(name)["age_min_years"]:
                    return name
            return None
        return {"crswnp": "omalizumab_us_crswnp", "food-allergy": "omalizumab_us_food_allergy"}[indication]
    # EU: one grid for asthma (>= 6 y) and CRSwNP (adults); food allergy is not an EU indication.
    if indication in ("asthma", "crswnp"):
        return "omalizumab_eu_asthma"
    return None


def _min_age(indication: str, name: str) -> Decimal:
    if indication == "crswnp":
        return Decimal(reference.load("omalizumab_us_crswnp")["age_min_years"])
    return Decimal(reference.load(name)["age_min_years"])


def _table_ref(data: dict[str, Any]) -> dict[str, str]:
    return {"id": data["id"], "version": data["version"]}


def lookup_dose(
    indication: str,
    region: str,
    age_years: Any,
    weight_kg: Any,
    total_ige_iu_ml: Any,
    *,
    override_reason: str | None = None,
    csu_dose_mg: int | None = None,
) -> DoseResult:
    """Label dose for one patient. ``total_ige_iu_ml`` is the pre-treatment serum total IgE (IU/mL)."""
    indication = check_choice("indication", indication, INDICATIONS)
    region = check_choice("region", region, REGIONS)
    age = limits.check("age_years", age_years)
    # CSU dosing ignores weight and IgE (label): they may be omitted there; elsewhere they are required.
    optional = indication == "csu"
    weight = _measure("weight_kg", weight_kg, optional)
    ige = _measure("total_ige_iu_ml", total_ige_iu_ml, optional)
    override = override_reason.strip() if override_reason and override_reason.strip() else None
    inputs = {
        "indication": indication,
        "region": region,
        "age_years": age,
        "weight_kg": weight,
        "total_ige_iu_ml": ige,
    }
    if override:
        inputs["override_reason"] = override

    name = table_name(indication, region, age)
    if name is None:
        return DoseResult(
            ResultKind.OUTSIDE_TABLE,
            f"no {region.upper()} label table for {indication} at age {age} years",
            inputs,
        )
    data = reference.load(name)
    if age < _min_age(indication, name):
        return DoseResult(
            ResultKind.OUTSIDE_TABLE,
            f"{indication} label dosing starts at age {_min_age(indication, name)} years",
            inputs,
            table=_table_ref(data),
            basis=reference.basis(name),
        )
    if indication == "csu":
        return _csu(data, region, inputs, csu_dose_mg)
    assert weight is not None and ige is not None  # required for every non-CSU indication (_measure)
    if data["cells"] is None:
        return _no_cells(name, data, weight, ige, inputs, override)
    return _grid(name, data, indication, weight, ige, age, inputs, override)


def _measure(field: str, value: Any, optional: bool) -> Decimal | None:
    """``value`` checked against the field limit ``field`` (`immunoplan.reference.limits`)."""
    lim = limits.limit(field)
    if value is None:
        if optional:
            return None
        raise InvalidInput(field, "required for this indication", lim.accepted)
    return lim.check(value)


def _csu(data: dict[str, Any], region: str, inputs: dict[str, Any], csu_dose_mg: int | None) -> DoseResult:
    spec = data["regions"][region]
    doses = list(spec["doses_mg"])
    warnings = ["CSU dosing does not depend on IgE or body weight."]
    if csu_dose_mg is None:
        dose = max(doses)
        if len(doses) > 1:
            warnings.append(
                f"label allows {' or '.join(str(d) for d in doses)} mg every {spec['interval_weeks']} "
                f"weeks; {dose} mg shown (choose with csu_dose_mg)"
            )
    else:
        dose = int(check_choice("csu_dose_mg", str(csu_dose_mg), [str(d) for d in doses]))
    inj = split_injections(dose)
    return DoseResult(
        ResultKind.DOSE,
        "fixed CSU dose",
        inputs,
        table=_table_ref(data),
        cell=None,
        dose_mg=Decimal(dose),
        interval_weeks=spec["interval_weeks"],
        injections=[i.syringe_mg for i in inj],
        warnings=warnings,
        basis=reference.basis(data["id"], rule=f"csu {region}", status=spec["status"]),
        alternatives_mg=doses,
    )


def _no_cells(
    name: str,
    data: dict[str, Any],
    weight: Decimal,
    ige: Decimal,
    inputs: dict[str, Any],
    override: str | None,
) -> DoseResult:
    env = data.get("envelope") or {}
    basis = reference.basis(name)
    if data.get("envelope_status") == "VERIFIED":
        ige_env, wt_env = env.get("ige_iu_ml"), env.get("weight_kg")
        outside = (ige_env and not (ige_env[0] <= ige <= ige_env[1])) or (
            wt_env and not (wt_env[0] <= weight <= wt_env[1])
        )
        if outside:
            return DoseResult(
                ResultKind.OUTSIDE_TABLE,
                f"outside the label envelope (IgE {ige_env} IU/mL, weight "
                f"{wt_env} kg): insufficient data to recommend a dose",
                inputs,
                table=_table_ref(data),
                basis=basis,
            )
    warnings = [data["note"]]
    ovr = None
    if override:
        ovr = {"reason": override, "applied": False}
        warnings.append("override recorded, but this table's cells were never read: no dose can be given")
    return DoseResult(
        ResultKind.UNVERIFIED_TABLE,
        f"{data['title']}: cells not verified",
        inputs,
        table=_table_ref(data),
        warnings=warnings,
        basis=basis,
        override=ovr,
    )


def _grid(
    name: str,
    data: dict[str, Any],
    indication: str,
    weight: Decimal,
    ige: Decimal,
    age: Decimal,
    inputs: dict[str, Any],
    override: str | None,
) -> DoseResult:
    i = find_band(ige, data["ige_bands"])
    j = find_band(weight, data["weight_bands"])
    table = _table_ref(data)
    if i is None or j is None:
        what = []
        if i is None:
            b = data["ige_bands"]
            what.append(f"IgE {ige} IU/mL outside {b[0]['low']}-{b[-1]['high']}")
        if j is None:
            b = data["weight_bands"]
            what.append(f"weight {weight} kg outside {b[0]['low']}-{b[-1]['high']}")
        return DoseResult(
            ResultKind.OUTSIDE_TABLE,
            "; ".join(what) + ": insufficient data to recommend a dose",
            inputs,
            table=table,
            basis=reference.basis(name, rule=data.get("outside_rule")),
        )
    ige_band, wt_band = data["ige_bands"][i], data["weight_bands"][j]
    cell = data["cells"][i][j]
    where = {"ige_band": ige_band["label"], "weight_band": wt_band["label"]}
    rule = f"IgE {ige_band['label']} IU/mL x weight {wt_band['label']} kg"
    statuses = [cell.get("status"), ige_band.get("status"), wt_band.get("status")]
    status = "UNVERIFIED" if "UNVERIFIED" in statuses else (cell.get("status") or data["status"])
    basis = reference.basis(
        name, rule=rule, status=status, source=cell.get("note") and f"{data['source']} [cell: {cell['note']}]"
    )
    warnings = _band_warnings(data, indication, ige, age, ige_band, wt_band)
    if cell["kind"] == "do-not-dose":
        return DoseResult(
            ResultKind.DO_NOT_DOSE,
            "the label prints 'do not dose' for this cell",
            inputs,
            table=table,
            cell=where,
            warnings=warnings,
            basis=basis,
        )
    if cell["kind"] == "unknown":
        ovr = None
        if override:
            ovr = {"reason": override, "applied": False}
            warnings.append("override recorded, but this cell's value was never read: no dose can be given")
        return DoseResult(
            ResultKind.UNVERIFIED_TABLE,
            cell["note"],
            inputs,
            table=table,
            cell=where,
            warnings=warnings,
            basis=basis,
            override=ovr,
        )
    if status == "UNVERIFIED" and not override:
        warnings.append(cell.get("note") or "unverified cell")
        return DoseResult(
            ResultKind.UNVERIFIED_TABLE,
            "this cell is not verified; an explicit override reason is required to show its dose",
            inputs,
            table=table,
            cell=where,
            warnings=warnings,
            basis=basis,
        )
    ovr = None
    if status == "UNVERIFIED":
        ovr = {"reason": override, "applied": True}
        warnings.append(f"UNVERIFIED cell shown under override: {override}")
    elif status != "VERIFIED":
        warnings.append(f"cell status {status}: {cell.get('note') or data.get('note', '')}".strip())
    dose = Decimal(cell["dose_mg"])
    return DoseResult(
        ResultKind.DOSE,
        "label table cell",
        inputs,
        table=table,
        cell=where,
        dose_mg=dose,
        interval_weeks=int(cell["interval_weeks"]),
        injections=[x.syringe_mg for x in split_injections(dose)],
        warnings=warnings,
        basis=basis,
        override=ovr,
    )


def _band_warnings(
    data: dict[str, Any],
    indication: str,
    ige: Decimal,
    age: Decimal,
    ige_band: dict[str, Any],
    wt_band: dict[str, Any],
) -> list[str]:
    out = []
    if indication == "crswnp" and wt_band.get("note"):
        out.append(wt_band["note"])
    caution = data.get("low_ige_caution")
    if caution and indication == "asthma":
        child = age < caution["child_age_below_years"]
        low = caution["child_6_to_11_below_iu_ml" if child else "adult_adolescent_below_iu_ml"]
        if ige < low:
            out.append(
                f"EU SmPC: patients with IgE below {low} IU/mL are less likely to benefit; confirm "
                "unequivocal in vitro reactivity to a perennial allergen before starting"
            )
    return out
