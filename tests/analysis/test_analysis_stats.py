"""Statistical functions against independent values: R/textbook outputs, hand computations, SciPy/statsmodels
computations (the test used is named in each case)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from immunoplan.analysis import stats
from immunoplan.analysis.models import breslow_day, group_visit_lmm, logistic_interaction
from immunoplan.errors import InvalidInput

# Student's sleep data (Cushny & Peebles via Student 1908), R's `sleep` data set.
SLEEP1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_welch_matches_r_sleep():
    # R: t.test(extra ~ group, data = sleep) -> t = -1.8608, df = 17.776, p-value = 0.07939
    r = stats.welch_t(SLEEP1, SLEEP2)
    assert r.test == "welch"
    assert r.statistic == pytest.approx(-1.8608, abs=1e-4)
    assert r.df == pytest.approx(17.776, abs=1e-3)
    assert r.p == pytest.approx(0.07939, abs=1e-5)


def test_student_matches_r_sleep():
    # R: t.test(extra ~ group, data = sleep, var.equal = TRUE) -> t = -1.8608, df = 18, p-value = 0.07919
    r = stats.student_t(SLEEP1, SLEEP2)
    assert (r.test, r.df) == ("student", 18)
    assert r.p == pytest.approx(0.07919, abs=1e-5)


def test_paired_matches_r_sleep():
    # R: t.test(sleep$extra[1:10], sleep$extra[11:20], paired = TRUE) -> t = -4.0621, df = 9, p = 0.002833
    r = stats.paired_t(SLEEP1, SLEEP2)
    assert r.test == "paired-t" and r.df == 9
    assert r.statistic == pytest.approx(4.0621, abs=1e-4)  # after - before
    assert r.p == pytest.approx(0.002833, abs=1e-6)


def test_paired_rule_picks_wilcoxon_for_sleep_differences():
    # R: shapiro.test(extra[11:20] - extra[1:10]) -> W = 0.82, p = 0.033 (not normal), so the rule picks
    # Wilcoxon; R: wilcox.test(..., paired = TRUE) (zero and ties -> normal approx., continuity) p = 0.009091
    assert stats.shapiro(np.subtract(SLEEP2, SLEEP1)).p == pytest.approx(0.03334, abs=1e-4)
    r = stats.paired(SLEEP1, SLEEP2)
    assert r.test == "wilcoxon" and r.note == "approx"
    assert r.p == pytest.approx(0.009091, abs=1e-6)


def test_mann_whitney_matches_r_sleep():
    # R: wilcox.test(extra ~ group, data = sleep) (ties: normal approx., continuity) W = 25.5, p = 0.06933
    r = stats.mann_whitney(SLEEP1, SLEEP2)
    assert r.test == "mann-whitney" and r.note == "asymptotic"
    assert r.statistic == pytest.approx(25.5)
    assert r.p == pytest.approx(0.06933, abs=1e-5)


def test_t_from_summary_equals_scipy_from_stats():
    for equal_var in (True, False):
        ours = stats.t_from_summary(45.3, 8.4, 18, 44.1, 9.3, 19, equal_var=equal_var)
        ref = sps.ttest_ind_from_stats(45.3, 8.4, 18, 44.1, 9.3, 19, equal_var=equal_var)
        assert ours.p == pytest.approx(ref.pvalue, rel=1e-12)


def test_welch_edge_cases():
    # both SDs zero: t undefined -> p 1 for equal means, 0 otherwise (noted)
    assert stats.t_from_summary(5, 0, 4, 5, 0, 6, equal_var=False).p == 1.0
    r = stats.t_from_summary(5, 0, 4, 6, 0, 6, equal_var=False)
    assert r.p == 0.0 and "zero variance" in r.note
    # one SD zero: Welch-Satterthwaite df reduces to n - 1 of the other group (hand computation)
    r = stats.t_from_summary(10, 0, 5, 12, 2, 9, equal_var=False)
    assert r.df == pytest.approx(8.0)
    assert r.statistic == pytest.approx(-2 / (2 / 3))
    # equal n and equal SD: Welch equals Student
    a = stats.t_from_summary(1, 2, 10, 2, 2, 10, equal_var=False)
    b = stats.t_from_summary(1, 2, 10, 2, 2, 10, equal_var=True)
    assert a.p == pytest.approx(b.p) and a.df == pytest.approx(18)
    with pytest.raises(InvalidInput):
        stats.t_from_summary(1, 1, 1, 2, 1, 5, equal_var=False)
    with pytest.raises(InvalidInput):
        stats.t_from_summary(1, -1, 3, 2, 1, 5, equal_var=True)
    with pytest.raises(InvalidInput):
        stats.welch_t([1.0], [1.0, 2.0])


def test_fisher_tea_tasting_matches_r():
    # R: fisher.test(matrix(c(3, 1, 1, 3), 2)) -> p-value = 0.4857
    assert stats.fisher([[3, 1], [1, 3]]).p == pytest.approx(0.4857, abs=1e-4)


def test_fisher_single_event_hand_computed():
    # 1 event among 18 + 19 patients: P(event in group 1) = 18/37, the other table has 19/37 > 18/37, so the
    # two-sided p is 18/37 (seed 001 Table 5 "severe systemic": printed 0.49).
    assert stats.fisher([[1, 17], [0, 19]]).p == pytest.approx(18 / 37, rel=1e-12)


def test_fisher_edge_cases():
    assert stats.fisher([[0, 10], [0, 12]]).p == 1.0
    assert stats.fisher([[0, 0], [3, 4]]).p == 1.0
    assert stats.fisher([[5, 0], [0, 5]]).p == pytest.approx(2 / math.comb(10, 5))
    with pytest.raises(InvalidInput):
        stats.fisher([[1, 2, 3], [1, 2, 3]])
    with pytest.raises(InvalidInput):
        stats.fisher([[1, -2], [1, 2]])


def test_chi2_hand_computed_with_and_without_yates():
    a, b, c, d = 10, 8, 11, 8
    n = a + b + c + d
    rows, cols = (a + b) * (c + d), (a + c) * (b + d)
    x2 = n * (a * d - b * c) ** 2 / (rows * cols)
    x2y = n * max(0.0, abs(a * d - b * c) - n / 2) ** 2 / (rows * cols)
    r = stats.chi2([[a, b], [c, d]])
    ry = stats.chi2([[a, b], [c, d]], yates=True)
    assert (r.test, ry.test) == ("chi2", "chi2-yates")
    assert r.statistic == pytest.approx(x2) and r.p == pytest.approx(sps.chi2.sf(x2, 1))
    assert ry.statistic == pytest.approx(x2y) and ry.p == pytest.approx(sps.chi2.sf(x2y, 1))
    assert stats.chi2([[0, 5], [0, 7]]).p == 1.0
    with pytest.raises(InvalidInput):
        stats.chi2([[1, 2, 3], [3, 2, 1]], yates=True)


def test_categorical_rule_is_explicit():
    assert stats.compare_categorical([[4, 14], [5, 14]]).test == "fisher"  # expected 4.4 < 5
    assert stats.compare_categorical([[7, 11], [8, 11]]).test == "chi2"
    r = stats.compare_categorical([[1, 2], [10, 20], [3, 3]])
    assert r.test == "chi2" and "expected count < 5" in r.note


def test_continuous_rule():
    rng = np.random.default_rng(3)
    normal_a, normal_b = rng.normal(0, 1, 40), rng.normal(0.3, 1, 40)
    assert stats.compare_continuous(normal_a, normal_b).test == "student"
    skewed = rng.exponential(1, 60) ** 3
    assert stats.compare_continuous(skewed, normal_b).test == "mann-whitney"
    wide = rng.normal(0, 10, 40)
    assert stats.compare_continuous(normal_a, wide).test == "welch"
    assert stats.compare_continuous(normal_a, normal_b, rule="welch").test == "welch"
    with pytest.raises(InvalidInput):
        stats.compare_continuous(normal_a, normal_b, rule="auto")


def test_risk_difference_matches_statsmodels_newcombe():
    from statsmodels.stats.proportion import confint_proportions_2indep

    for e1, n1, e0, n0 in ((3, 18, 0, 19), (10, 69, 35, 133), (0, 20, 0, 25), (12, 12, 3, 10)):
        rd = stats.risk_difference(e1, n1, e0, n0)
        lo, hi = confint_proportions_2indep(e1, n1, e0, n0, method="newcomb", compare="diff")
        assert rd.estimate == pytest.approx(e1 / n1 - e0 / n0)
        assert (rd.low, rd.high) == (pytest.approx(lo, abs=1e-9), pytest.approx(hi, abs=1e-9))


def test_risk_ratio_katz_and_zero_cells():
    from statsmodels.stats.proportion import confint_proportions_2indep

    rr = stats.risk_ratio(10, 69, 35, 133)
    lo, hi = confint_proportions_2indep(10, 69, 35, 133, method="log", compare="ratio")
    assert rr.estimate == pytest.approx((10 / 69) / (35 / 133))
    assert (rr.low, rr.high) == (pytest.approx(lo, rel=1e-9), pytest.approx(hi, rel=1e-9))
    # zero cell: 0.5 added to every cell (hand computation)
    z = stats.risk_ratio(0, 19, 1, 18)
    est = (0.5 / 20) / (1.5 / 19)
    se = math.sqrt(1 / 0.5 - 1 / 20 + 1 / 1.5 - 1 / 19)
    assert z.estimate == pytest.approx(est) and "0.5" in z.note
    assert z.high == pytest.approx(est * math.exp(1.959963984540054 * se))
    assert stats.risk_ratio(0, 10, 0, 10).estimate is None
    # extreme risk difference: bounds stay within [-1, 1] (found by hypothesis: -1.0000000000000002)
    extreme = stats.risk_difference(0, 1, 1, 1)
    assert extreme.estimate == -1.0 and extreme.low == -1.0
    with pytest.raises(InvalidInput):
        stats.risk_ratio(11, 10, 0, 10)


def test_benjamini_hochberg_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = [0.01, 0.04, 0.03, 0.005, 0.5, 0.2, 0.04]
    ref = multipletests(p, method="fdr_bh")[1]
    assert stats.benjamini_hochberg(p) == pytest.approx(list(ref))
    assert stats.benjamini_hochberg([None, 0.02, float("nan"), 0.04]) == [None, 0.04, None, 0.04]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=30))
def test_benjamini_hochberg_invariants(p):
    adj = stats.benjamini_hochberg(p)
    assert all(a >= r - 1e-15 and a <= 1.0 for a, r in zip(adj, p, strict=True))
    order = np.argsort(p, kind="mergesort")
    ranked = [adj[i] for i in order]
    assert all(x <= y + 1e-15 for x, y in zip(ranked, ranked[1:], strict=False))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 30), st.integers(1, 30), st.integers(0, 30), st.integers(1, 30))
def test_risk_intervals_contain_estimate(e1, n1, e0, n0):
    e1, e0 = min(e1, n1), min(e0, n0)
    rd = stats.risk_difference(e1, n1, e0, n0)
    assert -1 <= rd.low <= rd.estimate <= rd.high <= 1
    rr = stats.risk_ratio(e1, n1, e0, n0)
    if rr.estimate is not None:
        assert rr.low <= rr.estimate <= rr.high


@settings(max_examples=40, deadline=None)
@given(
    st.floats(-50, 50),
    st.floats(0.1, 20),
    st.integers(2, 60),
    st.floats(-50, 50),
    st.floats(0.1, 20),
    st.integers(2, 60),
)
def test_t_tests_are_symmetric_and_bounded(m1, s1, n1, m2, s2, n2):
    for eq in (True, False):
        a = stats.t_from_summary(m1, s1, n1, m2, s2, n2, equal_var=eq)
        b = stats.t_from_summary(m2, s2, n2, m1, s1, n1, equal_var=eq)
        assert 0 <= a.p <= 1 and a.p == pytest.approx(b.p)


def _box_epsilon(cov: np.ndarray) -> float:
    """Greenhouse-Geisser epsilon by Box's (1954) double-centred formula (not the contrast route)."""
    k = cov.shape[0]
    mean_diag = np.trace(cov) / k
    mean_all = cov.mean()
    row_means = cov.mean(axis=1)
    num = k**2 * (mean_diag - mean_all) ** 2
    den = (k - 1) * (np.sum(cov**2) - 2 * k * np.sum(row_means**2) + k**2 * mean_all**2)
    return num / den


