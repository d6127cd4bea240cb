"""Integration with the registry demo generator: the seed-001 demo cohort reproduces seed 001 Table 5 counts,
and its report tables name their tests."""

from __future__ import annotations

import pytest

from immunoplan.registry.db import open_registry
from immunoplan.services.analysis import cohort_tables
from immunoplan.synthetic import create_demo


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory):
    db = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    reg = open_registry(db)
    try:
        create_demo(reg, seed=0, actor="test.analysis")
    finally:
        reg.dispose()
    return db


def test_demo_seed001_table5_matches_printed_counts(demo_db):
    tables = {t["id"]: t for t in cohort_tables(demo_db, "seed001")}
    assert {"table1", "table2", "table3", "table4", "repeated", "table5", "incidence"} <= set(tables)
    rows = tables["table5"]["rows"]
    period = ""
    seen = {}
    for r in rows:
        period = r["period"] or period
        seen[(period, r["reaction"])] = (r["SCIT (n=18)"], r["Omb+SCIT (n=19)"], r["test"])
    # seed 001 Table 5 (printed): local 3 vs 2, 4 vs 3, 6 vs 4; severe systemic 1 vs 0 at every visit
    assert seen[("12 weeks", "Local injection-site reactions")][:2] == ("3 (16.7%)", "2 (10.5%)")
    assert seen[("24 weeks", "Local injection-site reactions")][:2] == ("4 (22.2%)", "3 (15.8%)")
    assert seen[("48 weeks", "Local injection-site reactions")][:2] == ("6 (33.3%)", "4 (21.1%)")
    for visit in ("12 weeks", "24 weeks", "48 weeks"):
        assert seen[(visit, "Severe systemic reactions")] == ("1 (5.6%)", "0 (0.0%)", "fisher")
    assert all(r.get("test") for r in tables["table2"]["rows"])


def test_demo_seed000_stratified_analysis(demo_db):
    tables = {t["id"]: t for t in cohort_tables(demo_db, "seed000")}
    strat = tables["stratified"]
    strata = {(r["_stratification"], r["stratum"]) for r in strat["rows"]}
    assert {
        ("Mite sIgE grade", "1-2"),
        ("Mite sIgE grade", "3-6"),
        ("sIgE/total IgE", "< 10 %"),
        ("sIgE/total IgE", ">= 10 %"),
        ("Age group", "adult"),
        ("Age group", "child/adolescent"),
    } <= strata
    assert strat["basis"][0]["id"] == "assess_sr_risk"
    assert "efficacy_ratio" in tables and "strata_risk" in tables
