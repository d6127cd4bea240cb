"""Report tables on small hand-built DataFrames: the test named per row, counts, BH column, strata."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from immunoplan.analysis import tables
from immunoplan.analysis.datasets import CohortData, reaction_class, visit_for_day
from immunoplan.errors import InvalidInput


def _patients(n1: int, n2: int, **cols) -> pd.DataFrame:
    n = n1 + n2
    base = {
        "patient_id": np.arange(1, n + 1),
        "cohort": "c",
        "group": ["SCIT"] * n1 + ["Omb+SCIT"] * n2,
        "omalizumab": [0.0] * n1 + [1.0] * n2,
    }
    base.update(cols)
    return pd.DataFrame(base)


def test_groups_comparator_first_and_schema_check():
    d = CohortData(_patients(2, 2))
    assert d.groups == ["SCIT", "Omb+SCIT"]
    with pytest.raises(InvalidInput):
        CohortData(pd.DataFrame({"patient_id": [1]}))
    with pytest.raises(InvalidInput):
        d.select("other")


def test_table1_names_tests_and_uses_fisher_for_small_counts():
    rng = np.random.default_rng(1)
    p = _patients(
        18,
        19,
        age_years=rng.normal(45, 9, 37),
        previous_biologics=[1.0] * 3 + [0.0] * 15 + [1.0] * 2 + [0.0] * 17,
        sex=["male"] * 10 + ["female"] * 8 + ["male"] * 11 + ["female"] * 8,
    )
    t = tables.table1(CohortData(p))
    rows = {r["variable"]: r for r in t.rows if r["variable"]}
    assert rows["Age (years)"]["test"] in ("student", "welch", "mann-whitney")
    assert rows["Previous biologics"]["test"] == "fisher"
    assert rows["Previous biologics"]["p_value"] == pytest.approx(sps.fisher_exact([[15, 3], [17, 2]]).pvalue)
    assert rows["Sex"]["test"] == "chi2"
    assert "p (BH)" in t.columns and all("p_value_bh" in r for r in t.rows)
    assert {"shapiro", "fisher", "chi2", "bh"} <= t.tests


def test_describe_and_fmt_p():
    assert tables.describe([1, 2, 3], True) == "2.00 ± 1.00"
    assert tables.describe([1, 2, 3, 100], False).startswith("2.50 [")
    assert tables.fmt_p(0.0004) == "<0.001" and tables.fmt_p(None) == "-" and tables.fmt_p(0.0456) == "0.046"


def _outcomes(p: pd.DataFrame, measure: str, values: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for visit, vals in values.items():
        for pid, v in zip(p["patient_id"], vals, strict=True):
            rows.append((pid, visit, measure, v))
    return pd.DataFrame(rows, columns=["patient_id", "visit", "measure", "value"])


def test_longitudinal_between_and_within_group():
    p = _patients(5, 5)
    base = [17, 15, 16, 18, 19, 16, 17, 15, 18, 17]
    w48 = [18, 16, 18, 19, 19, 22, 21, 20, 23, 21]
    out = _outcomes(p, "act", {"baseline": base, "week48": w48})
    t = tables.longitudinal(CohortData(p, out), "table2")
    assert [r["visit"] for r in t.rows] == ["Baseline", "48 weeks"]
    last = t.rows[-1]
    ref = sps.ttest_ind(w48[:5], w48[5:], equal_var=True).pvalue
    assert last["test"] == "student" and last["p_value"] == pytest.approx(ref)
    within = last["within Omb+SCIT: baseline vs last"]
    assert within.endswith("(paired-t)") or within.endswith("(wilcoxon)")


def test_repeated_measures_table_has_gg_and_lmm(small_cohort):
    t = tables.repeated_measures(small_cohort)
    assert t is not None and {"rm-anova-gg", "mixedlm"} <= t.tests
    row = t.rows[0]
    assert row["n complete"] <= 40 and row["LMM n"] > 0
    assert 0.0 < float(row["GG epsilon"]) <= 1.0


def test_adverse_reactions_counts_patients_per_period():
    p = _patients(18, 19)
    rx = pd.DataFrame(
        {
            "patient_id": [1, 1, 2, 3, 20],
            "kind": ["local", "local", "local", "systemic", "local"],
            "grade": [None, None, None, "severe", None],
            "day": [10, 20, 30, 200, 40],
        }
    )
    rx["reaction_class"] = [reaction_class(k, g) for k, g in zip(rx["kind"], rx["grade"], strict=True)]
    rx["visit"] = rx["day"].map(visit_for_day)
    inj = pd.DataFrame(
        {"patient_id": np.repeat(np.arange(1, 38), 10), "day": np.tile(np.arange(10) * 30, 37)}
    )
    d = CohortData(p, reactions=rx, injections=inj)
    t = tables.adverse_reactions(d)
    local12 = next(r for r in t.rows if r["period"] == "12 weeks")
    assert local12["SCIT (n=18)"] == "2 (11.1%)" and local12["Omb+SCIT (n=19)"] == "1 (5.3%)"
    assert local12["test"] == "fisher"
    start = next(i for i, r in enumerate(t.rows) if r["period"] == "48 weeks")
    severe48 = next(r for r in t.rows[start:] if r["reaction"] == "Severe systemic reactions")
    assert severe48["SCIT (n=18)"] == "1 (5.6%)" and severe48["Omb+SCIT (n=19)"] == "0 (0.0%)"
    assert severe48["p_value"] == pytest.approx(18 / 37)
    inc = tables.incidence(d)
    assert inc.rows[0]["local per 100 injections"] == "1.67 (3)"  # 3 reactions / 180 injections
    assert inc.rows[0]["patients with local"] == "2 (11.1%)"


def test_reaction_class_and_periods():
    assert reaction_class("local", None) == "local"
    assert reaction_class("systemic", "Mild") == "systemic-mild"
    assert reaction_class("systemic", None) == "systemic-ungraded"
    assert [visit_for_day(d) for d in (0, 84, 85, 336, 400)] == ["week12", "week12", "week24", "week48", None]


def test_stratified_uses_reference_cut_offs_and_reports_rr():
    # 40 patients: high-risk stratum (class 4, ratio 20 %) and low-risk stratum (class 2, ratio 5 %)
    n = 40
    omb = np.array([0.0, 1.0] * (n // 2))
    high = np.arange(n) < 20
    p = pd.DataFrame(
        {
            "patient_id": np.arange(1, n + 1),
            "cohort": "seed000",
            "group": np.where(omb == 1, "RIT+Omb-pre", "RIT"),
            "omalizumab": omb,
            "sige_class": np.where(high, 4.0, 2.0),
            "sige_total_ratio_pct": np.where(high, 20.0, 5.0),
            "age_group": "adult",
            "target_reached": 1.0,
        }
    )
    sr_ids = [i + 1 for i in range(20) if omb[i] == 0][:7] + [i + 1 for i in range(20) if omb[i] == 1][:1]
    rx = pd.DataFrame(
        {
            "patient_id": sr_ids,
            "kind": "systemic",
            "grade": "mild",
            "reaction_class": "systemic-mild",
            "visit": "week12",
            "day": 5.0,
        }
    )
    t = tables.stratified(CohortData(p, reactions=rx))
    assert t.basis and t.basis[0]["id"] == "assess_sr_risk"
    by = {(r["_stratification"], r["stratum"]): r for r in t.rows}
    hi = by[("Mite sIgE grade", "3-6")]
    assert hi["omalizumab: SR/n (%)"] == "1/10 (10.0%)" and hi["no omalizumab: SR/n (%)"] == "7/10 (70.0%)"
    assert hi["p_value"] == pytest.approx(sps.fisher_exact([[1, 9], [7, 3]]).pvalue)
    assert hi["rr"]["estimate"] == pytest.approx(0.1 / 0.7)
    assert ("sIgE/total IgE", ">= 10 %") in by and ("sIgE/total IgE", "< 10 %") in by
    assert "Breslow-Day" in by[("Mite sIgE grade", "1-2")]["interaction"]


def test_efficacy_by_ratio_uses_16_percent_cut():
    p = _patients(4, 4, sige_total_ratio_pct=[30, 20, 5, 8, 25, 17, 3, 16])
    out = _outcomes(p, "acq", {"baseline": [3.0] * 8, "week48": [1.0, 1.2, 2.8, 2.9, 1.1, 1.3, 2.7, 2.6]})
    t = tables.efficacy_by_ratio(CohortData(p, out))
    (row,) = t.rows
    assert "(n=4)" in row["ratio > 16 %"] and "(n=4)" in row["ratio <= 16 %"]  # 16 itself is not > 16
    assert row["p_value"] < 0.01


def test_table1_without_two_groups_is_descriptive():
    p = pd.DataFrame(
        {
            "patient_id": [1, 2, 3],
            "cohort": "clinic",
            "group": [None] * 3,
            "age_years": [30.0, 40.0, 50.0],
            "sex": ["male", "female", "male"],
        }
    )
    t = tables.table1(CohortData(p))
    assert "all (n=3)" in t.columns
    age = next(r for r in t.rows if r["variable"] == "Age (years)")
    assert age["all (n=3)"] == "40.0 ± 10.0" and "p_value" not in age