def test_gg_epsilon_equals_box_formula_and_bounds():
    rng = np.random.default_rng(7)
    for k in (3, 4, 5):
        a = rng.normal(size=(k, k))
        cov = a @ a.T + 0.1 * np.eye(k)
        assert stats.gg_epsilon(cov) == pytest.approx(min(1.0, _box_epsilon(cov)), rel=1e-10)
        assert 1 / (k - 1) - 1e-12 <= stats.gg_epsilon(cov) <= 1.0
    # compound symmetry satisfies sphericity: epsilon = 1
    cs = 2.0 * np.eye(4) + 1.0
    assert stats.gg_epsilon(cs) == pytest.approx(1.0)


def _panel(n_per_group=(8, 8), k=4, seed=0):
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for g, n in enumerate(n_per_group):
        for _ in range(n):
            u = rng.normal(0, 2)
            rows.append([10 + u + j * (0.5 + g) + rng.normal(0, 1 + 0.4 * j) for j in range(k)])
            labels.append(f"g{g}")
    return np.array(rows), labels


def test_one_way_rm_anova_matches_statsmodels_anovarm():
    from statsmodels.stats.anova import AnovaRM

    y, _ = _panel((12,), seed=1)
    long = pd.DataFrame(
        [(i, f"v{j}", y[i, j]) for i in range(len(y)) for j in range(y.shape[1])],
        columns=["id", "visit", "value"],
    )
    ref = AnovaRM(long, "value", "id", within=["visit"]).fit().anova_table.iloc[0]
    (row,) = stats.rm_anova(y)
    assert row.f == pytest.approx(ref["F Value"]) and row.p == pytest.approx(ref["Pr > F"])
    assert (row.df1, row.df2) == (ref["Num DF"], ref["Den DF"])
    # GG p uses df scaled by the Box epsilon of the sample covariance (one group)
    eps = _box_epsilon(np.cov(y.T))
    assert row.epsilon == pytest.approx(eps)
    assert row.p_gg == pytest.approx(sps.f.sf(row.f, eps * row.df1, eps * row.df2))


