"""Model-based nomogram builder and its cell-by-cell comparison with the US asthma >=12 label table.

For each cell (IgE band x weight band) a virtual population is drawn (weight uniform and IgE log-uniform
within the band, inter-individual variability from the model's omegas, one SeedSequence child per cell). Every
candidate dose on a 75 mg grid is simulated on the *same* patients. The builder picks, every 4 weeks first and
then every 2 weeks, the smallest dose whose mid-interval free IgE in the last complete interval is at or below
the target in at least ``fraction`` of the patients (Lowe 2009: 14 ng/mL at the midpoint of 4-week periods).
If no dose up to ``max_dose_mg`` every 2 weeks reaches it, the cell is ``unreachable`` (e.g. the 48,000 IU/mL
atopic dermatitis patients of seed 003).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from immunoplan import reference
from immunoplan.clinical.omalizumab import pkpd
from immunoplan.clinical.omalizumab.population import Covariates, sample_population
from immunoplan.clinical.omalizumab.tables import ResultKind, lookup_dose
from immunoplan.errors import InvalidInput
from immunoplan.reference import Basis, limits
from immunoplan.validation import check_choice, check_range

LABEL_TABLE = "omalizumab_us_asthma_12plus"


@dataclass(frozen=True)
class Cell:
    ige_band: str
    weight_band: str
    ige_range: tuple[float, float]
    weight_range: tuple[float, float]


@dataclass
class NomogramRow:
    cell: Cell
    model_dose_mg: int | None
    model_interval_weeks: int | None
    fraction_at_target: float | None
    label: str  # "150q4", "DND" or "-" (no label cell)
    agreement: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "ige_band": self.cell.ige_band,
            "weight_band": self.cell.weight_band,
            "model": (
                f"{self.model_dose_mg}q{self.model_interval_weeks}" if self.model_dose_mg else "unreachable"
            ),
            "model_dose_mg": self.model_dose_mg,
            "model_interval_weeks": self.model_interval_weeks,
            "fraction_at_target": self.fraction_at_target,
            "label": self.label,
            "agreement": self.agreement,
        }


@dataclass
class Nomogram:
    settings: dict[str, Any]
    rows: list[NomogramRow]
    counts: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    basis: list[Basis] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "rows": [r.to_dict() for r in self.rows],
            "agreement_counts": self.counts,
            "warnings": self.warnings,
            "basis": [b.to_dict() for b in self.basis],
        }


def label_cells(extra_ige_iu_ml: Sequence[float] = ()) -> list[Cell]:
    """The US asthma >=12 grid (its printed bands), plus one row per extra IgE value across the weights."""
    t = reference.load(LABEL_TABLE)
    cells = []
    for ib in t["ige_bands"]:
        for wb in t["weight_bands"]:
            cells.append(Cell(ib["label"], wb["label"], (ib["low"], ib["high"]), (wb["low"], wb["high"])))
    for value in extra_ige_iu_ml:
        for wb in t["weight_bands"]:
            cells.append(Cell(f"{value:g}", wb["label"], (value, value), (wb["low"], wb["high"])))
    return cells


def _label_code(cell: Cell) -> str:
    wt = (Decimal(str(cell.weight_range[0])) + Decimal(str(cell.weight_range[1]))) / 2
    ige = (Decimal(str(cell.ige_range[0])) + Decimal(str(cell.ige_range[1]))) / 2
    r = lookup_dose("asthma", "us", 30, wt, ige)
    if r.status is ResultKind.DOSE:
        return f"{r.dose_mg}q{r.interval_weeks}"
    return "DND" if r.status is ResultKind.DO_NOT_DOSE else "-"


def _per4(code: str) -> Decimal | None:
    if "q" not in code:
        return None
    dose, interval = code.split("q")
    return Decimal(dose) * 4 / Decimal(interval)


def _agreement(model: str, label: str) -> str:
    if label == "-":
        return "no label cell"
    if label == "DND":
        return (
            "label do-not-dose; model unreachable"
            if model == "unreachable"
            else "label do-not-dose; model doses"
        )
    if model == "unreachable":
        return "model unreachable"
    if model == label:
        return "same"
    m, lab = _per4(model), _per4(label)
    assert m is not None and lab is not None
    if m == lab:
        return "same mg per 4 weeks, other interval"
    return "model higher" if m > lab else "model lower"


def build_nomogram(
    *,
    model: str = pkpd.DEFAULT_MODEL,
    target_ng_ml: float = 14.0,
    fraction: float = 0.5,
    patients_per_cell: int = 200,
    weeks: int = 16,
    seed: int = 0,
    dose_step_mg: int = 75,
    max_q4w_dose_mg: int | None = None,
    max_dose_mg: int | None = None,
    extra_ige_iu_ml: Sequence[float] = (),
    intervals_weeks: Sequence[int] = (4, 2),
    progress: Callable[[float], None] | None = None,
) -> Nomogram:
    """Smallest dose (75 mg grid, every 4 then every 2 weeks) reaching ``target_ng_ml`` mid-interval free IgE
    in ``fraction`` of each cell's patients, compared with the US label cell by cell."""
    check_choice("model", model, pkpd.MODELS)
    check_range("target_ng_ml", target_ng_ml, 0, 10_000, low_inclusive=False, unit="ng/mL")
    check_range("fraction", fraction, 0, 1, low_inclusive=False)
    n = int(check_range("patients_per_cell", patients_per_cell, 10, 20_000))
    weeks = int(check_range("weeks", weeks, 4, 104, unit="weeks"))
    if weeks % 4:
        weeks += 4 - weeks % 4  # whole 4-week intervals so both regimens end on a trough
    for v in extra_ige_iu_ml:
        limits.check("total_ige_iu_ml", v, "extra_ige_iu_ml")
    if max_q4w_dose_mg is None:  # largest every-4-weeks dose printed in the US table (300 mg)
        max_q4w_dose_mg = max(
            c["dose_mg"]
            for row in reference.load(LABEL_TABLE)["cells"]
            for c in row
            if c["kind"] == "dose" and c["interval_weeks"] == 4
        )
    if max_dose_mg is None:  # EU SmPC maximum: 600 mg every 2 weeks
        max_dose_mg = int(reference.load("omalizumab_regimens")["max_single_administration_mg"]["value"])
    doses = np.arange(dose_step_mg, max_dose_mg + 1, dose_step_mg, dtype=float)
    max_per_interval = {4: max_q4w_dose_mg, 2: max_dose_mg}
    intervals = [int(check_choice("intervals_weeks", str(i), ("4", "2"))) for i in intervals_weeks]
    if not intervals:
        raise InvalidInput("intervals_weeks", "give at least one interval", "4, 2")
    cells = label_cells(extra_ige_iu_ml)
    children = np.random.SeedSequence(seed).spawn(len(cells))
    parts = [
        sample_population(
            model,
            Covariates(c.weight_range, c.ige_range if c.ige_range[0] < c.ige_range[1] else c.ige_range[0]),
            n,
            int(ch.generate_state(1)[0]),
        )
        for c, ch in zip(cells, children, strict=True)
    ]
    base = _stack(parts)
    chosen: dict[int, tuple[int, int, float]] = {}
    for k, interval in enumerate(intervals):
        grid = doses[doses <= max_per_interval[interval]]
        reps = len(grid)
        ind = base.take(np.tile(np.arange(base.n), reps))
        dose_per_patient = np.repeat(grid, base.n)
        days = weeks * 7
        events = pkpd.regular_regimen(dose_per_patient, interval, weeks)
        mid_day = float(days - interval * 7 / 2)
        mid = np.full(ind.n, np.nan)

        def step_progress(
            t: float,
            states: list[pkpd.State],
            inds: list[pkpd.Individuals],
            _k: int = k,
            _d: int = days,
            _m: float = mid_day,
            _out: np.ndarray = mid,
        ) -> None:
            if abs(t - _m) < 1e-9:
                _out[:] = np.concatenate([s.free_ige_ng_ml(c) for s, c in zip(states, inds, strict=True)])
            if progress is not None:
                progress((_k + t / _d) / len(intervals))

        pkpd.integrate(ind, events, days, on_step=step_progress)
        ok = (mid.reshape(reps, len(cells), n) <= target_ng_ml).mean(axis=2)  # (doses, cells)
        for ci in range(len(cells)):
            if ci in chosen:
                continue
            hit = np.flatnonzero(ok[:, ci] >= fraction)
            if hit.size:
                chosen[ci] = (int(grid[hit[0]]), interval, float(ok[hit[0], ci]))
    rows = []
    for ci, c in enumerate(cells):
        label = _label_code(c)
        if ci in chosen:
            d, iv, frac = chosen[ci]
            code = f"{d}q{iv}"
            rows.append(NomogramRow(c, d, iv, round(frac, 4), label, _agreement(code, label)))
        else:
            rows.append(NomogramRow(c, None, None, None, label, _agreement("unreachable", label)))
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.agreement] = counts.get(r.agreement, 0) + 1
    spec = pkpd.model_spec(model)
    warnings = ["Model-based nomogram for research and teaching; the label table is what doses patients."]
    lo, hi = spec["fitted_ranges"]["total_ige_iu_ml"]
    if any(v > hi for v in extra_ige_iu_ml):
        warnings.append(f"IgE rows above {hi} IU/mL extrapolate the {model} model far outside its data")
    settings = {
        "model": model,
        "target_ng_ml": target_ng_ml,
        "metric": "mid-interval free IgE, last interval",
        "fraction": fraction,
        "patients_per_cell": n,
        "weeks": weeks,
        "seed": seed,
        "dose_grid_mg": [int(d) for d in doses],
        "intervals_weeks": intervals,
        "max_dose_mg": {"every 4 weeks": max_q4w_dose_mg, "every 2 weeks": max_dose_mg},
        "covariates": "weight uniform, IgE log-uniform within each band",
    }
    basis = [
        reference.basis("omalizumab_pkpd_models", rule=model, status=spec["status"]),
        reference.basis(LABEL_TABLE),
    ]
    return Nomogram(settings, rows, counts, warnings, basis)


def _stack(parts: list[pkpd.Individuals]) -> pkpd.Individuals:
    keys = ("ka", "cl_x", "v_x", "cl_e", "cl_c", "r", "v_c", "kd0", "ige0_ng_ml")
    first = parts[0]
    return pkpd.Individuals(
        alpha=first.alpha,
        mw_x=first.mw_x,
        mw_e=first.mw_e,
        **{k: np.concatenate([getattr(p, k) for p in parts]) for k in keys},
    )
