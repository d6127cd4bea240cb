"""Omalizumab population PK/PD: 10^4 and 10^5 virtual patients x 52 weeks (Lowe 2009, 300 mg every 4 weeks).

Baseline: the same model solved patient by patient with scipy ``solve_ivp`` (LSODA, rtol 1e-6) on a subsample
in the same process, extrapolated to the full population. Peak RSS is the process maximum (ru_maxrss); the
1-minute load average is printed because the machine is shared and wall time depends on it.
"""

from __future__ import annotations

import os
import resource
import time

import numpy as np

from immunoplan.clinical.omalizumab import pkpd
from immunoplan.clinical.omalizumab.population import (
    Covariates,
    default_threads,
    sample_population,
    simulate_population,
)
from immunoplan.clinical.omalizumab.reference_solver import solve_one

WEEKS = 52
DAYS = WEEKS * 7
BASELINE_SUBSAMPLE = 20
COVARIATES = Covariates((40.0, 120.0), (30.0, 700.0))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _baseline_seconds_per_patient(ind: pkpd.Individuals, events: list[pkpd.DoseEvent]) -> float:
    t_eval = np.arange(0, DAYS + 1, 1.0)
    t0 = time.perf_counter()
    for i in range(BASELINE_SUBSAMPLE):
        solve_one(ind, i, events, t_eval, rtol=1e-6, atol=1e-9)
    return (time.perf_counter() - t0) / BASELINE_SUBSAMPLE


def run(report) -> None:  # noqa: ANN001 - benchmarks.__main__.Report
    events = pkpd.regular_regimen(300, 4, WEEKS)
    per_patient = None
    auto = default_threads()
    cases = [(10_000, auto), (100_000, 1)] + ([(100_000, auto)] if auto > 1 else [])
    for n, threads in cases:
        ind = sample_population("lowe2009", COVARIATES, n, seed=2026)
        if per_patient is None:
            per_patient = _baseline_seconds_per_patient(ind, events)
        load = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        res = simulate_population(
            ind, events, DAYS, model="lowe2009", seed=2026, interval_days=28, threads=threads
        )
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        med = float(np.median(res.per_patient["mid_interval_free_ige_ng_ml"]))
        report.add(
            "pkpd",
            f"{n:,} patients x {WEEKS} weeks, {threads} thread(s)",
            seconds,
            baseline=per_patient * n,
            note=(
                f"cpu {cpu:.1f} s; LSODA {per_patient * 1000:.1f} ms/patient on {BASELINE_SUBSAMPLE}; "
                f"peak RSS {_peak_rss_mb():.0f} MB; load {load:.1f}; "
                f"median mid-interval free IgE {med:.1f} ng/mL"
            ),
        )
