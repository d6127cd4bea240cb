"""Per-drug preparation data and plausibility of a desensitization target dose (reference file
``rdd_drug_preparation``; protocols.md "Preparation, diluents and dose plausibility").

- `drug_preparation`: the diluent(s) the product information allows (and forbids), the final concentration
  limits and the stability after dilution, each with its source and status. A drug without a sourced
  diluent answers ``diluent_sourced=False``: the pharmacy sheet then prints no diluent and says so.
- `bsa_m2`: body surface area (Mosteller by default, or DuBois), with the formula's source.
- `dose_plausibility`: is the target inside one of the drug's usual regimen ranges (per m2, per kg or flat)?
  ``within`` is None when no range can be computed (unknown drug, or a per-m2 range without height/weight).
  ``needs_confirmation`` is True only when the answer is a sourced (not UNVERIFIED) "outside".
- `concentration_checks`: each bag's concentration against the label's final-concentration limits (the
  dilution bags of a desensitization protocol are usually far below them: a warning, stated neutrally).
- `dose_rounding_flags`: bags whose drawn (measurable) stock volume changes the bag's infused dose by more
  than the project threshold (``dose_rounding_threshold``, UNVERIFIED project rule: it only flags).
- `stability_warning`: a protocol lasting longer than the room-temperature stability of the diluted drug.

Pure: no I/O, Decimal arithmetic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from immunoplan import reference
from immunoplan.errors import InvalidInput
from immunoplan.reference import Basis, limits
from immunoplan.validation import check_choice

DATA = "rdd_drug_preparation"
BSA_FORMULAS = ("mosteller", "dubois")


def _dec(x: Any) -> Decimal | None:
    return None if x is None else Decimal(str(x))


def _fmt(x: Decimal | None, places: int = 4) -> str:
    if x is None:
        return "-"
    q = x.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP).normalize()
    return format(q, "f")


def _basis(rule: str, item: Mapping[str, Any]) -> Basis:
    return reference.basis(DATA, rule, status=item.get("status"), source=item.get("source"))


def drug_key(drug: str | None) -> str | None:
    """The reference entry for ``drug`` (name or brand, case-insensitive, a word of the text), or None."""
    if not drug:
        return None
    words = set(re.findall(r"[a-z0-9]+", str(drug).lower()))
    for key, entry in reference.load(DATA)["drugs"].items():
        if words & {a.lower() for a in entry.get("aliases", [key])}:
            return str(key)
    return None


# ----------------------------------------------------------------------------------------------- preparation


@dataclass(frozen=True)
class DrugPreparation:
    """What the pharmacy sheet prints about the drug: diluent, concentration limits, stability, notes."""

    drug: str
    key: str | None
    diluent_sourced: bool
    diluents: list[str]
    never_diluents: list[str]
    concentration_min_mg_ml: Decimal | None
    concentration_max_mg_ml: Decimal | None
    concentration_text: str | None
    room_temperature_hours: Decimal | None
    refrigerated_hours: Decimal | None
    stability_text: str | None
    notes: list[str]
    message: str | None
    basis: list[Basis] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "drug": self.drug,
            "key": self.key,
            "diluent_sourced": self.diluent_sourced,
            "diluents": self.diluents,
            "never_diluents": self.never_diluents,
            "concentration_min_mg_ml": self.concentration_min_mg_ml,
            "concentration_max_mg_ml": self.concentration_max_mg_ml,
            "concentration_text": self.concentration_text,
            "room_temperature_hours": self.room_temperature_hours,
            "refrigerated_hours": self.refrigerated_hours,
            "stability_text": self.stability_text,
            "notes": self.notes,
            "message": self.message,
            "basis": [b.to_dict() for b in self.basis],
        }


def _sourced(item: Mapping[str, Any] | None) -> bool:
    return bool(item) and bool(item.get("source")) and item.get("status") != "UNVERIFIED"  # type: ignore[union-attr]


def drug_preparation(drug: str) -> DrugPreparation:
    """Diluent, final-concentration limits and stability of ``drug`` with their basis (module docstring)."""
    key = drug_key(drug)
    entry = reference.load(DATA)["drugs"].get(key) if key else None
    if entry is None:
        return DrugPreparation(
            drug,
            None,
            False,
            [],
            [],
            None,
            None,
            None,
            None,
            None,
            None,
            [],
            f"No sourced diluent for {drug!r} in {DATA}: no diluent is printed; the pharmacy takes diluent, "
            "concentration limits and stability from the product information.",
        )
    basis: list[Basis] = []
    dil = entry.get("diluents")
    sourced = _sourced(dil) and bool(dil.get("allowed"))
    if dil:
        basis.append(_basis(f"{key}: diluent", dil))
    conc = entry.get("concentration_mg_ml") or {}
    if conc:
        basis.append(_basis(f"{key}: final concentration", conc))
    stab = entry.get("stability") or {}
    if stab:
        basis.append(_basis(f"{key}: stability after dilution", stab))
    message = (
        None
        if sourced
        else f"No sourced diluent for {drug!r}: no diluent is printed; take it from the product information."
    )
    return DrugPreparation(
        drug,
        key,
        sourced,
        list(dil.get("allowed", [])) if sourced else [],
        list(dil.get("never", [])) if sourced else [],
        _dec(conc.get("min")) if _sourced(conc) else None,
        _dec(conc.get("max")) if _sourced(conc) else None,
        conc.get("text") if _sourced(conc) else None,
        _dec(stab.get("room_temperature_hours")) if _sourced(stab) else None,
        _dec(stab.get("refrigerated_hours")) if _sourced(stab) else None,
        stab.get("text") if _sourced(stab) else None,
        list(entry.get("notes", [])),
        message,
        basis,
    )


def use_by(prepared_at: datetime, hours: Decimal | None) -> datetime | None:
    """``prepared_at`` + the stability ``hours`` (None when no stability is sourced)."""
    if hours is None:
        return None
    return prepared_at + timedelta(seconds=float(hours * 3600))


def stability_warning(prep: DrugPreparation, total_minutes: Decimal) -> str | None:
    """A protocol that lasts longer than the room-temperature stability of the diluted drug."""
    h = prep.room_temperature_hours
    if h is None or total_minutes <= h * 60:
        return None
    return (
        f"The protocol lasts {_fmt(total_minutes / 60, 1)} h, longer than the {_fmt(h, 1)} h "
        f"room-temperature stability of diluted {prep.key}: bags prepared before the start would be "
        "past it before the end (prepare the later bags nearer their use, or keep them at 2-8 C as the "
        "product information allows)."
    )


# ---------------------------------------------------------------------------------------------- bag checks


@dataclass(frozen=True)
class ConcentrationCheck:
    bag: int
    concentration_mg_ml: Decimal
    min_mg_ml: Decimal | None
    max_mg_ml: Decimal | None
    position: str  # within | below | above | no-limit
    message: str | None


def concentration_checks(
    prep: DrugPreparation, bags: Iterable[Mapping[str, Any] | Any]
) -> list[ConcentrationCheck]:
    """Each bag's concentration (``concentration_mg_ml``) against the label's final-concentration limits."""
    out: list[ConcentrationCheck] = []
    lo, hi = prep.concentration_min_mg_ml, prep.concentration_max_mg_ml
    for b in bags:

        def get(k: str, _b: Any = b) -> Any:
            return _b[k] if isinstance(_b, Mapping) else getattr(_b, k)

        n, c = int(get("bag")), Decimal(str(get("concentration_mg_ml")))
        if lo is None and hi is None:
            out.append(ConcentrationCheck(n, c, lo, hi, "no-limit", None))
            continue
        rng = f"{_fmt(lo) if lo is not None else '-'} to {_fmt(hi) if hi is not None else '-'} mg/mL"
        if lo is not None and c < lo:
            pos = "below"
            msg = (
                f"Bag {n}: {_fmt(c, 5)} mg/mL is below the label's final-concentration range for "
                f"{prep.key} ({rng}); usual for a desensitization dilution bag, but outside the range the "
                "label's stability data cover."
            )
        elif hi is not None and c > hi:
            pos = "above"
            msg = (
                f"Bag {n}: {_fmt(c, 5)} mg/mL is above the label's final-concentration range for {prep.key} "
                f"({rng}): a larger bag volume brings it within the range."
            )
        else:
            pos, msg = "within", None
        out.append(ConcentrationCheck(n, c, lo, hi, pos, msg))
    return out


def rounding_threshold() -> tuple[Decimal, Basis]:
    """The project threshold (percent) above which a drawn-volume rounding is flagged, with its basis."""
    t = reference.load(DATA)["dose_rounding_threshold"]
    return Decimal(t["value_pct"]), _basis("dose rounding threshold", t)


@dataclass(frozen=True)
class RoundingFlag:
    bag: int
    drug_volume_exact_ml: Decimal
    drug_volume_measured_ml: Decimal
    dose_error_pct: Decimal
    threshold_pct: Decimal
    message: str


def dose_rounding_flags(preparation: Mapping[str, Any] | Any) -> list[RoundingFlag]:
    """Bags of a measurable preparation (`preparation.prepare` result or its dict) whose dose error exceeds
    the threshold (either direction)."""
    threshold, _ = rounding_threshold()
    bags = preparation["bags"] if isinstance(preparation, Mapping) else preparation.bags
    out: list[RoundingFlag] = []
    for b in bags:

        def get(k: str, _b: Any = b) -> Any:
            return _b.get(k) if isinstance(_b, Mapping) else getattr(_b, k)

        pct = get("dose_error_pct")
        if pct is None:
            continue
        pct = Decimal(str(pct))
        if abs(pct) <= threshold:
            continue
        exact = Decimal(str(get("drug_volume_exact_ml")))
        measured = Decimal(str(get("drug_volume_measured_ml")))
        sign = "+" if pct > 0 else ""
        out.append(
            RoundingFlag(
                int(get("bag")),
                exact,
                measured,
                pct,
                threshold,
                f"Bag {get('bag')}: drawing {_fmt(measured, 2)} mL for an exact {_fmt(exact, 4)} mL of stock "
                f"changes the dose from this bag by {sign}{_fmt(pct, 1)} % "
                f"(flag above {_fmt(threshold, 1)} %): "
                "prepare it from an intermediate dilution, or accept and record the difference.",
            )
        )
    return out


# ----------------------------------------------------------------------------------------------- BSA, dose


def bsa_m2(height_cm: Any, weight_kg: Any, formula: str = "mosteller") -> Decimal:
    """Body surface area in m2 (Mosteller 1987 by default, or DuBois 1916), to 4 decimals."""
    check_choice("bsa_formula", formula, BSA_FORMULAS)
    h = limits.check("height_cm", height_cm)
    w = limits.check("weight_kg", weight_kg)
    if formula == "mosteller":
        v = (h * w / Decimal(3600)).sqrt()
    else:
        v = Decimal(str(0.007184 * float(h) ** 0.725 * float(w) ** 0.425))
    return v.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def bsa_basis(formula: str = "mosteller") -> Basis:
    f = reference.load(DATA)["bsa_formulas"][formula]
    return _basis(f"BSA {f['name']}: {f['formula']}", f)


@dataclass(frozen=True)
class DosePlausibility:
    drug: str
    key: str | None
    target_dose_mg: Decimal
    within: bool | None
    needs_confirmation: bool
    ranges: list[dict[str, Any]]
    bsa_m2: Decimal | None
    message: str | None
    basis: list[Basis]

    def to_dict(self) -> dict[str, Any]:
        return {
            "drug": self.drug,
            "key": self.key,
            "target_dose_mg": self.target_dose_mg,
            "within": self.within,
            "needs_confirmation": self.needs_confirmation,
            "range": self.ranges,
            "bsa_m2": self.bsa_m2,
            "message": self.message,
            "basis": [b.to_dict() for b in self.basis],
        }


def _range_text(r: Mapping[str, Any]) -> str:
    """``85-130 mg/m2 = 153-234 mg (regimen)``; a flat range in mg; 'not computed' without height/weight."""
    lo, hi = r.get("min") or "-", r.get("max") or "-"
    if r["basis"] == "flat":
        return f"{lo}-{hi} mg ({r['regimen']})"
    if r.get("min_mg") is None and r.get("max_mg") is None:
        need = "height and weight" if r["basis"] == "per_m2" else "weight"
        return f"{lo}-{hi} {r['unit']} (not computed: needs {need}) ({r['regimen']})"
    lo_mg = _fmt(r["min_mg"], 0) if r.get("min_mg") is not None else "-"
    hi_mg = _fmt(r["max_mg"], 0) if r.get("max_mg") is not None else "-"
    return f"{lo}-{hi} {r['unit']} = {lo_mg}-{hi_mg} mg ({r['regimen']})"


def dose_plausibility(
    drug: str,
    target_dose_mg: Any,
    *,
    weight_kg: Any = None,
    height_cm: Any = None,
    formula: str = "mosteller",
) -> DosePlausibility:
    """Is ``target_dose_mg`` inside one of the drug's usual regimen ranges? (module docstring)"""
    target = Decimal(str(target_dose_mg))
    key = drug_key(drug)
    entry = reference.load(DATA)["drugs"].get(key) if key else None
    regimens = ((entry or {}).get("dose") or {}).get("regimens") or []
    if not regimens:
        return DosePlausibility(
            drug, key, target, None, False, [], None, f"No usual dose range for {drug!r} in {DATA}.", []
        )
    w = limits.check_optional("weight_kg", weight_kg)
    h = limits.check_optional("height_cm", height_cm)
    bsa = bsa_m2(h, w, formula) if w is not None and h is not None else None
    basis: list[Basis] = []
    ranges: list[dict[str, Any]] = []
    computed_in: list[bool] = []
    uncomputed = False
    sourced_outside_only = True
    for r in regimens:
        lo, hi = _dec(r.get("min")), _dec(r.get("max"))
        factor = {"flat": Decimal(1), "per_m2": bsa, "per_kg": w}[r["basis"]]
        basis.append(_basis(f"{key}: {r['regimen']}", r))
        row: dict[str, Any] = {
            "basis": r["basis"],
            "min": r.get("min"),
            "max": r.get("max"),
            "unit": r["unit"],
            "regimen": r["regimen"],
            "status": r["status"],
            "source": r["source"],
            "min_mg": None,
            "max_mg": None,
        }
        if factor is None:
            uncomputed = True
        else:
            row["min_mg"] = lo * factor if lo is not None else None
            row["max_mg"] = hi * factor if hi is not None else None
            inside = (lo is None or target >= lo * factor) and (hi is None or target <= hi * factor)
            computed_in.append(inside)
            if r.get("status") == "UNVERIFIED":
                sourced_outside_only = False
        ranges.append(row)
    if bsa is not None:
        basis.append(bsa_basis(formula))
    texts = "; ".join(_range_text(r) for r in ranges)
    sources = "; ".join(dict.fromkeys(str(r["source"]) for r in ranges))
    if any(computed_in):
        within: bool | None = True
        msg = None
    elif uncomputed:
        within = None
        msg = (
            f"Target {_fmt(target, 2)} mg of {key} is not in a usual range that could be computed; the "
            f"per-m2 (or per-kg) range needs the patient's height and weight: {texts}."
        )
    else:
        within = False
        name = reference.load(DATA)["bsa_formulas"][formula]["name"]
        bsa_text = f" (BSA {_fmt(bsa, 2)} m2, {name})" if bsa is not None else ""
        msg = (
            f"Target {_fmt(target, 2)} mg of {key} is outside every usual range{bsa_text}: {texts}. "
            f"Source: {sources}."
        )
    needs = within is False and sourced_outside_only
    return DosePlausibility(drug, key, target, within, needs, ranges, bsa, msg, basis)


def require_confirmation(p: DosePlausibility, confirmation: str | None) -> str | None:
    """`InvalidInput` naming ``dose_mg`` when ``p`` needs a confirmation and none is given; else the
    warning to show (None when the dose is within a usual range)."""
    if p.needs_confirmation and not (confirmation and confirmation.strip()):
        raise InvalidInput(
            "dose_mg",
            f"{p.message} Confirm the dose with a reason (dose_confirmation, --confirm-dose REASON) "
            "to plan it",
            "; ".join(_range_text(r) for r in p.ranges),
        )
    if p.needs_confirmation:
        return f"{p.message} Dose confirmed by the clinician: {confirmation!s}."
    return p.message