def test_split_plot_anova_matches_classical_partition_for_equal_groups():
    y, labels = _panel((9, 9), seed=2)
    n, k = y.shape
    lab = np.array(labels)
    grand = y.mean()
    # classical sums of squares (equal n: type I = type III)
    ss_group = k * sum((lab == g).sum() * (y[lab == g].mean() - grand) ** 2 for g in ("g0", "g1"))
    ss_subj = k * np.sum((y.mean(axis=1) - grand) ** 2)
    ss_time = n * np.sum((y.mean(axis=0) - grand) ** 2)
    cells = sum((lab == g).sum() * np.sum((y[lab == g].mean(axis=0) - grand) ** 2) for g in ("g0", "g1"))
    ss_int = cells - ss_group - ss_time
    ss_within = np.sum((y - y.mean(axis=1, keepdims=True)) ** 2)
    ss_err = ss_within - ss_time - ss_int
    df_err = (n - 2) * (k - 1)
    res = {r.effect: r for r in stats.rm_anova(y, labels)}
    assert res["group"].f == pytest.approx((ss_group / 1) / ((ss_subj - ss_group) / (n - 2)))
    assert res["visit"].f == pytest.approx((ss_time / (k - 1)) / (ss_err / df_err))
    assert res["group x visit"].f == pytest.approx((ss_int / (k - 1)) / (ss_err / df_err))
    # the between-subject test equals one-way ANOVA on the subject means (SciPy f_oneway)
    means = y.mean(axis=1)
    assert res["group"].p == pytest.approx(sps.f_oneway(means[lab == "g0"], means[lab == "g1"]).pvalue)
    assert res["visit"].p_gg >= res["visit"].p


