"""`immunoplan recheck`: golden re-check of seed 001 Tables 1-5, p-value parsing, GRIM, bad input."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from scipy import stats as sps

from immunoplan.analysis import stats
from immunoplan.analysis.recheck import HEADER, grim, parse_reported, recheck_csv
from immunoplan.errors import InvalidInput

GOLDEN = Path(__file__).parent / "golden"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "examples"

# Which printed p-values of seed 001 are consistent with the stated test (see docs/recheck.md).
EXPECTED_INCONSISTENT = {
    "seed001_table1.csv": {
        "Age (years)",
        "Male sex (male/female 10/8 vs 11/8)",
        "Normal weight (BMI < 24.9)",
        "Overweight (BMI 25-29.9)",
        "Obese (BMI >= 30)",
        "Never smoked",
        "Former smoker",
        "Comorbid allergies",
        "Previous use of biologics",
    },
    "seed001_table2.csv": {"AQLQ 12 weeks"},
    "seed001_table3.csv": {
        "Total IgE baseline",
        "Total IgE 24 weeks",
        "Mite sIgE baseline",
        "Mite sIgE 12 weeks",
        "Mite sIgE 24 weeks",
        "Eosinophils baseline",
        "Eosinophils 12 weeks",
    },
    "seed001_table4.csv": {
        "FEV1 %pred 12 weeks",
        "FEV1 %pred 24 weeks",
        "PEF %pred 24 weeks",
        "FEV1/FVC 12 weeks",
    },
    "seed001_table5.csv": {
        "12 weeks local injection-site",
        "12 weeks mild systemic",
        "24 weeks local injection-site",
        "24 weeks mild systemic",
        "48 weeks local injection-site",
        "48 weeks mild systemic",
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED_INCONSISTENT))
def test_seed001_tables_golden(name):
    res = recheck_csv(GOLDEN / name)
    bad = {r["label"] for r in res["rows"] if r["consistent"] is False}
    assert bad == EXPECTED_INCONSISTENT[name]
    assert all(r["consistent"] is not None for r in res["rows"])
    assert res["summary"]["percent_mismatches"] == 0  # every printed percentage matches its counts
    assert (DOCS / name).read_text() == (GOLDEN / name).read_text()  # docs example = golden file


def test_golden_rows_use_the_papers_test_rule():
    """Counts rows name Fisher exactly when a 2x2 expected count is < 5 (the paper's chi-square/Fisher)."""
    for path in GOLDEN.glob("seed001_table*.csv"):
        for row in csv.DictReader(x for x in path.read_text().splitlines() if not x.startswith("#")):
            if row["test"] in ("fisher", "chi2"):
                e1, n1, e2, n2 = (int(row[k]) for k in ("events1", "n1", "events2", "n2"))
                chosen = stats.compare_categorical([[e1, n1 - e1], [e2, n2 - e2]]).test
                assert chosen == row["test"], row["label"]


def test_hand_checked_rows():
    res = {r["label"]: r for r in recheck_csv(GOLDEN / "seed001_table5.csv")["rows"]}
    sev = res["12 weeks severe systemic"]
    assert sev["recomputed_p"] == pytest.approx(18 / 37) and sev["consistent"] is True  # printed 0.49
    res1 = {r["label"]: r for r in recheck_csv(GOLDEN / "seed001_table1.csv")["rows"]}
    age = res1["Age (years)"]
    assert age["recomputed_p"] == pytest.approx(sps.ttest_ind_from_stats(45.3, 8.4, 18, 44.1, 9.3, 19).pvalue)
    assert age["p_range"][1] < 0.725  # even the most favourable rounding of the inputs cannot give 0.73
    assert set(age["other_tests"]) == {"student", "welch"}


def test_parse_reported():
    r = parse_reported("0.49")
    assert (r.low, r.high) == (pytest.approx(0.485), pytest.approx(0.495))
    r = parse_reported("*<0.01")
    assert (
        r.low == 0 and r.high == 0.01 and r.high_open and not r.overlaps(0.01, 0.02) and r.overlaps(0.0, 0.01)
    )
    assert parse_reported("<0.001*").high == 0.001
    assert parse_reported(">0.05").low == 0.05
    assert parse_reported("0.1").low == pytest.approx(0.05)
    assert parse_reported("") is None
    with pytest.raises(InvalidInput):
        parse_reported("n.s.")
    with pytest.raises(InvalidInput):
        parse_reported("1.5")


def test_grim_examples():
    # Brown & Heathers 2017 logic: n = 28 integer scores; 5.19 * 28 = 145.32 -> 145/28 = 5.18, 146/28 = 5.21
    assert grim("5.19", 28) == "inconsistent"
    assert grim("5.18", 28) == "consistent"
    assert grim("16.8", 18) == "not-testable"  # 18 >= 10^1: every one-decimal mean is possible
    assert grim("2.50", 10, items=2) == "consistent"  # 50/20
    assert grim("2.53", 10, items=2) == "inconsistent"


def _write(tmp_path: Path, lines: list[str]) -> Path:
    p = tmp_path / "t.csv"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def test_cli_recheck_json_contract(cli, tmp_path):
    f = _write(
        tmp_path,
        [
            ",".join(HEADER) + ",items",
            "ACT,welch,10,5.19,1.0,,28,5.19,1.2,,0.99,1",
            "SR,fisher,18,,,1,19,,,0,0.49,",
        ],
    )
    r = cli("recheck", f, "--json")
    assert r.code == 0, r.stderr
    rows = r.json["rows"]
    assert [x["label"] for x in rows] == ["ACT", "SR"]
    for x in rows:
        assert {"label", "test", "recomputed_p", "reported_p", "consistent"} <= set(x)
    assert rows[0]["grim2"] == "inconsistent" and rows[1]["consistent"] is True


def test_cli_recheck_human_output(cli):
    r = cli("recheck", GOLDEN / "seed001_table2.csv")
    assert r.code == 0 and "consistent" in r.stdout


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        (["label,test,n1", "x,student,3"], "header"),
        ([",".join(HEADER), "x,anova,10,1,1,,10,2,1,,0.5"], "line 2: test"),
        ([",".join(HEADER), "x,student,10,abc,1,,10,2,1,,0.5"], "line 2: mean1"),
        ([",".join(HEADER), "x,fisher,10,,,11,10,,,2,0.5"], "line 2: events"),
        ([",".join(HEADER), "x,student,1,1,1,,10,2,1,,0.5"], "line 2: n"),
        ([",".join(HEADER), "x,student,10,1,1,,10,2,1,,high"], "line 2: reported_p"),
        ([",".join(HEADER), "x,fisher,10.5,,,1,10,,,2,0.5"], "line 2: n1"),
        ([",".join(HEADER)], "FILE"),
    ],
)
def test_cli_recheck_bad_input(cli, tmp_path, lines, field):
    f = _write(tmp_path, lines)
    r = cli("recheck", f, "--json")
    assert r.code == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and f"error: {field}" in r.stderr and "Traceback" not in r.stderr


def test_cli_recheck_missing_file(cli, tmp_path):
    r = cli("recheck", tmp_path / "none.csv", "--json")
    assert r.code == 2 and "FILE" in r.stderr
