"""Speed path of the population simulation: chunking, threads, pooled refinement, online summaries.

Every patient's arithmetic is elementwise, so chunk size and thread count must not change any result; the
refined (sub-stepped) patients of all chunks are pooled and written back, which must put each patient's
state back in its own place; the online summaries must equal those computed from full trajectories.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from immunoplan.clinical.omalizumab import pkpd
from immunoplan.clinical.omalizumab import population as pop

TIGHT = {"rtol": 1e-12, "atol": 0.0}


def _mixed_patients() -> pkpd.Individuals:
    """Ten patients from low to hyper-IgE with IIV, so that a few in several chunks need refinement."""
    rng = np.random.default_rng(11)
    eta = rng.multivariate_normal(np.zeros(8), pkpd.omega_matrix("lowe2009"), size=10)
    ige = np.array([30, 48_000, 150, 700, 5_000, 90, 20_000, 300, 1_500, 60.0])
    wt = np.array([45, 70, 120, 80, 60, 95, 70, 50, 110, 75.0])
    return pkpd.individuals("lowe2009", wt, ige, eta)


# first dose, a regular dose, then a dose after a long gap (refinement again for the high-IgE patients)
EVENTS = [pkpd.DoseEvent(0, 300), pkpd.DoseEvent(14, 300), pkpd.DoseEvent(56, 450)]


@pytest.mark.parametrize(("chunk_size", "threads"), [(3, 1), (4, 2), (1, 2), (7, 3)])
def test_chunks_and_threads_give_the_unchunked_result(chunk_size: int, threads: int) -> None:
    ind = _mixed_patients()
    _, rec_one, one = pkpd.integrate(ind, EVENTS, 70, record_every_steps=7, chunk_size=ind.n)
    _, rec, many = pkpd.integrate(
        ind, EVENTS, 70, record_every_steps=7, chunk_size=chunk_size, threads=threads
    )
    for f in ("depot_mg", "xt", "et"):
        np.testing.assert_allclose(getattr(many, f), getattr(one, f), **TIGHT)
    for a, b in zip(rec, rec_one, strict=True):
        for key in a:
            np.testing.assert_allclose(a[key], b[key], **TIGHT)


def test_pooled_refinement_returns_each_patient_to_its_place() -> None:
    """Each patient simulated alone equals the same patient inside a chunked, threaded population."""
    ind = _mixed_patients()
    _, _, together = pkpd.integrate(ind, EVENTS, 70, chunk_size=3, threads=2)
    for i in range(ind.n):
        _, _, alone = pkpd.integrate(ind.take(slice(i, i + 1)), EVENTS, 70)
        np.testing.assert_allclose(together.xt[i], alone.xt[0], **TIGHT)
        np.testing.assert_allclose(together.et[i], alone.et[0], **TIGHT)


def test_same_seed_same_percentiles_whatever_the_chunking_and_threads() -> None:
    ind = pop.sample_population("lowe2009", pop.Covariates((40.0, 120.0), (30.0, 1500.0)), 1500, seed=9)
    events = pkpd.regular_regimen(300, 4, 8)
    runs = [
        pop.simulate_population(
            ind, events, 56, model="lowe2009", seed=9, interval_days=28, threads=t, chunk_size=c
        )
        for t, c in ((1, None), (2, None), (1, 1500), (2, 97), (3, 256))
    ]
    ref = runs[0]
    for r in runs[1:]:
        np.testing.assert_array_equal(r.times_days, ref.times_days)
        for k in ref.series:
            np.testing.assert_allclose(r.series[k], ref.series[k], **TIGHT)
        for k in ref.per_patient:
            np.testing.assert_allclose(r.per_patient[k], ref.per_patient[k], **TIGHT)


def test_online_summaries_equal_those_from_full_trajectories() -> None:
    ind = _mixed_patients()
    events = pkpd.regular_regimen(375, 2, 6)
    res = pop.simulate_population(
        ind, events, 42, model="lowe2009", interval_days=14, record_every_days=1, threads=2, chunk_size=4
    )
    _, rec, _ = pkpd.integrate(ind, events, 42, record_every_steps=1)
    free = np.array([r["free_ige_ng_ml"] for r in rec])  # (days + 1, patients)
    np.testing.assert_allclose(res.per_patient["nadir_free_ige_ng_ml"], free[1:].min(axis=0), **TIGHT)
    np.testing.assert_allclose(res.per_patient["trough_free_ige_ng_ml"], free[42], **TIGHT)
    np.testing.assert_allclose(res.per_patient["mid_interval_free_ige_ng_ml"], free[35], **TIGHT)
    for target in res.targets_ng_ml:
        np.testing.assert_array_equal(
            res.per_patient[f"days_below_{target:g}_ng_ml"], (free[1:] < target).sum(axis=0)
        )
    expected = np.percentile(free.astype(np.float32).astype(np.float64), pop.PERCENTILES, axis=1).T
    np.testing.assert_allclose(res.series["free_ige_ng_ml"], expected, rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(values=st.lists(st.floats(1e-3, 1e6), min_size=2, max_size=300))
def test_sorted_percentiles_equal_numpy_percentile(values: list[float]) -> None:
    v = np.array(values)
    obs = {k: v for k in pop.OBSERVABLES}
    got = pop._percentiles(obs)["free_ige_ng_ml"]
    want = np.percentile(v.astype(np.float32).astype(np.float64), pop.PERCENTILES)
    np.testing.assert_allclose(got, want, rtol=1e-12)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 300_000), threads=st.integers(1, 4))
def test_balanced_chunks_cover_everyone_evenly(n: int, threads: int) -> None:
    size = pkpd.balanced_chunk_size(n, threads)
    n_chunks = -(-n // size)
    assert 1 <= size <= pkpd.CHUNK_SIZE
    assert n_chunks * size >= n
    last = n - (n_chunks - 1) * size
    assert last > 0 and size - last < n_chunks  # chunks differ by at most one patient each on average
