"""CLI `immunoplan omalizumab dose`: the four result kinds exit 0 with one JSON object; bad input exits 2."""

from __future__ import annotations

import pytest

BASE = ["omalizumab", "dose", "--indication", "asthma", "--region", "us", "--age", "30"]


@pytest.mark.parametrize(
    ("weight", "ige", "status"),
    [
        ("65", "250", "dose"),
        ("95", "350", "do-not-dose"),
        ("65", "701", "outside-table"),
    ],
)
def test_dose_kinds(cli, weight, ige, status) -> None:
    r = cli(*BASE, "--weight-kg", weight, "--total-ige", ige, "--json")
    assert r.code == 0, r.stderr
    d = r.json
    assert d["status"] == status
    for key in ("status", "dose_mg", "interval_weeks", "injections", "table", "cell", "warnings"):
        assert key in d


def test_dose_json_example_from_issue(cli) -> None:
    d = cli(*BASE, "--weight-kg", "65", "--total-ige", "250", "--json").json
    assert (d["dose_mg"], d["interval_weeks"], d["injections"]) == (225, 2, [150, 75])
    assert d["cell"] == {"ige_band": ">200-300", "weight_band": ">60-70"}
    assert d["table"]["id"] == "omalizumab_us_asthma_12plus"


def test_unverified_and_override(cli) -> None:
    args = [
        "omalizumab",
        "dose",
        "--indication",
        "asthma",
        "--region",
        "eu",
        "--age",
        "30",
        "--weight-kg",
        "65",
        "--total-ige",
        "350",
        "--json",
    ]
    r = cli(*args)
    assert r.code == 0 and r.json["status"] == "unverified-table" and r.json["dose_mg"] is None
    r2 = cli(*args, "--override-unverified", "checked SmPC")
    assert r2.json["status"] == "dose" and r2.json["override"]["reason"] == "checked SmPC"


def test_human_output(cli) -> None:
    r = cli(*BASE, "--weight-kg", "65", "--total-ige", "250")
    assert r.code == 0 and "225 mg every 2 weeks" in r.stdout


@pytest.mark.parametrize(
    "bad",
    [
        ["--weight-kg", "-1", "--total-ige", "250"],
        ["--weight-kg", "x", "--total-ige", "1"],
        ["--weight-kg", "65"],
    ],
)
def test_bad_input_exit_2_one_line(cli, bad) -> None:
    r = cli(*BASE, *bad, "--json")
    assert r.code == 2
    assert r.stdout == ""
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr


def test_csu_needs_no_weight_or_ige(cli) -> None:
    r = cli("omalizumab", "dose", "--indication", "csu", "--age", "40", "--csu-dose-mg", "150", "--json")
    assert r.code == 0, r.stderr
    assert r.json["status"] == "dose" and r.json["dose_mg"] == 150 and r.json["interval_weeks"] == 4


def test_weight_required_outside_csu(cli) -> None:
    r = cli(*BASE, "--total-ige", "250", "--json")
    assert r.code == 2 and "weight_kg" in r.stderr and r.stdout == ""
