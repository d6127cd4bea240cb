"""Population simulation: reproducible SeedSequence streams, percentiles, summaries; CLI simulate."""

from __future__ import annotations

import numpy as np
import pytest

from immunoplan.clinical.omalizumab import pkpd
from immunoplan.clinical.omalizumab import population as pop
from immunoplan.services import omalizumab as svc


def test_same_seed_same_patients_and_blocks_do_not_depend_on_n() -> None:
    cov = pop.Covariates((40.0, 120.0), (30.0, 700.0))
    a = pop.sample_population("lowe2009", cov, 5000, seed=7)
    b = pop.sample_population("lowe2009", cov, 5000, seed=7)
    c = pop.sample_population("lowe2009", cov, 4096, seed=7)
    d = pop.sample_population("lowe2009", cov, 5000, seed=8)
    np.testing.assert_array_equal(a.cl_x, b.cl_x)
    np.testing.assert_array_equal(a.cl_x[:4096], c.cl_x)
    assert not np.array_equal(a.cl_x, d.cl_x)
    ige_iu = a.ige0_ng_ml / 2.42
    assert ige_iu.min() >= 30 - 1e-9 and ige_iu.max() <= 700 + 1e-9
    assert a.ige0_ng_ml.size >= 40 and np.ptp(np.log(ige_iu)) > 2.5  # log-uniform spread over 30-700


def test_sampled_etas_have_published_variances() -> None:
    ind = pop.sample_population("lowe2009", pop.Covariates(70.0, 150.0), 40_000, seed=1)
    typical = pkpd.individuals("lowe2009", 70, 150)
    eta_ka = np.log(ind.ka / typical.ka[0])
    eta_clx, eta_vx = np.log(ind.cl_x / typical.cl_x[0]), np.log(ind.v_x / typical.v_x[0])
    assert np.var(eta_ka) == pytest.approx(2.01, rel=0.05)
    assert np.cov(eta_clx, eta_vx)[0, 1] == pytest.approx(0.103, rel=0.05)


def test_population_percentiles_bracket_the_median_and_summaries_are_consistent() -> None:
    r = svc.simulate(
        weight_kg=70, total_ige_iu_ml=151, dose_mg=300, interval_weeks=4, weeks=8, population=800, seed=3
    )
    d = r.to_dict()
    f = d["free_ige_ng_ml"]
    assert len(f["p5"]) == len(d["times_days"]) == 57
    assert all(a <= b <= c for a, b, c in zip(f["p5"], f["p50"], f["p95"], strict=True))
    s = d["summary"]
    assert s["nadir_free_ige_ng_ml"]["p50"] <= s["mid_interval_free_ige_ng_ml"]["p50"]
    assert 0 <= s["fraction_mid_interval_below_14_ng_ml"] <= s["fraction_mid_interval_below_50_ng_ml"] <= 1
    assert d["seed"] == 3 and d["n_patients"] == 800
    again = svc.simulate(
        weight_kg=70, total_ige_iu_ml=151, dose_mg=300, interval_weeks=4, weeks=8, population=800, seed=3
    ).to_dict()
    assert again["summary"] == s


def test_single_patient_summary_and_trough_definition() -> None:
    d = svc.simulate(weight_kg=70, total_ige_iu_ml=151, dose_mg=300, interval_weeks=4, weeks=8).to_dict()
    free = d["free_ige_ng_ml"]
    assert d["summary"]["trough_free_ige_ng_ml"] == pytest.approx(free[56], rel=1e-3)
    assert d["summary"]["mid_interval_free_ige_ng_ml"] == pytest.approx(free[42], rel=1e-3)
    assert d["summary"]["nadir_free_ige_ng_ml"] == pytest.approx(min(free[1:]), rel=1e-3)
    assert d["free_ige_iu_ml"][0] == pytest.approx(free[0] / 2.42, rel=1e-3)


def test_extrapolation_warning_for_hyper_ige() -> None:
    d = svc.simulate(weight_kg=70, total_ige_iu_ml=48_000, dose_mg=600, interval_weeks=2, weeks=4).to_dict()
    assert any("extrapolation" in w for w in d["warnings"])


def test_cli_simulate_json_keys(cli) -> None:
    r = cli(
        "omalizumab",
        "simulate",
        "--weight-kg",
        "70",
        "--total-ige",
        "151",
        "--dose-mg",
        "300",
        "--interval-weeks",
        "4",
        "--weeks",
        "4",
        "--json",
    )
    assert r.code == 0, r.stderr
    d = r.json
    for key in (
        "model",
        "times_days",
        "free_ige_ng_ml",
        "total_omalizumab_ug_ml",
        "total_ige_ng_ml",
        "summary",
    ):
        assert key in d
    assert d["model"] == "lowe2009"


def test_cli_simulate_population_hayashi_and_plot(cli, tmp_path) -> None:
    png = tmp_path / "sim.png"
    r = cli(
        "omalizumab",
        "simulate",
        "--weight-kg",
        "60",
        "--total-ige",
        "200",
        "--dose-mg",
        "300",
        "--interval-weeks",
        "4",
        "--weeks",
        "4",
        "--model",
        "hayashi2007",
        "--population",
        "300",
        "--seed",
        "5",
        "--weight-range",
        "40:80",
        "--plot",
        str(png),
        "--json",
    )
    assert r.code == 0, r.stderr
    assert r.json["model"] == "hayashi2007" and set(r.json["free_ige_ng_ml"]) == {"p5", "p50", "p95"}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "bad",
    [
        ["--dose-mg", "-1"],
        ["--dose-mg", "300", "--model", "x"],
        ["--dose-mg", "300", "--weight-range", "40-80", "--population", "10"],
        ["--dose-mg", "300", "--population", "0"],
    ],
)
def test_cli_simulate_bad_input(cli, bad) -> None:
    r = cli(
        "omalizumab",
        "simulate",
        "--weight-kg",
        "70",
        "--total-ige",
        "151",
        "--interval-weeks",
        "4",
        "--weeks",
        "4",
        *bad,
        "--json",
    )
    assert r.code == 2 and r.stdout == "" and r.stderr.count("\n") == 1


def test_cli_progress_bar_keeps_stdout_one_json_object(cli) -> None:
    r = cli(
        "omalizumab",
        "simulate",
        "--weight-kg",
        "70",
        "--total-ige",
        "151",
        "--dose-mg",
        "300",
        "--interval-weeks",
        "2",
        "--weeks",
        "2",
        "--population",
        "2000",
        "--json",
    )
    assert r.code == 0, r.stderr
    assert r.json["n_patients"] == 2000  # stdout parses as exactly one JSON object
