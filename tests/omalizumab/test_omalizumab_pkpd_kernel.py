"""The compiled kernel (`pkpd.kernel`) against the numpy reference implementation (`pkpd.integrate` with
``precision="float64"``): the same numerics, so they agree to rounding (measured ~3e-13; required 1e-9) on the
covariate-tail sample and on a random population, with the same re-stepping decisions; results are bitwise
identical for any thread count and segment size; the summaries equal those from full trajectories.

The kernel is compiled (or loaded from numba's cache) once per process (`kernel.warm_up`, session fixture).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from immunoplan.clinical.omalizumab import pkpd
from immunoplan.clinical.omalizumab import population as pop
from immunoplan.clinical.omalizumab.pkpd import kernel
from immunoplan.clinical.omalizumab.pkpd.reference import tail_events, tail_sample

KEYS = ("free_ige_ng_ml", "total_ige_ng_ml", "total_omalizumab_ug_ml")
REL = 1e-9


@pytest.fixture(scope="module", autouse=True)
def _compiled() -> None:
    kernel.warm_up()


def _max_rel(a: list[dict[str, np.ndarray]], b: list[dict[str, np.ndarray]]) -> float:
    worst = 0.0
    for x, y in zip(a[1:], b[1:], strict=True):  # t = 0: total omalizumab is 0 / 0
        for k in KEYS:
            worst = max(worst, float(np.max(np.abs(x[k] / y[k] - 1.0))))
    return worst


@pytest.mark.parametrize("model", pkpd.MODELS)
def test_kernel_equals_numpy_float64_on_the_covariate_tails(model: str) -> None:
    ind, dose = tail_sample(model)
    ev = tail_events(dose)
    s_np, s_k = pkpd.SolverStats(), pkpd.SolverStats()
    _, ref, fin_ref = pkpd.integrate(ind, ev, 56, record_every_steps=1, precision="float64", stats=s_np)
    _, got, fin = kernel.integrate(ind, ev, 56, record_every_steps=1, stats=s_k)
    assert len(got) == len(ref) == 57
    assert _max_rel(got, ref) <= REL
    np.testing.assert_allclose(fin.xt, fin_ref.xt, rtol=REL)
    assert s_k.refined == s_np.refined  # the same patients re-stepped with the same sub-steps
    assert s_k.unconverged == s_np.unconverged == 0
    assert math.isclose(s_k.max_error, s_np.max_error, rel_tol=1e-6)


def test_kernel_equals_numpy_float64_on_a_random_population() -> None:
    ind = pop.sample_population("lowe2009", pop.Covariates((40.0, 150.0), (30.0, 1500.0)), 300, seed=5)
    ev = pkpd.regular_regimen(300, 2, 12)
    _, ref, _ = pkpd.integrate(ind, ev, 84, record_every_steps=3, precision="float64")
    _, got, _ = kernel.integrate(ind, ev, 84, record_every_steps=3)
    assert _max_rel(got, ref) <= REL


def test_kernel_within_float32_noise_of_the_numpy_default() -> None:
    ind, dose = tail_sample("lowe2009")
    ev = tail_events(dose)
    _, ref, _ = pkpd.integrate(ind, ev, 56, record_every_steps=1)
    _, got, _ = kernel.integrate(ind, ev, 56, record_every_steps=1)
    assert _max_rel(got, ref) < 1e-3


def test_bitwise_identical_whatever_the_threads_and_segments() -> None:
    ind = pop.sample_population("lowe2009", pop.Covariates((40.0, 120.0), (30.0, 700.0)), 203, seed=3)
    ev = pkpd.regular_regimen(300, 4, 8)
    runs = [
        kernel.simulate(ind, ev, 56, record_every_steps=2, threads=t, segment_records=s, targets=(50.0, 14.0))
        for t, s in ((1, 8), (2, 8), (2, 1), (1, 100))
    ]
    for r in runs[1:]:
        for f in ("depot_mg", "xt", "et"):
            np.testing.assert_array_equal(getattr(r.final, f), getattr(runs[0].final, f))
        np.testing.assert_array_equal(r.nadir, runs[0].nadir)
        np.testing.assert_array_equal(r.below_steps, runs[0].below_steps)
    # a patient alone equals the same patient inside the population (blocks and padding lanes)
    for i in (0, 17, 202):
        alone = kernel.simulate(ind.take(slice(i, i + 1)), ev, 56)
        assert alone.final.xt[0] == runs[0].final.xt[i]
        assert alone.final.et[0] == runs[0].final.et[i]


def test_population_summaries_equal_those_from_full_trajectories() -> None:
    ind = pop.sample_population("lowe2009", pop.Covariates((40.0, 120.0), (30.0, 1500.0)), 40, seed=1)
    events = pkpd.regular_regimen(375, 2, 6)
    res = pop.simulate_population(ind, events, 42, model="lowe2009", interval_days=14, record_every_days=1)
    _, rec, _ = kernel.integrate(ind, events, 42, record_every_steps=1)
    free = np.array([r["free_ige_ng_ml"] for r in rec])
    np.testing.assert_allclose(res.per_patient["nadir_free_ige_ng_ml"], free[1:].min(axis=0), rtol=1e-14)
    np.testing.assert_allclose(res.per_patient["trough_free_ige_ng_ml"], free[42], rtol=1e-14)
    np.testing.assert_allclose(res.per_patient["mid_interval_free_ige_ng_ml"], free[35], rtol=1e-14)
    expected = np.percentile(free.astype(np.float32).astype(np.float64), pop.PERCENTILES, axis=1).T
    np.testing.assert_allclose(res.series["free_ige_ng_ml"], expected, rtol=1e-12)
    assert res.times_days.tolist() == list(range(43))
    numpy_res = pop.simulate_population(
        ind, events, 42, model="lowe2009", interval_days=14, record_every_days=1, engine="numpy"
    )
    for k in res.per_patient:
        np.testing.assert_allclose(res.per_patient[k], numpy_res.per_patient[k], rtol=1e-3)


def test_custom_exp_and_log_within_a_few_ulp() -> None:
    from numba import njit

    @njit
    def both(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, b = np.empty_like(x), np.empty_like(y)
        for i in range(x.size):
            a[i] = kernel._exp(x[i])
            b[i] = kernel._log(y[i])
        return a, b

    rng = np.random.default_rng(0)
    x = rng.uniform(-700, 700, 20000)
    y = np.exp(rng.uniform(-69, 60, 20000))
    a, b = both(x, y)
    assert np.max(np.abs(a / np.exp(x) - 1.0)) <= 4.5e-16
    assert np.max(np.abs(b - np.log(y)) / np.spacing(np.abs(np.log(y)))) <= 4


def test_engine_must_be_known() -> None:
    from immunoplan.errors import InvalidInput

    ind = pkpd.individuals("lowe2009", 70, 150)
    with pytest.raises(InvalidInput):
        pop.simulate_population(ind, [], 7, model="lowe2009", engine="jax")
    with pytest.raises(InvalidInput):
        pkpd.integrate(ind, [], 7, precision="float16")
