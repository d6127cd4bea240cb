"""Statistical tests for cohort tables, each named explicitly (no library default decides silently).

Every function returns a `TestResult` whose ``test`` is a stable machine name (listed in `TESTS`, which the
report's methods paragraph prints). Choices follow seed 001's methods (Shapiro-Wilk for normality, Student t,
chi-square or Fisher exact, repeated-measures ANOVA, Benjamini-Hochberg) and seed 000's stratified analysis
(risk difference and ratio with 95 % CI, interaction test). Computation is delegated to SciPy/statsmodels only
where the test is fully specified by the call; the Greenhouse-Geisser correction, Benjamini-Hochberg, the
Newcombe interval and the decision rules are implemented here and tested against independent computations.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from immunoplan.errors import InvalidInput

ALPHA = 0.05

#: machine name -> description used in tables and in the report's methods paragraph
TESTS: dict[str, str] = {
    "shapiro": "Shapiro-Wilk test of normality (per group, alpha 0.05)",
    "levene": "Levene test of equal variances (centre = mean)",
    "student": "Student two-sample t-test (pooled variance, two-sided)",
    "welch": "Welch two-sample t-test (Satterthwaite df, two-sided)",
    "mann-whitney": "Mann-Whitney U test (two-sided; exact if n < 8 per group without ties, else normal "
    "approximation with continuity correction)",
    "paired-t": "paired t-test (two-sided)",
    "wilcoxon": "Wilcoxon signed-rank test (two-sided, zero differences dropped; exact without ties, else "
    "normal approximation with continuity correction)",
    "chi2": "Pearson chi-square test without continuity correction",
    "chi2-yates": "chi-square test with Yates' continuity correction (2x2)",
    "fisher": "Fisher exact test (two-sided, 2x2)",
    "rm-anova-gg": "repeated-measures ANOVA (split-plot: group between, visit within) with "
    "Greenhouse-Geisser correction of the within-subject degrees of freedom",
    "mixedlm": "linear mixed model (REML, random intercept per patient; fixed effects group, visit and "
    "group x visit; Wald chi-square test of the interaction; statsmodels MixedLM up to 2000 patients, above "
    "immunoplan's vectorised REML fit, which gives the same estimates)",
    "breslow-day": "Breslow-Day test of homogeneity of odds ratios across strata (0.5 added to zero cells)",
    "logistic-interaction": "logistic regression with a stratum x omalizumab interaction "
    "(likelihood-ratio test)",
    "risk-difference": "risk difference with Newcombe hybrid-score 95 % CI (Wilson intervals)",
    "risk-ratio": "risk ratio with Katz log 95 % CI (0.5 added to every cell when a cell is zero)",
    "log-rank": "log-rank test (lifelines)",
    "bh": "Benjamini-Hochberg false discovery rate adjustment within each table",
}


@dataclass(frozen=True)
class TestResult:
    """One test: machine name, statistic, degrees of freedom, p-value and a note on any special case."""

    test: str
    p: float | None
    statistic: float | None = None
    df: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return TESTS.get(self.test, self.test)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _clean(x: Sequence[float] | np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    return a[~np.isnan(a)]


def _f(x: Any) -> float | None:
    if x is None:
        return None
    v = float(x)
    return None if math.isnan(v) else v


# --- normality and continuous comparisons -------------------------------------------------------------


def shapiro(x: Sequence[float] | np.ndarray) -> TestResult:
    """Shapiro-Wilk W and p (seed 001 methods). Fewer than 3 values or zero spread: p is None."""
    a = _clean(x)
    if len(a) < 3 or np.ptp(a) == 0:
        return TestResult("shapiro", None, note="not testable (n < 3 or no spread)")
    with warnings.catch_warnings():  # SciPy warns that p is approximate above n = 5000: noted instead
        warnings.simplefilter("ignore", UserWarning)
        w, p = sps.shapiro(a)
    return TestResult("shapiro", float(p), float(w), note="approximate p (n > 5000)" if len(a) > 5000 else "")


def is_normal(*samples: Sequence[float] | np.ndarray, alpha: float = ALPHA) -> bool:
    """True when no sample rejects normality by Shapiro-Wilk at ``alpha`` (untestable: normal)."""
    for s in samples:
        r = shapiro(s)
        if r.p is not None and r.p < alpha:
            return False
    return True


def _need(field_name: str, a: np.ndarray, n: int) -> None:
    if len(a) < n:
        raise InvalidInput(field_name, f"needs at least {n} values, got {len(a)}", f">= {n} values")


def t_from_summary(
    mean1: float, sd1: float, n1: int, mean2: float, sd2: float, n2: int, *, equal_var: bool
) -> TestResult:
    """Two-sample t-test from summary statistics (Student if ``equal_var`` else Welch), two-sided.

    Edge cases: both SDs zero -> p = 1 when means are equal, else p = 0 (infinite t), with a note.
    """
    test = "student" if equal_var else "welch"
    if n1 < 2 or n2 < 2:
        raise InvalidInput("n", "each group needs at least 2 observations for a t-test", ">= 2")
    if sd1 < 0 or sd2 < 0:
        raise InvalidInput("sd", "standard deviations cannot be negative", ">= 0")
    v1, v2 = sd1**2 / n1, sd2**2 / n2
    df: float
    if equal_var:
        df = n1 + n2 - 2
        sp2 = ((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / df
        se = math.sqrt(sp2 * (1 / n1 + 1 / n2))
    else:
        se = math.sqrt(v1 + v2)
        df = (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1)) if se > 0 else float(n1 + n2 - 2)
    diff = mean1 - mean2
    if se == 0:
        return TestResult(
            test, 1.0 if diff == 0 else 0.0, None, float(df), note="zero variance in both groups"
        )
    t = diff / se
    p = 2 * sps.t.sf(abs(t), df)
    return TestResult(test, float(p), float(t), float(df))


def student_t(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> TestResult:
    """Student's pooled-variance t-test (seed 001 methods)."""
    x, y = _clean(a), _clean(b)
    _need("values", x, 2)
    _need("values", y, 2)
    return t_from_summary(x.mean(), x.std(ddof=1), len(x), y.mean(), y.std(ddof=1), len(y), equal_var=True)


