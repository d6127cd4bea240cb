"""Omalizumab population PK/PD: 10^4 and 10^5 virtual patients x 52 weeks (Lowe 2009, 300 mg every 4 weeks).

Two rows per case:
- kernel: `pkpd.integrate` against the peer a competent user would write instead, one vectorised scipy
  ``solve_ivp`` (RK45 at scipy's default rtol 1e-3 / atol 1e-6, which is about the accuracy we state, with
  the depot in closed form: as a state, fast absorbers force RK45 to ~0.03-day steps) over all patients at
  once, run in the same process. Beside the speed: the worst relative error of free IgE, total IgE and total
  omalizumab against a tight reference (DOP853, rtol 1e-11) for ours (every day, ACCURACY_PATIENTS of the
  population; results do not depend on the rest of it) and for the peer (same patients, on PEER_DAYS of its
  full run), and ours on the covariate-tail sample of the tests (`pkpd.reference.tail_sample`).
- end to end: `simulate_population` (percentiles, per-patient summaries) against a per-patient LSODA loop
  (rtol 1e-6) on 20 patients, extrapolated.
Peak RSS is the process maximum; the 1-minute load average is printed because the machine is shared.
``PKPD_BENCH_PEER_MAX`` (default 100000) caps the population size the peer is run at.
"""

from __future__ import annotations

import os
import resource
import time

import numpy as np

from immunoplan.clinical.omalizumab import pkpd
from immunoplan.clinical.omalizumab.pkpd.reference import solve_population, tail_events, tail_sample
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
ACCURACY_PATIENTS = 100
PEER_DAYS = (1.0, 2.0, 3.0, 7.0, 28.0, 29.0, 30.0, 31.0, 182.0, 364.0)
COVARIATES = Covariates((40.0, 120.0), (30.0, 700.0))
KEYS = ("free_ige_ng_ml", "total_ige_ng_ml", "total_omalizumab_ug_ml")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _lsoda_seconds_per_patient(ind: pkpd.Individuals, events: list[pkpd.DoseEvent]) -> float:
    t_eval = np.arange(0, DAYS + 1, 1.0)
    t0 = time.perf_counter()
    for i in range(BASELINE_SUBSAMPLE):
        solve_one(ind, i, events, t_eval, rtol=1e-6, atol=1e-9)
    return (time.perf_counter() - t0) / BASELINE_SUBSAMPLE


def _worst(mine: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> float:
    return max(float(np.max(np.abs(mine[k] / ref[k] - 1.0))) for k in KEYS)


def _tails_worst() -> float:
    worst = 0.0
    for model in pkpd.MODELS:
        ind, dose = tail_sample(model)
        ev = tail_events(dose)
        _, ref, _ = solve_population(ind, ev, 56, record_days=np.arange(1, 57.0))
        _, rec, _ = pkpd.integrate(ind, ev, 56, record_every_steps=1)
        worst = max(worst, _worst({k: np.array([r[k] for r in rec])[1:] for k in KEYS}, ref))
    return worst


def run(report) -> None:  # noqa: ANN001 - benchmarks.__main__.Report
    events = pkpd.regular_regimen(300, 4, WEEKS)
    peer_max = int(os.environ.get("PKPD_BENCH_PEER_MAX", "100000"))
    cpus = default_threads()
    tails = _tails_worst()
    # the first sampling block (population.BLOCK patients) is the same for every n >= BLOCK, so the first
    # ACCURACY_PATIENTS patients are the same in every case
    ref_ind = sample_population("lowe2009", COVARIATES, 10_000, seed=2026).take(slice(0, ACCURACY_PATIENTS))
    days = np.arange(1, DAYS + 1.0)
    _, ref, _ = solve_population(ref_ind, events, DAYS, record_days=days)
    _, rec, _ = pkpd.integrate(ref_ind, events, DAYS, record_every_steps=1)
    ours = _worst({k: np.array([r[k] for r in rec])[1:] for k in KEYS}, ref)
    at_peer_days = np.searchsorted(days, PEER_DAYS)
    ref_peer_days = {k: v[at_peer_days] for k, v in ref.items()}
    per_patient = None
    peers: dict[int, tuple[float | None, str]] = {}
    cases = [(10_000, default_threads(10_000))] + [(100_000, t) for t in sorted({1, cpus})]
    for n, threads in cases:
        ind = sample_population("lowe2009", COVARIATES, n, seed=2026)
        np.testing.assert_array_equal(ind.ka[:ACCURACY_PATIENTS], ref_ind.ka)
        if per_patient is None:
            per_patient = _lsoda_seconds_per_patient(ind, events)
        load = os.getloadavg()[0]
        st = pkpd.SolverStats()
        t0, c0 = time.perf_counter(), time.process_time()
        pkpd.integrate(ind, events, DAYS, threads=threads, stats=st)
        kernel, kernel_cpu = time.perf_counter() - t0, time.process_time() - c0
        peer_s, peer_note = peers.get(n, (None, "peer not run (PKPD_BENCH_PEER_MAX)"))
        if n <= peer_max and n not in peers:
            t0 = time.perf_counter()
            _, peer_obs, _ = solve_population(
                ind,
                events,
                DAYS,
                record_days=PEER_DAYS,
                method="RK45",
                rtol=1e-3,
                atol=1e-6,
                exact_depot=True,
            )
            peer_s = time.perf_counter() - t0
            peer_err = _worst({k: v[:, :ACCURACY_PATIENTS] for k, v in peer_obs.items()}, ref_peer_days)
            peer_note = f"peer RK45 {peer_s:.1f} s, worst {peer_err:.1e} (on {len(PEER_DAYS)} days)"
            peers[n] = (peer_s, peer_note)
        report.add(
            "pkpd",
            f"kernel {n:,} x {WEEKS} wk, {threads} thread(s)",
            kernel,
            baseline=peer_s,
            note=(
                f"worst rel. error vs DOP853 1e-11: ours {ours:.1e} (every day, {ACCURACY_PATIENTS} patients;"
                f" tails {tails:.1e}, tolerance {pkpd.DEFAULT_RTOL:g}); {peer_note}; cpu {kernel_cpu:.1f} s;"
                f" re-stepped {st.refined_fraction():.1%} of patient-steps; load {load:.1f}"
            ),
        )
        load = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        res = simulate_population(
            ind, events, DAYS, model="lowe2009", seed=2026, interval_days=28, threads=threads
        )
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        med = float(np.median(res.per_patient["mid_interval_free_ige_ng_ml"]))
        report.add(
            "pkpd",
            f"end to end {n:,} x {WEEKS} wk, {threads} thread(s)",
            seconds,
            baseline=per_patient * n,
            note=(
                f"cpu {cpu:.1f} s; LSODA {per_patient * 1000:.1f} ms/patient on {BASELINE_SUBSAMPLE}; "
                f"peak RSS {_peak_rss_mb():.0f} MB; load {load:.1f}; "
                f"median mid-interval free IgE {med:.1f} ng/mL"
            ),
        )
