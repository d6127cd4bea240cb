"""Population simulation of the omalizumab-IgE binding model: percentiles over time and per-patient summaries.

Inter-individual variability: log-normal etas with the published omega matrix (reference data); covariates
given (one value for everyone) or sampled uniformly (weight) / log-uniformly (IgE) within a range chosen by
the user. Random streams are reproducible: ``numpy.random.SeedSequence(seed).spawn`` gives one generator per
block of BLOCK patients, so patient i always gets the same draw for a given seed, whatever else changes.
Only percentiles over time and per-patient summary numbers are kept, never all trajectories.

Summaries (free IgE, ng/mL): nadir; trough = value at the end of the last complete dosing interval (just
before the next dose); mid-interval value of that interval (Lowe 2009 target: 14 ng/mL at the midpoint of
4-week periods); days below each target (50/25/14 ng/mL, reference data), counted on the day grid.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from immunoplan import reference
from immunoplan.clinical.omalizumab import pkpd
from immunoplan.errors import InvalidInput
from immunoplan.validation import check_range

BLOCK = 4096
MAX_THREADS = 4
THREADS_MIN_PATIENTS = 50_000
PERCENTILES = (5, 50, 95)
OBSERVABLES = ("free_ige_ng_ml", "total_omalizumab_ug_ml", "total_ige_ng_ml")


def free_ige_targets_ng_ml() -> list[float]:
    """Published free-IgE targets (50, 25, 14 ng/mL; reference/data/omalizumab_regimens.json)."""
    return [
        float(t["value"]) for t in reference.load("omalizumab_regimens")["free_ige_targets_ng_ml"]["targets"]
    ]


Range = tuple[float, float]


@dataclass(frozen=True)
class Covariates:
    """Weight (kg) and baseline total IgE (IU/mL): a single value or a (low, high) range to sample from."""

    weight_kg: float | Range
    total_ige_iu_ml: float | Range

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        w = self.weight_kg
        g = self.total_ige_iu_ml
        wt = rng.uniform(w[0], w[1], n) if isinstance(w, tuple) else np.full(n, float(w))
        ige = (
            np.exp(rng.uniform(np.log(g[0]), np.log(g[1]), n))
            if isinstance(g, tuple)
            else np.full(n, float(g))
        )
        return wt, ige


def sample_population(
    model: str, covariates: Covariates, n: int, seed: int, *, iiv: bool = True
) -> pkpd.Individuals:
    """n virtual patients; block b of BLOCK patients uses generator SeedSequence(seed).spawn(...)[b]."""
    n_blocks = max(1, -(-n // BLOCK))
    children = np.random.SeedSequence(seed).spawn(n_blocks)
    om = pkpd.omega_matrix(model)
    active = np.flatnonzero(np.diag(om) > 0)
    chol = np.linalg.cholesky(om[np.ix_(active, active)])
    wts, iges, etas = [], [], []
    for b, child in enumerate(children):
        rng = np.random.default_rng(child)
        m = min(BLOCK, n - b * BLOCK)
        wt, ige = covariates.sample(rng, m)
        eta = np.zeros((m, len(pkpd.PARAM_NAMES)))
        z = rng.standard_normal((m, active.size))
        if iiv:
            eta[:, active] = z @ chol.T
        wts.append(wt)
        iges.append(ige)
        etas.append(eta)
    return pkpd.individuals(model, np.concatenate(wts), np.concatenate(iges), np.concatenate(etas))


def interval_marks(
    events: Sequence[pkpd.DoseEvent], days: Decimal, interval_days: Decimal | None
) -> tuple[list[Decimal], list[Decimal]]:
    """Trough days (ends of complete dosing intervals) and mid-interval days, on the day grid."""
    doses = sorted({Decimal(e.day) for e in events})
    ends = doses[1:]
    if doses and interval_days is not None and doses[-1] + interval_days <= days:
        ends.append(doses[-1] + interval_days)
    starts = doses[: len(ends)]
    mids = [
        ((a + b) / 2).to_integral_value(rounding="ROUND_FLOOR") for a, b in zip(starts, ends, strict=True)
    ]
    return ends, mids


@dataclass
class _Tracker:
    """Online per-patient summaries and percentiles over time (no trajectories kept).

    Updated chunk by chunk (``record_chunk``, on the integrator's worker threads: chunks write disjoint
    slices), then once per step (``finish``). Percentiles are computed on a background thread (numpy
    sorts release the GIL) while stepping goes on.
    """

    n: int
    targets: list[float]
    troughs: set[float]
    mids: set[float]
    record_every_days: float
    h: float
    pool: ThreadPoolExecutor
    nadir: np.ndarray = field(init=False)
    below_steps: np.ndarray = field(init=False)  # base steps ending below each target, per patient
    trough: np.ndarray = field(init=False)
    mid: np.ndarray = field(init=False)
    times: list[float] = field(default_factory=list)
    jobs: list[Future[dict[str, np.ndarray]]] = field(default_factory=list)
    obs: dict[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        self.nadir = np.full(self.n, np.inf)
        self.below_steps = np.zeros((len(self.targets), self.n), dtype=np.int32)
        self.trough = np.full(self.n, np.nan)
        self.mid = np.full(self.n, np.nan)
        self.obs = self._new_obs()  # t = 0 is always recorded

    def record(self, t: float, states: list[pkpd.State], inds: list[pkpd.Individuals]) -> None:
        """All chunks at time t (serially), then ``finish``."""
        a = 0
        for s, c in zip(states, inds, strict=True):
            self.record_chunk(t, a, s, c)
            a += c.n
        self.finish(t)

    def record_chunk(self, t: float, a: int, s: pkpd.State, ind: pkpd.Individuals) -> None:
        """Update the summaries of patients a .. a + ind.n from their state at time t."""
        b = a + ind.n
        if self.obs is not None and _on_grid(t, self.record_every_days):
            obs = pkpd.observables(s.xt, s.et, ind, s)
            for k in OBSERVABLES:
                self.obs[k][a:b] = obs[k]
            free = obs["free_ige_ng_ml"]
        else:
            free = s.free_ige_ng_ml(ind)
        if t > 0:
            nadir = self.nadir[a:b]
            np.minimum(nadir, free, out=nadir)
            for i, target in enumerate(self.targets):
                below = self.below_steps[i, a:b]
                np.add(below, free < target, out=below)
        key = round(t, 9)
        if key in self.troughs:
            self.trough[a:b] = free
        if key in self.mids:
            self.mid[a:b] = free

    def finish(self, t: float) -> None:
        """After every chunk has recorded time t: queue the percentiles of a recording time, and prepare
        the arrays the chunks fill at the next step if that is a recording time."""
        if self.obs is not None and _on_grid(t, self.record_every_days):
            self.times.append(t)
            self.jobs.append(self.pool.submit(_percentiles, self.obs))
        self.obs = self._new_obs() if _on_grid(t + self.h, self.record_every_days) else None

    def _new_obs(self) -> dict[str, np.ndarray]:
        return {k: np.empty(self.n) for k in OBSERVABLES}

    def series(self) -> dict[str, np.ndarray]:
        done = [j.result() for j in self.jobs]
        return {k: np.asarray([d[k] for d in done]) for k in OBSERVABLES}


def _percentiles(obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """5/50/95th percentiles (numpy's default linear interpolation) from one float32 sort per observable;
    a single patient's values are returned as they are. (numpy's SIMD sort of 10^5 float32 takes ~0.6 ms,
    less than ``np.partition`` with several kth; only the needed order statistics are cast back.)"""
    out = {}
    for k in OBSERVABLES:
        v = obs[k]
        if v.size == 1:
            out[k] = v.copy()
            continue
        srt = np.sort(v.astype(np.float32))
        pos = (v.size - 1) * np.asarray(PERCENTILES, dtype=float) / 100.0
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, v.size - 1)
        low, high = srt[lo].astype(np.float64), srt[hi].astype(np.float64)
        out[k] = low + (high - low) * (pos - lo)
    return out


def default_threads(n: int | None = None) -> int:
    """Worker threads for stepping chunks of ``n`` patients: the usable CPUs, at most MAX_THREADS (numpy
    releases the GIL), but one thread below THREADS_MIN_PATIENTS, where the per-step barrier and the small
    chunks cost more than the second core gives (measured on 2 cores: 10^4 patients x 52 weeks faster on one
    thread; docs/omalizumab.md, benchmark)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    if n is not None and n < THREADS_MIN_PATIENTS:
        return 1
    return max(1, min(MAX_THREADS, cpus))