def test_split_plot_unequal_groups_between_test_and_bad_input():
    y, labels = _panel((6, 11), seed=4)
    res = {r.effect: r for r in stats.rm_anova(y, labels)}
    means, lab = y.mean(axis=1), np.array(labels)
    assert res["group"].p == pytest.approx(sps.f_oneway(means[lab == "g0"], means[lab == "g1"]).pvalue)
    y[0, 1] = np.nan
    with pytest.raises(InvalidInput):
        stats.rm_anova(y, labels)
    with pytest.raises(InvalidInput):
        stats.rm_anova(np.ones((5, 1)))


def _long_panel(seed=1, n=40, drop=0.1):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        g = "A" if i < n // 2 else "B"
        u = rng.normal(0, 2)
        for j, v in enumerate(["baseline", "week12", "week24", "week48"]):
            if j and rng.random() < drop:
                continue
            rows.append((f"p{i}", g, v, 10 + u + j * (0.5 if g == "A" else 1.2) + rng.normal(0, 1)))
    return pd.DataFrame(rows, columns=["patient_id", "group", "visit", "value"])


@pytest.mark.parametrize("engine", ["vectorised", "statsmodels"])
def test_lmm_matches_statsmodels_mixedlm(engine):
    """Both engines against a statsmodels formula fit (treatment coding, REML) computed here."""
    import statsmodels.formula.api as smf

    d = _long_panel()
    ours = group_visit_lmm(d, ["A", "B"], ["baseline", "week12", "week24", "week48"], engine=engine)
    assert ours.extra["engine"] == engine
    m = smf.mixedlm(
        "value ~ C(group, Treatment('A')) * C(visit, Treatment('baseline'))", d, groups=d["patient_id"]
    ).fit(reml=True)
    names = [n for n in m.params.index if ":" in n]
    b = m.params[names].to_numpy()
    wald = float(b @ np.linalg.solve(m.cov_params().loc[names, names].to_numpy(), b))
    assert ours.test == "mixedlm" and ours.df == 3
    assert ours.statistic == pytest.approx(wald, rel=1e-3)
    assert ours.extra["tau2"] == pytest.approx(float(m.cov_re.iloc[0, 0]), rel=1e-3)
    assert ours.extra["sigma2"] == pytest.approx(m.scale, rel=1e-3)


