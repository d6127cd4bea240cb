"""Simulate a regimen for one typical patient or a virtual population and summarise it (pure core).

Model output, not a dosing recommendation: the result carries the model citation, the parameter file's
`Basis`, and warnings when covariates leave the range the model was fitted on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from immunoplan import reference
from immunoplan.clinical.omalizumab import pkpd
from immunoplan.clinical.omalizumab.population import (
    PERCENTILES,
    Covariates,
    PopulationResult,
    sample_population,
    simulate_population,
)
from immunoplan.errors import InvalidInput
from immunoplan.reference import Basis, limits
from immunoplan.validation import check_choice, check_range, to_decimal

MAX_PATIENTS = 200_000
MAX_WEEKS = 520


@dataclass
class SimulationResult:
    model: str
    citation: str
    n_patients: int
    seed: int | None
    inputs: dict[str, Any]
    times_days: list[float]
    series: dict[str, Any]
    summary: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    basis: Basis | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "citation": self.citation,
            "n_patients": self.n_patients,
            "seed": self.seed,
            "inputs": self.inputs,
            "times_days": self.times_days,
            **self.series,
            "summary": self.summary,
            "warnings": self.warnings,
            "basis": self.basis.to_dict() if self.basis else None,
        }


def _round(a: np.ndarray, digits: int = 4) -> list[Any]:
    return [float(f"{x:.{digits}g}") for x in np.asarray(a, dtype=float).ravel()]


def _pct(a: np.ndarray) -> dict[str, list[float]]:
    a = np.asarray(a)
    return {f"p{p}": _round(a[:, i]) for i, p in enumerate(PERCENTILES)}


def _covariate(name: str, value: Any, rng: Any) -> float | tuple[float, float]:
    """A covariate (or a LOW:HIGH range of it) checked against the field limit ``name``."""
    lim = limits.limit(name)
    if rng is not None:
        lo, hi = (float(lim.check(v)) for v in rng)
        if lo > hi:
            lo, hi = hi, lo
        return (lo, hi)
    return float(lim.check(value))


def simulate(
    *,
    weight_kg: Any,
    total_ige_iu_ml: Any,
    events: Sequence[pkpd.DoseEvent],
    weeks: Any,
    model: str = pkpd.DEFAULT_MODEL,
    interval_weeks: Any = None,
    population: int | None = None,
    seed: int | None = None,
    weight_range_kg: Sequence[Any] | None = None,
    ige_range_iu_ml: Sequence[Any] | None = None,
    record_every_days: Any = None,
    progress: Callable[[float], None] | None = None,
    threads: int | None = None,
    inputs: dict[str, Any] | None = None,
) -> SimulationResult:
    """Run the model. Without ``population``: one typical patient (no inter-individual variability).

    ``threads`` (default: the usable CPUs, `population.default_threads`) changes the speed, not the result.
    """
    model = check_choice("model", model, pkpd.MODELS)
    weeks_d = check_range(
        "weeks", to_decimal("weeks", weeks), 0, MAX_WEEKS, low_inclusive=False, unit="weeks"
    )
    days = weeks_d * 7
    if days != days.to_integral_value():
        raise InvalidInput("weeks", "must be a whole number of days (weeks x 7)")
    wt = _covariate("weight_kg", weight_kg, weight_range_kg)
    ige = _covariate("total_ige_iu_ml", total_ige_iu_ml, ige_range_iu_ml)
    interval_days = (
        None
        if interval_weeks is None
        else limits.check("omalizumab_interval_weeks", interval_weeks, "interval_weeks") * 7
    )
    spec = pkpd.model_spec(model)
    if population is None:
        if isinstance(wt, tuple) or isinstance(ige, tuple):
            raise InvalidInput("population", "covariate ranges need a population size")
        ind = pkpd.individuals(model, wt, ige)
    else:
        n = int(check_range("population", population, 1, MAX_PATIENTS, unit="patients"))
        seed = 0 if seed is None else int(check_range("seed", seed, 0, 2**63 - 1))
        ind = sample_population(model, Covariates(wt, ige), n, seed)
    res = simulate_population(
        ind,
        events,
        days,
        model=model,
        seed=seed,
        interval_days=interval_days,
        record_every_days=record_every_days,
        progress=progress,
        threads=threads,
    )
    return _assemble(res, spec, model, wt, ige, population is not None, inputs or {})


def _assemble(
    res: PopulationResult,
    spec: dict[str, Any],
    model: str,
    wt: Any,
    ige: Any,
    is_pop: bool,
    inputs: dict[str, Any],
) -> SimulationResult:
    ng_per_iu = pkpd.ige_ng_per_iu()
    s = res.series
    series: dict[str, Any]
    if is_pop:
        series = {
            "free_ige_ng_ml": _pct(s["free_ige_ng_ml"]),
            "free_ige_iu_ml": _pct(s["free_ige_ng_ml"] / ng_per_iu),
            "total_omalizumab_ug_ml": _pct(s["total_omalizumab_ug_ml"]),
            "total_ige_ng_ml": _pct(s["total_ige_ng_ml"]),
        }
    else:
        series = {
            "free_ige_ng_ml": _round(s["free_ige_ng_ml"]),
            "free_ige_iu_ml": _round(s["free_ige_ng_ml"] / ng_per_iu),
            "total_omalizumab_ug_ml": _round(s["total_omalizumab_ug_ml"]),
            "total_ige_ng_ml": _round(s["total_ige_ng_ml"]),
        }
    summary: dict[str, Any] = {}
    for k, v in res.per_patient.items():
        if is_pop:
            finite = v[np.isfinite(v)]
            summary[k] = (
                {
                    f"p{p}": float(f"{x:.4g}")
                    for p, x in zip(PERCENTILES, np.percentile(finite, PERCENTILES), strict=True)
                }
                if finite.size
                else None
            )
        else:
            summary[k] = float(f"{v[0]:.4g}") if np.isfinite(v[0]) else None
    if is_pop:
        for t in res.targets_ng_ml:
            for what in ("mid_interval", "trough"):
                v = res.per_patient[f"{what}_free_ige_ng_ml"]
                summary[f"fraction_{what}_below_{t:g}_ng_ml"] = (
                    float(f"{np.mean(v < t):.4g}") if np.all(np.isfinite(v)) else None
                )
    summary["targets_ng_ml"] = res.targets_ng_ml
    warnings = ["PK/PD model output for planning and teaching, not a dosing recommendation."]
    fr = spec["fitted_ranges"]
    for name, val, (lo, hi) in (
        ("weight", wt, fr["weight_kg"]),
        ("baseline IgE", ige, fr["total_ige_iu_ml"]),
    ):
        vals = val if isinstance(val, tuple) else (val,)
        if any(v < lo or v > hi for v in vals):
            warnings.append(
                f"{name} outside the range the {model} model was fitted on ({lo}-{hi}): extrapolation"
            )
    return SimulationResult(
        model=model,
        citation=spec["citation"],
        n_patients=res.n_patients,
        seed=res.seed,
        inputs=inputs,
        times_days=_round(res.times_days, 6),
        series=series,
        summary=summary,
        warnings=warnings,
        basis=reference.basis("omalizumab_pkpd_models", rule=model, status=spec["status"]),
    )


def regular_events(dose_mg: Any, interval_weeks: Any, weeks: Any) -> list[pkpd.DoseEvent]:
    """Validated regular regimen: ``dose_mg`` every ``interval_weeks`` from day 0 during ``weeks``."""
    dose = limits.check("omalizumab_dose_mg", dose_mg, "dose_mg")
    iw = limits.check("omalizumab_interval_weeks", interval_weeks, "interval_weeks")
    if (iw * 7) != (iw * 7).to_integral_value():
        raise InvalidInput("interval_weeks", "must be a whole number of days (weeks x 7)")
    return pkpd.regular_regimen(float(dose), iw, Decimal(weeks))
