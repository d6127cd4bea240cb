"""CLI contract: --json prints one object with the documented keys; bad input -> exit 2, one stderr line
naming the field and the accepted range, no traceback."""

from __future__ import annotations

import json

import pytest


def one_json(r) -> dict:
    assert r.code == 0, r.stderr
    assert r.stdout.count("\n") == 1  # exactly one JSON object on one line
    return json.loads(r.stdout)


def test_risk_issue_example(cli) -> None:
    d = one_json(
        cli("risk", "--age", "14", "--total-ige", "420", "--sige", "68", "--allergen", "mite", "--json")
    )
    for key in ("sige_class", "ratio_percent", "age_group", "risk_tier", "omalizumab_pretreatment", "rules"):
        assert key in d
    assert (d["sige_class"], d["ratio_percent"], d["risk_tier"]) == (5, 16.19, "high")
    assert all("source" in r for r in d["rules"])


def test_eligibility(cli) -> None:
    d = one_json(
        cli(
            "eligibility",
            "--age",
            "40",
            "--total-ige",
            "300",
            "--weight-kg",
            "70",
            "--eosinophils",
            "400",
            "--perennial-sensitization",
            "--severity",
            "severe",
            "--uncontrolled",
            "--json",
        )
    )
    assert d["summary"]["omalizumab"] == "eligible"
    assert d["summary"]["benralizumab"] == "eligible"
    assert d["summary"]["dupilumab"] == "eligible"
    assert d["summary"]["tezepelumab"] == "eligible"


@pytest.mark.parametrize(
    ("args", "score", "category"),
    [
        (["act", "4", "4", "3", "4", "3"], 18, "not-well-controlled"),
        (["c-act", "3", "3", "3", "3", "5", "5", "5"], 27, "well-controlled"),
        (["acq5", "0", "0", "0", "1", "2"], 0.6, "well-controlled"),
        (["acq6", "1", "1", "1", "2", "2", "2"], 1.5, "not-well-controlled"),
        (["acq7", "1", "1", "1", "1", "1", "1", "--fev1-pct", "85"], 1.14, "partly-controlled"),
        (["aqlq", *["4"] * 32], 4, None),
        (["mini-aqlq", *["5"] * 15], 5, None),
        (["scorad", "30", "1", "2", "1", "2", "1", "1", "5", "5"], 44, "moderate"),
    ],
)
def test_score(cli, args: list[str], score, category) -> None:
    d = one_json(cli("score", *args, "--json"))
    assert d["score"] == score and d["category"] == category


def test_score_response(cli) -> None:
    d = one_json(cli("score-response", "act", "15", "20", "--json"))
    assert d["classification"] == "improved" and d["change"] == 5


def test_spirometry_contract(cli) -> None:
    d = one_json(
        cli(
            "spirometry",
            "--equation",
            "gli2012",
            "--sex",
            "male",
            "--age",
            "40",
            "--height-cm",
            "175",
            "--ethnicity",
            "caucasian",
            "--fev1",
            "3.0",
            "--json",
        )
    )
    assert set(d["fev1"]) >= {"predicted", "lln", "uln", "z", "percent_predicted"}
    assert d["fev1"]["percent_predicted"] == 73.57
    assert "fvc" not in d


def test_biomarkers(cli) -> None:
    d = one_json(
        cli(
            "biomarkers",
            "--sige",
            "68",
            "--total-ige",
            "420",
            "--eosinophils",
            "420",
            "--feno",
            "48",
            "--age",
            "14",
            "--json",
        )
    )
    assert d["sige_class"] == 5 and d["ratio_percent"] == 16.19
    assert d["total_ige_ng_ml"] == pytest.approx(1016.4)
    assert (
        d["eosinophils"]["category"] == "high" and d["feno"]["category"] == "intermediate"
    )  # adult cut-offs
    child = one_json(cli("biomarkers", "--feno", "48", "--age", "10", "--json"))
    assert child["feno"]["category"] == "high"  # child cut-offs (< 12 y): > 35 ppb
    d2 = one_json(cli("biomarkers", "--ige-ng-ml", "240", "--factor", "2.4", "--json"))
    assert d2["total_ige_iu_ml"] == 100
    assert d2["warnings"] == [] and any("UNVERIFIED" in w for w in d["warnings"])