def welch_t(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> TestResult:
    """Welch's unequal-variance t-test (Satterthwaite degrees of freedom)."""
    x, y = _clean(a), _clean(b)
    _need("values", x, 2)
    _need("values", y, 2)
    return t_from_summary(x.mean(), x.std(ddof=1), len(x), y.mean(), y.std(ddof=1), len(y), equal_var=False)


def mann_whitney(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> TestResult:
    """Mann-Whitney U, two-sided; exact if both n < 8 and no ties, else asymptotic (continuity-corrected)."""
    x, y = _clean(a), _clean(b)
    _need("values", x, 1)
    _need("values", y, 1)
    ties = len(np.unique(np.concatenate([x, y]))) < len(x) + len(y)
    method = "exact" if (len(x) < 8 and len(y) < 8 and not ties) else "asymptotic"
    r = sps.mannwhitneyu(x, y, use_continuity=True, alternative="two-sided", method=method)
    return TestResult("mann-whitney", float(r.pvalue), float(r.statistic), note=method)


def levene(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> TestResult:
    x, y = _clean(a), _clean(b)
    if len(x) < 2 or len(y) < 2 or (np.ptp(x) == 0 and np.ptp(y) == 0):
        return TestResult("levene", None, note="not testable")
    r = sps.levene(x, y, center="mean")
    return TestResult("levene", _f(r.pvalue), _f(r.statistic))


def compare_continuous(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *, rule: str = "seed001"
) -> TestResult:
    """Between-group comparison of a continuous variable by an explicit rule.

    ``seed001`` (default): Shapiro-Wilk in both groups; normal -> Student t (Levene p >= 0.05) or Welch t
    (Levene p < 0.05); not normal -> Mann-Whitney U. ``student``/``welch``/``mann-whitney`` force one test.
    """
    if rule == "student":
        return student_t(a, b)
    if rule == "welch":
        return welch_t(a, b)
    if rule == "mann-whitney":
        return mann_whitney(a, b)
    if rule != "seed001":
        raise InvalidInput("rule", f"unknown rule {rule!r}", "seed001, student, welch, mann-whitney")
    if not is_normal(a, b):
        return mann_whitney(a, b)
    lev = levene(a, b)
    return welch_t(a, b) if (lev.p is not None and lev.p < ALPHA) else student_t(a, b)


def paired_t(before: Sequence[float] | np.ndarray, after: Sequence[float] | np.ndarray) -> TestResult:
    """Paired t-test on complete pairs (statistic = mean(after - before) / SE)."""
    d = _diffs(before, after)
    sd = d.std(ddof=1)
    if sd == 0:
        return TestResult("paired-t", 1.0 if d.mean() == 0 else 0.0, note="constant difference")
    t = d.mean() / (sd / math.sqrt(len(d)))
    return TestResult("paired-t", float(2 * sps.t.sf(abs(t), len(d) - 1)), float(t), float(len(d) - 1))


def wilcoxon(before: Sequence[float] | np.ndarray, after: Sequence[float] | np.ndarray) -> TestResult:
    """Wilcoxon signed-rank, two-sided, zero differences dropped; exact below 50 pairs without ties/zeros,
    else normal approximation with continuity correction (as R's wilcox.test)."""
    d = _diffs(before, after)
    nz = d[d != 0]
    if len(nz) == 0:
        return TestResult("wilcoxon", 1.0, note="all differences zero")
    exact = len(nz) < 50 and len(np.unique(np.abs(nz))) == len(nz) and len(nz) == len(d)
    r = sps.wilcoxon(
        d,
        zero_method="wilcox",
        correction=not exact,
        alternative="two-sided",
        method="exact" if exact else "approx",
    )
    return TestResult("wilcoxon", float(r.pvalue), float(r.statistic), note="exact" if exact else "approx")


def _diffs(before: Sequence[float] | np.ndarray, after: Sequence[float] | np.ndarray) -> np.ndarray:
    x, y = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if x.shape != y.shape:
        raise InvalidInput("pairs", "before and after must have the same length", "paired values")
    keep = ~(np.isnan(x) | np.isnan(y))
    d = y[keep] - x[keep]
    _need("pairs", d, 2)
    return d


def paired(before: Sequence[float] | np.ndarray, after: Sequence[float] | np.ndarray) -> TestResult:
    """Within-group change (e.g. baseline vs week 48) on complete pairs: differences normal by Shapiro-Wilk ->
    paired t-test, otherwise Wilcoxon signed-rank."""
    d = _diffs(before, after)
    return paired_t(before, after) if is_normal(d) else wilcoxon(before, after)


# --- categorical ------------------------------------------------------------------------------------------


def _table(table: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
    t = np.asarray(table, dtype=float)
    if t.ndim != 2 or t.shape[0] < 2 or t.shape[1] < 2:
        raise InvalidInput("table", "needs at least 2 rows and 2 columns", "r x c table of counts, r, c >= 2")
    if np.any(t < 0) or np.any(t != np.round(t)):
        raise InvalidInput("table", "counts must be non-negative integers", "integers >= 0")
    return t.astype(np.int64)


def expected_counts(table: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
    t = _table(table).astype(float)
    total = t.sum()
    if total == 0:
        return np.zeros_like(t)
    return np.outer(t.sum(axis=1), t.sum(axis=0)) / total


def chi2(table: Sequence[Sequence[int]] | np.ndarray, *, yates: bool = False) -> TestResult:
    """Pearson chi-square (``yates`` applies Yates' correction; only meaningful for 2x2).

    A row or column of zeros makes the test undefined: p = 1 (no evidence of association) with a note.
    """
    t = _table(table)
    name = "chi2-yates" if yates else "chi2"
    if yates and t.shape != (2, 2):
        raise InvalidInput("test", "Yates' correction applies to 2x2 tables only", "chi2 for r x c tables")
    if np.any(t.sum(axis=0) == 0) or np.any(t.sum(axis=1) == 0):
        return TestResult(name, 1.0, 0.0, note="empty row or column")
    stat, p, dof, _ = sps.chi2_contingency(t, correction=yates)
    return TestResult(name, float(p), float(stat), float(dof))


def fisher(table: Sequence[Sequence[int]] | np.ndarray) -> TestResult:
    """Fisher exact test, two-sided, 2x2 (p as in R's fisher.test). ``extra['odds_ratio']`` is ad/bc."""
    t = _table(table)
    if t.shape != (2, 2):
        raise InvalidInput("table", "Fisher exact test is implemented for 2x2 tables", "2x2 table")
    res = sps.fisher_exact(t, alternative="two-sided")
    return TestResult("fisher", min(1.0, float(res.pvalue)), note="", extra={"odds_ratio": _f(res.statistic)})


def compare_categorical(table: Sequence[Sequence[int]] | np.ndarray) -> TestResult:
    """Explicit rule: 2x2 with any expected count < 5 -> Fisher exact; otherwise Pearson chi-square
    without continuity correction (r x c tables with small expected counts get a note)."""
    t = _table(table)
    exp = expected_counts(t)
    small = int(np.sum(exp < 5))
    if t.shape == (2, 2) and small:
        return fisher(t)
    r = chi2(t)
    if small:
        return TestResult(r.test, r.p, r.statistic, r.df, note=f"{small} cells with expected count < 5")
    return r


# --- risks ------------------------------------------------------------------------------------------------


def _z(level: float) -> float:
    return float(sps.norm.ppf(1 - (1 - level) / 2))


def wilson(events: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for one proportion."""
    if n <= 0:
        raise InvalidInput("n", "must be positive", "> 0")
    z = _z(level)
    p = events / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _check_counts(e1: int, n1: int, e0: int, n0: int) -> None:
    for name, e, n in (("events1", e1, n1), ("events0", e0, n0)):
        if n <= 0:
            raise InvalidInput(name.replace("events", "n"), "group size must be positive", "> 0")
        if e < 0 or e > n:
            raise InvalidInput(name, f"{e} events out of {n}", f"0..{n}")


@dataclass(frozen=True)
class Effect:
    """An effect estimate with its confidence interval and method (machine name in `TESTS`)."""

    method: str
    estimate: float | None
    low: float | None
    high: float | None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def risk_difference(e1: int, n1: int, e0: int, n0: int, level: float = 0.95) -> Effect:
    """p1 - p0 with Newcombe's hybrid score interval (Newcombe 1998, method 10)."""
    _check_counts(e1, n1, e0, n0)
    p1, p0 = e1 / n1, e0 / n0
    l1, u1 = wilson(e1, n1, level)
    l0, u0 = wilson(e0, n0, level)
    d = p1 - p0
    low = d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return Effect("risk-difference", d, max(-1.0, low), min(1.0, high))  # clamp float rounding at +-1


def risk_ratio(e1: int, n1: int, e0: int, n0: int, level: float = 0.95) -> Effect:
    """p1 / p0 with the Katz log interval; if any cell is zero, 0.5 is added to every cell (noted).

    Both groups without events: the ratio is undefined (estimate None).
    """
    _check_counts(e1, n1, e0, n0)
    if e1 == 0 and e0 == 0:
        return Effect("risk-ratio", None, None, None, note="no events in either group")
    note = ""
    a, b, c, d = float(e1), float(n1 - e1), float(e0), float(n0 - e0)
    if min(a, b, c, d) == 0:
        a, b, c, d = a + 0.5, b + 0.5, c + 0.5, d + 0.5
        note = "0.5 added to each cell"
    m1, m0 = a + b, c + d
    rr = (a / m1) / (c / m0)
    se = math.sqrt(1 / a - 1 / m1 + 1 / c - 1 / m0)
    z = _z(level)
    return Effect("risk-ratio", rr, rr * math.exp(-z * se), rr * math.exp(z * se), note)


# --- multiple comparisons ---------------------------------------------------------------------------------


def benjamini_hochberg(pvalues: Sequence[float | None]) -> list[float | None]:
    """Benjamini-Hochberg adjusted p-values (step-up, monotone, capped at 1); None/NaN entries are skipped."""
    idx = [i for i, p in enumerate(pvalues) if p is not None and not math.isnan(p)]
    out: list[float | None] = [None] * len(pvalues)
    m = len(idx)
    if m == 0:
        return out
    ps = np.array([float(pvalues[i]) for i in idx])  # type: ignore[arg-type]
    order = np.argsort(ps, kind="mergesort")
    ranked = ps[order] * m / np.arange(1, m + 1)
    adj = np.minimum.accumulate(ranked[::-1])[::-1]
    adj = np.minimum(adj, 1.0)
    res = np.empty(m)
    res[order] = adj
    for j, i in enumerate(idx):
        out[i] = float(res[j])
    return out


# --- repeated measures ------------------------------------------------------------------------------------


def orthonormal_contrasts(k: int) -> np.ndarray:
    """k x (k-1) orthonormal contrasts (columns orthogonal to the unit vector), by QR of Helmert contrasts."""
    h = np.zeros((k, k - 1))
    for j in range(1, k):
        h[:j, j - 1] = 1.0
        h[j, j - 1] = -float(j)
    q, _ = np.linalg.qr(h)
    return q


def gg_epsilon(cov: np.ndarray) -> float:
    """Greenhouse-Geisser epsilon from a k x k covariance matrix of the repeated measures.

    epsilon = tr(C'SC)^2 / ((k-1) tr((C'SC)^2)) with C orthonormal contrasts (Greenhouse & Geisser 1959).
    """
    c = orthonormal_contrasts(cov.shape[0])
    return _epsilon(c.T @ cov @ c)


def _epsilon(s: np.ndarray) -> float:
    """GG epsilon from the (k-1) x (k-1) covariance of orthonormal contrasts, bounded to [1/(k-1), 1]."""
    km1 = s.shape[0]
    denom = km1 * np.trace(s @ s)
    if denom == 0:
        return 1.0
    return float(min(1.0, max(1.0 / km1, np.trace(s) ** 2 / denom)))


@dataclass(frozen=True)
class AnovaRow:
    effect: str
    ss: float
    df1: float
    df2: float
    f: float | None
    p: float | None
    p_gg: float | None
    epsilon: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fp(f: float | None, d1: float, d2: float) -> float | None:
    if f is None or d2 <= 0 or d1 <= 0:
        return None
    return float(sps.f.sf(f, d1, d2))


def rm_anova(values: np.ndarray, groups: Sequence[Any] | np.ndarray | None = None) -> list[AnovaRow]:
    """Repeated-measures ANOVA on complete cases: ``values`` is subjects x visits (no NaN).

    With ``groups`` (one label per subject, >= 2 groups) this is the split-plot design of seed 001: between
    effect ``group``, within effects ``visit`` and ``group x visit`` (type III sums of squares, unweighted
    group means, as SPSS GLM repeated measures). Within-subject p-values are given uncorrected and with the
    Greenhouse-Geisser epsilon estimated from the pooled within-group covariance of the visits.
    """
    y = np.asarray(values, dtype=float)
    if y.ndim != 2 or y.shape[1] < 2:
        raise InvalidInput(
            "values", "needs subjects x visits with at least 2 visits", "2-D array, >= 2 columns"
        )
    if np.isnan(y).any():
        raise InvalidInput("values", "repeated-measures ANOVA needs complete cases", "no missing values")
    n, k = y.shape
    labels = np.zeros(n, dtype=int) if groups is None else pd.factorize(np.asarray(groups), sort=True)[0]
    levels = np.unique(labels)
    g = len(levels)
    sizes = np.array([np.sum(labels == lv) for lv in levels])
    if np.any(sizes < 2) or n - g < 1:
        raise InvalidInput("values", "each group needs at least 2 complete subjects", ">= 2 per group")
    c = orthonormal_contrasts(k)
    z = y @ c  # n x (k-1)
    zbar = np.array([z[labels == lv].mean(axis=0) for lv in levels])  # g x (k-1)
    resid = z - zbar[labels]
    e = resid.T @ resid
    df_err = float((n - g) * (k - 1))
    ss_err = float(np.trace(e))
    cov = e / (n - g)
    eps = _epsilon(cov)
    u = zbar.mean(axis=0)
    h = float(np.sum(1.0 / sizes)) / g**2
    ss_time = float(u @ u) / h
    rows: list[AnovaRow] = []

    def within(effect: str, ss: float, df1: float) -> AnovaRow:
        f = (ss / df1) / (ss_err / df_err) if ss_err > 0 else None
        return AnovaRow(effect, ss, df1, df_err, f, _fp(f, df1, df_err), _fp(f, df1 * eps, df_err * eps), eps)

    if g >= 2:
        s = y.mean(axis=1)
        sbar_g = np.array([s[labels == lv].mean() for lv in levels])
        ss_b = float(k * np.sum(sizes * (sbar_g - s.mean()) ** 2))
        ss_w = float(k * np.sum((s - sbar_g[labels]) ** 2))
        f = (ss_b / (g - 1)) / (ss_w / (n - g)) if ss_w > 0 else None
        rows.append(AnovaRow("group", ss_b, g - 1, n - g, f, _fp(f, g - 1, n - g), None, None))
    rows.append(within("visit", ss_time, float(k - 1)))
    if g >= 2:
        zw = (sizes[:, None] * zbar).sum(axis=0) / n
        ss_int = float(np.sum(sizes[:, None] * (zbar - zw) ** 2))
        rows.append(within("group x visit", ss_int, float((g - 1) * (k - 1))))
    return rows