def test_lmm_auto_engine_by_cohort_size(monkeypatch):
    from immunoplan.analysis import models

    d = _long_panel(n=20)
    visits = ["baseline", "week12", "week24", "week48"]
    assert group_visit_lmm(d, ["A", "B"], visits).extra["engine"] == "statsmodels"
    monkeypatch.setattr(models, "STATSMODELS_MAX_PATIENTS", 10)
    assert group_visit_lmm(d, ["A", "B"], visits).extra["engine"] == "vectorised"


def test_lmm_reports_unestimable_design():
    d = _long_panel()
    d = d[~((d["group"] == "B") & (d["visit"] == "week48"))]
    r = group_visit_lmm(d, ["A", "B"], ["baseline", "week12", "week24", "week48"])
    assert r.p is None and "not estimable" in r.note


def test_breslow_day_homogeneous_and_heterogeneous():
    same = [np.array([[5, 15], [10, 10]]), np.array([[5, 15], [10, 10]])]
    assert breslow_day(same).p == pytest.approx(1.0)
    diff = [np.array([[2, 48], [20, 30]]), np.array([[25, 25], [5, 45]])]
    assert breslow_day(diff).p < 0.001


def test_logistic_interaction_and_separation():
    rng = np.random.default_rng(5)
    n = 400
    x = rng.integers(0, 2, n).astype(float)
    s = rng.integers(0, 2, n).astype(float)
    logit = -1 + 1.5 * s - 2.0 * x * s
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    d = pd.DataFrame({"y": y, "x": x, "s": s})
    r = logistic_interaction(d, "y", "x", "s")
    assert r.test == "logistic-interaction" and r.p < 0.05
    d.loc[(d["x"] == 1) & (d["s"] == 1), "y"] = 0.0
    assert logistic_interaction(d, "y", "x", "s").p is None