def test_assess_and_demo_tour(cli) -> None:
    d = one_json(cli("assess", "--age", "14", "--total-ige", "420", "--sige", "68", "--json"))
    assert d["schema"] == "immunoplan.assessment/1"
    tour = one_json(cli("demo-tour", "--json"))
    tiers = [p["assessment"]["risk"]["risk_tier"] for p in tour["patients"]]
    groups = [p["assessment"]["risk"]["age_group"] for p in tour["patients"]]
    assert tiers == ["low", "high"] and groups == ["adult", "child-adolescent"]


def test_human_output_renders(cli) -> None:
    r = cli("demo-tour")
    assert r.code == 0 and "low-risk adult" in r.stdout and "high-risk adolescent" in r.stdout
    for args in (
        ["risk", "--age", "14", "--total-ige", "420", "--sige", "68"],
        ["score", "aqlq", *["4"] * 32],
        ["spirometry", "--sex", "female", "--age", "9", "--height-cm", "130"],
        ["eligibility", "--age", "30"],
        ["biomarkers", "--sige", "1"],
        ["score-response", "scorad", "40", "20"],
    ):
        res = cli(*args)
        assert res.code == 0 and res.stdout.strip(), args


BAD = [
    (["risk", "--age", "300", "--total-ige", "420", "--sige", "68"], "age_years", "[0, 120]"),
    (["risk", "--age", "14", "--total-ige", "-5", "--sige", "68"], "total_ige_iu_ml", "(0, 1000000]"),
    (["risk", "--age", "14", "--total-ige", "420", "--sige", "-1"], "sige_kua_l", "[0, 100000]"),
    (["risk", "--age", "fourteen", "--total-ige", "420", "--sige", "68"], "age_years", "[0, 120]"),
    (["eligibility", "--age", "300"], "age_years", "[0, 120]"),
    (["eligibility", "--age", "30", "--total-ige", "-1"], "total_ige_iu_ml", "(0, 1000000]"),
    (["eligibility", "--age", "30", "--weight-kg", "heavy"], "weight_kg", "(0, 500]"),
    (["biomarkers", "--sige", "-2"], "sige_kua_l", "[0, 100000]"),
    (["biomarkers", "--total-ige", "abc"], "total_ige_iu_ml", "(0, 1000000]"),
    (["biomarkers", "--feno", "20", "--age", "300"], "age_years", "[0, 120]"),
    (["score", "act", "4", "-1", "3", "4", "3"], "item 2", "[1, 5]"),
    (["score", "act", "4", "x", "3", "4", "3"], "item 2", "[1, 5]"),
    (["score", "acq5", "0", "0", "0", "0", "9"], "item 5", "[0, 6]"),
    (
        ["score", "acq7", "0", "0", "0", "0", "0", "0", "--fev1-pct", "-5"],
        "fev1_percent_predicted",
        "[0, 300]",
    ),
    (["score-response", "act", "300", "20"], "before", "[5, 25]"),
    (["spirometry", "--sex", "male", "--age", "300", "--height-cm", "175"], "age_years", "[3, 95]"),
    (["spirometry", "--sex", "male", "--age", "40", "--height-cm", "tall"], "height_cm", "[30, 250]"),
    (
        ["spirometry", "--sex", "male", "--age", "40", "--height-cm", "175", "--fev1", "-3"],
        "fev1_l",
        "(0, 15]",
    ),
    (["assess", "--age", "300", "--total-ige", "420", "--sige", "68"], "age_years", "[0, 120]"),
]


@pytest.mark.parametrize(
    ("args", "field", "accepted"), BAD, ids=lambda x: " ".join(x) if isinstance(x, list) else x
)
def test_bad_input_exit_2_one_line(cli, args: list[str], field: str, accepted: str) -> None:
    for extra in ([], ["--json"]):
        r = cli(*args, *extra)
        assert r.code == 2
        assert r.stdout == ""
        line = r.stderr.strip()
        assert "\n" not in line and "Traceback" not in line
        assert field in line and accepted in line


@pytest.mark.parametrize(
    "args",
    [
        ["risk", "--total-ige", "420", "--sige", "68"],
        ["score", "nope", "1"],
        ["spirometry", "--sex", "x", "--age", "40", "--height-cm", "170"],
        ["eligibility", "--age", "40", "--severity", "extreme"],
    ],
)
def test_missing_or_unknown_values_exit_2(cli, args: list[str]) -> None:
    r = cli(*args, "--json")
    assert r.code == 2 and r.stderr.strip().count("\n") == 0 and r.stdout == ""
