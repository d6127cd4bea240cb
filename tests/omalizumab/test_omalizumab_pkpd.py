"""PK/PD model: published half-lives and check values (Lowe 2009, Hayashi 2007; the team's research note
omalizumab_pkpd.md sections 3 and 6), mass balance, dose linearity, agreement with scipy LSODA to 1 %."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from immunoplan.clinical.omalizumab import pkpd
from immunoplan.clinical.omalizumab.reference_solver import solve_one

REF = {
    "lowe2009": (70.0, 365 / 2.42),
    "hayashi2007": (61.1, 482.4 / 2.42),
}  # reference covariates (kg, IU/mL)


def test_lowe_half_lives_match_published() -> None:
    hl = pkpd.half_lives_days(pkpd.individuals("lowe2009", 70, 150))
    assert hl["free_omalizumab"][0] == pytest.approx(31, abs=0.15)  # paper p.73: 31 d (31.1 computed)
    assert hl["complex"][0] == pytest.approx(5.3, abs=0.05)  # 5.26
    assert hl["free_ige"][0] == pytest.approx(1.7, abs=0.05)  # 1.68


def test_hayashi_half_lives_match_published() -> None:
    hl = pkpd.half_lives_days(pkpd.individuals("hayashi2007", 61.1, 482.4 / 2.42))
    assert hl["free_omalizumab"][0] == pytest.approx(23, abs=0.35)  # abstract: 23 d (23.3 computed)
    assert hl["free_ige"][0] == pytest.approx(2.4, abs=0.05)  # abstract: 2.4 d


@pytest.mark.parametrize(("model", "expected"), [("lowe2009", 1220 / 3.85), ("hayashi2007", 30.3 / 0.071)])
def test_drug_free_steady_state_is_production_over_clearance(model: str, expected: float) -> None:
    """omalizumab_pkpd.md section 6: 316.9 ng/mL (Lowe), 426.8 ng/mL (Hayashi) at reference covariates."""
    wt, ige = REF[model]
    ind = pkpd.individuals(model, wt, ige)
    _, rec, _ = pkpd.integrate(ind, [], 200, record_every_steps=200)
    assert rec[-1]["free_ige_ng_ml"][0] == pytest.approx(expected, rel=2e-3)
    assert rec[0]["free_ige_ng_ml"][0] == pytest.approx(365 if model == "lowe2009" else 482.4, rel=1e-9)


def test_lowe_single_dose_check_values() -> None:
    """Lowe 2009 p.65: after one SC dose total omalizumab > 10 000 ng/mL, free IgE suppressed to ~10 ng/mL."""
    ind = pkpd.individuals("lowe2009", *REF["lowe2009"])
    _, rec, _ = pkpd.integrate(ind, [pkpd.DoseEvent(0, 300)], 28, record_every_steps=1)
    total_x = max(r["total_omalizumab_ug_ml"][0] for r in rec)
    nadir = min(r["free_ige_ng_ml"][0] for r in rec)
    assert total_x * 1000 > 10_000
    assert 5 < nadir < 20
    total_ige = [r["total_ige_ng_ml"][0] for r in rec]
    assert max(total_ige) > 2 * total_ige[0]  # total IgE rises: the complex outlives free IgE (p.65)


@pytest.mark.parametrize("model", pkpd.MODELS)
def test_mass_balance(model: str) -> None:
    wt, ige = REF[model]
    ind = pkpd.individuals(model, wt, ige)
    events = [pkpd.DoseEvent(0, 375), pkpd.DoseEvent(14, 375)]
    rates: list[tuple[float, float, float]] = []

    def track(t: float, states: list[pkpd.State], inds: list[pkpd.Individuals]) -> None:
        s, c = states[0], inds[0]
        x, e, cx = pkpd.binding(s.xt, s.et, c)
        rates.append(
            (
                t,
                float(c.cl_x[0] * x[0] / c.v_x[0] + c.cl_c[0] * cx[0] / c.v_c[0]),
                float(c.cl_e[0] * e[0] / c.v_e[0] + c.cl_c[0] * cx[0] / c.v_c[0]),
            )
        )

    s0 = pkpd.initial_state(ind)
    x0, e0, c0 = pkpd.binding(s0.xt, s0.et, ind)
    rates.append((0.0, 0.0, float(ind.cl_e[0] * e0[0] / ind.v_e[0])))
    _, _, final = pkpd.integrate(ind, events, 42, steps_per_day=16, on_step=track)
    t, elim_x, elim_e = (np.array(v) for v in zip(*sorted(rates), strict=True))
    dosed_nmol = 750 * 1000 / ind.mw_x
    in_body = final.depot_mg[0] * 1000 / ind.mw_x + final.xt[0]
    assert in_body + np.trapezoid(elim_x, t) == pytest.approx(dosed_nmol, rel=2e-3)
    produced = float(ind.r[0]) * 42
    assert final.et[0] - s0.et[0] == pytest.approx(produced - np.trapezoid(elim_e, t), rel=2e-3, abs=1e-3)


def test_dose_linearity_at_high_doses() -> None:
    """Label: PK linear at doses above 0.5 mg/kg. Dose-normalised peak total omalizumab is constant; the
    dose-normalised AUC rises at low doses (complex is cleared faster than free drug) and levels off once the
    drug is in large molar excess over IgE."""
    ind = pkpd.individuals("lowe2009", 70, 150)
    cmax, auc = {}, {}
    for dose in (150, 300, 600, 1200, 2400, 4800):
        _, rec, _ = pkpd.integrate(ind, [pkpd.DoseEvent(0, dose)], 112, record_every_steps=1)
        conc = [r["total_omalizumab_ug_ml"][0] for r in rec]
        cmax[dose], auc[dose] = max(conc) / dose, np.trapezoid(conc) / dose
    assert max(cmax.values()) / min(cmax.values()) == pytest.approx(1.0, abs=0.01)
    assert auc[4800] / auc[2400] == pytest.approx(1.0, abs=0.02)
    assert auc[300] / auc[150] > auc[4800] / auc[2400]  # non-linearity shrinks as dose grows


def _lsoda_cases() -> list[tuple[str, pkpd.Individuals]]:
    out = []
    rng = np.random.default_rng(20261121)
    for model in pkpd.MODELS:
        om = pkpd.omega_matrix(model)
        eta = rng.multivariate_normal(np.zeros(8), om, size=5)
        eta[0] = 0.0
        out.append(
            (
                model,
                pkpd.individuals(
                    model, np.array([70, 45, 120, 70, 90.0]), np.array([151, 30, 700, 1500, 300.0]), eta
                ),
            )
        )
    return out


@pytest.mark.parametrize(("model", "ind"), _lsoda_cases(), ids=list(pkpd.MODELS))
@pytest.mark.parametrize(("dose", "interval"), [(300, 4), (375, 2)])
def test_agrees_with_scipy_lsoda_to_one_percent(
    model: str, ind: pkpd.Individuals, dose: int, interval: int
) -> None:
    events = pkpd.regular_regimen(dose, interval, 12)
    t_eval = np.arange(0, 85, 1.0)
    _, rec, _ = pkpd.integrate(ind, events, 84, record_every_steps=1)
    for i in range(ind.n):
        ref = solve_one(ind, i, events, t_eval)
        for key in ("free_ige_ng_ml", "total_ige_ng_ml", "total_omalizumab_ug_ml"):
            mine = np.array([r[key][i] for r in rec])
            np.testing.assert_allclose(
                mine[1:], ref[key][1:], rtol=0.01, err_msg=f"{model} patient {i} {key}"
            )


def test_hyper_ige_is_stable_and_agrees_with_lsoda() -> None:
    """Seed 003: atopic dermatitis with IgE ~48,000 IU/mL on 450 mg every 2 weeks."""
    ind = pkpd.individuals("lowe2009", 70, 48_000)
    events = pkpd.regular_regimen(450, 2, 8)
    _, rec, _ = pkpd.integrate(ind, events, 56, record_every_steps=1)
    ref = solve_one(ind, 0, events, np.arange(0, 57, 1.0))
    mine = np.array([r["free_ige_ng_ml"][0] for r in rec])
    np.testing.assert_allclose(mine[1:], ref["free_ige_ng_ml"][1:], rtol=0.01)
    assert mine.min() > 50  # above even the loosest free-IgE target (50 ng/mL)


@settings(max_examples=15, deadline=None)
@given(dose=st.sampled_from([75, 150, 300, 450]), wt=st.floats(30, 150), ige=st.floats(30, 1500))
def test_more_drug_means_less_free_ige(dose: int, wt: float, ige: float) -> None:
    ind = pkpd.individuals("lowe2009", np.array([wt, wt]), np.array([ige, ige]))
    events = [pkpd.DoseEvent(0, np.array([dose, dose + 75.0]))]
    _, rec, final = pkpd.integrate(ind, events, 14, record_every_steps=14)
    free = rec[-1]["free_ige_ng_ml"]
    assert free[1] < free[0]
    assert np.all(final.xt >= 0) and np.all(final.et > 0)


def test_off_grid_dose_is_invalid() -> None:
    from immunoplan.errors import InvalidInput

    with pytest.raises(InvalidInput):
        pkpd.integrate(pkpd.individuals("lowe2009", 70, 150), [pkpd.DoseEvent("0.5", 300)], 7)