def default_record_every_days(days: Decimal) -> int:
    """Daily points up to 16 weeks, then a coarser grid keeping about 112 points (percentiles cost a sort)."""
    return max(1, -(-int(days) // 112))


def _on_grid(t: float, every: float) -> bool:
    q = t / every
    return abs(q - round(q)) < 1e-9


@dataclass
class PopulationResult:
    model: str
    n_patients: int
    seed: int | None
    times_days: np.ndarray
    series: dict[str, np.ndarray]  # (T, 3) percentiles, or (T,) for one patient
    per_patient: dict[str, np.ndarray]
    targets_ng_ml: list[float]
    days: float


def simulate_population(
    ind: pkpd.Individuals,
    events: Sequence[pkpd.DoseEvent],
    days: Any,
    *,
    model: str,
    seed: int | None = None,
    interval_days: Any = None,
    record_every_days: Any = None,
    progress: Callable[[float], None] | None = None,
    threads: int | None = None,
    chunk_size: int | None = None,
) -> PopulationResult:
    """Simulate every patient in ``ind`` and keep percentiles over time plus per-patient summaries.

    ``threads`` (default: ``default_threads()``) and ``chunk_size`` change the speed, not the results.
    """
    threads = default_threads(ind.n) if threads is None else max(1, int(threads))
    if chunk_size is None:
        chunk_size = pkpd.balanced_chunk_size(ind.n, threads)
    days_d = Decimal(days)
    check_range("days", days_d, 1, 3650, unit="days")
    if record_every_days is None:  # daily for small runs; percentiles of big ones cost a sort each
        record_every_days = 1 if ind.n <= 1000 else default_record_every_days(days_d)
    every = float(check_range("record_every_days", Decimal(record_every_days), Decimal("0.125"), 365))
    if every * pkpd.DEFAULT_STEPS_PER_DAY != int(every * pkpd.DEFAULT_STEPS_PER_DAY):
        raise InvalidInput("record_every_days", "must be a whole number of base steps (1 day)")
    ends, mids = interval_marks(events, days_d, None if interval_days is None else Decimal(interval_days))
    h = 1.0 / pkpd.DEFAULT_STEPS_PER_DAY
    total = float(days_d)
    with ThreadPoolExecutor(1) as pool:
        tr = _Tracker(
            ind.n,
            free_ige_targets_ng_ml(),
            {round(float(x), 9) for x in ends},
            {round(float(x), 9) for x in mids},
            every,
            h,
            pool,
        )
        tr.record(0.0, [pkpd.initial_state(ind)], [ind])

        def on_chunk(t: float, i: int, state: pkpd.State, chunk: pkpd.Individuals) -> None:
            tr.record_chunk(t, i * chunk_size, state, chunk)

        def on_step(t: float, _states: list[pkpd.State], _inds: list[pkpd.Individuals]) -> None:
            tr.finish(t)
            if progress is not None:
                progress(t / total)

        pkpd.integrate(
            ind,
            events,
            days_d,
            on_chunk=on_chunk,
            on_step=on_step,
            threads=threads,
            chunk_size=chunk_size,
        )
        series = tr.series()
    per_patient = {
        "nadir_free_ige_ng_ml": tr.nadir,
        "trough_free_ige_ng_ml": tr.trough,
        "mid_interval_free_ige_ng_ml": tr.mid,
    }
    for i, target in enumerate(tr.targets):
        per_patient[f"days_below_{target:g}_ng_ml"] = tr.below_steps[i] * tr.h
    return PopulationResult(model, ind.n, seed, np.asarray(tr.times), series, per_patient, tr.targets, total)
