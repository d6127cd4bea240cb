"""Regression-type analyses: linear mixed model (group x visit), Breslow-Day and logistic interaction tests.

`group_visit_lmm` uses statsmodels MixedLM (REML) for cohorts up to `STATSMODELS_MAX_PATIENTS` patients.
For larger cohorts `random_intercept_lmm` fits y = X b + u_patient + e by REML with the variance ratio
profiled out. It uses per-patient sums only (Woodbury identity for V_i = s2 (I + lambda 11')), so it scales
linearly to 10^5 patients where statsmodels' MixedLM (which iterates over groups in Python) does not; tests
check both engines against a statsmodels MixedLM formula fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as sps

from immunoplan.analysis.stats import TestResult
from immunoplan.errors import InvalidInput


@dataclass(frozen=True)
class LmmFit:
    names: list[str]
    beta: np.ndarray
    cov: np.ndarray
    sigma2: float
    tau2: float
    n_obs: int
    n_groups: int


def random_intercept_lmm(y: np.ndarray, x: np.ndarray, groups: np.ndarray, names: list[str]) -> LmmFit:
    """REML fit of a linear model with a random intercept per group (profiled over lambda = tau2 / s2)."""
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    gidx, codes = pd.factorize(np.asarray(groups))
    n, p = x.shape
    if n <= p:
        raise InvalidInput("data", "too few observations for the mixed model", f"> {p} observations")
    ng = np.bincount(gidx)
    sx = np.zeros((len(codes), p))
    for j in range(p):
        sx[:, j] = np.bincount(gidx, weights=x[:, j], minlength=len(codes))
    sy = np.bincount(gidx, weights=y, minlength=len(codes))
    xtx, xty, yty = x.T @ x, x.T @ y, float(y @ y)
    if np.linalg.matrix_rank(xtx) < p:
        raise InvalidInput("data", "design not estimable (empty cell)", "every group x visit cell observed")
    # gamma_i depends on n_i only: pool the per-patient sums by cluster size (a handful of distinct sizes)
    sizes, inv = np.unique(ng, return_inverse=True)
    pooled = [
        (
            float(k),
            sx[inv == i].T @ sx[inv == i],
            sx[inv == i].T @ sy[inv == i],
            float(sy[inv == i] @ sy[inv == i]),
            int(np.sum(inv == i)),
        )
        for i, k in enumerate(sizes)
    ]

    def parts(lam: float) -> tuple[np.ndarray, np.ndarray, float, float]:
        a, b, q, logdet = xtx.copy(), xty.copy(), yty, 0.0
        for k, sxx, sxy, syy, count in pooled:
            gam = lam / (1.0 + k * lam)
            a -= gam * sxx
            b -= gam * sxy
            q -= gam * syy
            logdet += count * math.log1p(k * lam)
        beta = np.linalg.solve(a, b)
        return a, beta, max(q - float(b @ beta), 1e-300), logdet

    def objective(loglam: float) -> float:
        a, _, q, logdet = parts(math.exp(loglam))
        _, la = np.linalg.slogdet(a)
        return (n - p) * math.log(q / (n - p)) + logdet + la

    res = optimize.minimize_scalar(objective, bounds=(-18.0, 9.0), method="bounded", options={"xatol": 1e-7})
    lam = math.exp(res.x)
    if objective(-18.0) <= res.fun:
        lam = 0.0
    a, beta, q, _ = parts(lam)
    s2 = q / (n - p)
    cov = s2 * np.linalg.inv(a)
    return LmmFit(names, beta, cov, s2, lam * s2, n, len(codes))


#: up to this many patients the mixed model is fitted with statsmodels MixedLM, above with the vectorised fit
STATSMODELS_MAX_PATIENTS = 2000


def statsmodels_lmm(y: np.ndarray, x: np.ndarray, groups: np.ndarray, names: list[str]) -> LmmFit:
    """The same model fitted by statsmodels ``MixedLM(...).fit(reml=True)`` (random intercept per group)."""
    import warnings

    from statsmodels.regression.mixed_linear_model import MixedLM

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = MixedLM(np.asarray(y, float), np.asarray(x, float), groups=np.asarray(groups)).fit(reml=True)
    p = x.shape[1]
    cov = np.asarray(res.cov_params())[:p, :p]
    return LmmFit(
        names,
        np.asarray(res.fe_params),
        cov,
        float(res.scale),
        float(np.asarray(res.cov_re)[0, 0]),
        int(res.nobs),
        len(res.model.group_labels),
    )


def group_visit_lmm(
    long: pd.DataFrame, group_order: Sequence[str], visit_order: Sequence[str], engine: str = "auto"
) -> TestResult:
    """Group x visit interaction of a random-intercept LMM (Wald chi-square on the interaction terms).

    ``long`` has columns patient_id, group, visit, value (NaN rows are dropped: missing visits are allowed).
    Reference levels: the first group and the first visit. ``engine``: ``statsmodels`` (MixedLM),
    ``vectorised`` (`random_intercept_lmm`) or ``auto`` (statsmodels up to `STATSMODELS_MAX_PATIENTS`).
    """
    d = long.dropna(subset=["value"])
    gc, gnames = pd.factorize(d["group"])
    vc, vnames = pd.factorize(d["visit"])
    gpos = {str(g): i for i, g in enumerate(gnames)}
    vpos = {str(v): i for i, v in enumerate(vnames)}
    keep = np.isin(gc, [gpos[g] for g in group_order if g in gpos]) & np.isin(
        vc, [vpos[v] for v in visit_order if v in vpos]
    )
    d, gc, vc = d[keep], gc[keep], vc[keep]
    groups = [g for g in group_order if g in gpos and np.any(gc == gpos[g])]
    visits = [v for v in visit_order if v in vpos and np.any(vc == vpos[v])]
    if len(groups) < 2 or len(visits) < 2:
        return TestResult("mixedlm", None, note="needs two groups and two visits")
    cols = [np.ones(len(d))]
    names = ["Intercept"]
    gcol = {g: (gc == gpos[g]).astype(float) for g in groups[1:]}
    vcol = {v: (vc == vpos[v]).astype(float) for v in visits[1:]}
    for g, c in gcol.items():
        cols.append(c)
        names.append(f"group[{g}]")
    for v, c in vcol.items():
        cols.append(c)
        names.append(f"visit[{v}]")
    inter = []
    for g, cg in gcol.items():
        for v, cv in vcol.items():
            cols.append(cg * cv)
            names.append(f"group[{g}]:visit[{v}]")
            inter.append(len(names) - 1)
    x = np.column_stack(cols)
    y, pid = d["value"].to_numpy(float), d["patient_id"].to_numpy()
    if engine == "auto":
        engine = "statsmodels" if len(np.unique(pid)) <= STATSMODELS_MAX_PATIENTS else "vectorised"
    try:
        fit = random_intercept_lmm(y, x, pid, names)  # also checks that the design is estimable
        if engine == "statsmodels":
            fit = statsmodels_lmm(y, x, pid, names)
    except InvalidInput:
        return TestResult("mixedlm", None, note="design not estimable (empty group x visit cell)")
    except (np.linalg.LinAlgError, ValueError):
        engine = "vectorised (statsmodels failed)"
    coef = fit.beta[inter]
    cov = fit.cov[np.ix_(inter, inter)]
    stat = float(coef @ np.linalg.solve(cov, coef))
    p = float(sps.chi2.sf(stat, len(inter)))
    return TestResult(
        "mixedlm",
        p,
        stat,
        float(len(inter)),
        extra={
            "n_obs": fit.n_obs,
            "n_patients": fit.n_groups,
            "tau2": fit.tau2,
            "sigma2": fit.sigma2,
            "engine": engine,
        },
    )


def breslow_day(tables: Sequence[np.ndarray]) -> TestResult:
    """Breslow-Day homogeneity of odds ratios across 2x2 strata (statsmodels, zeros shifted by 0.5)."""
    from statsmodels.stats.contingency_tables import StratifiedTable

    usable = [np.asarray(t, dtype=float) for t in tables if np.asarray(t).sum(axis=1).min() > 0]
    if len(usable) < 2:
        return TestResult("breslow-day", None, note="fewer than 2 strata with both groups")
    st = StratifiedTable([t for t in usable], shift_zeros=True)
    r = st.test_equal_odds(adjust=False)
    return TestResult("breslow-day", float(r.pvalue), float(r.statistic), float(len(usable) - 1))


def logistic_interaction(df: pd.DataFrame, outcome: str, exposure: str, stratum: str) -> TestResult:
    """LR test of ``exposure x stratum`` in a logistic model of a 0/1 ``outcome`` (statsmodels Logit).

    Separation (a cell without events) makes the MLE infinite: p is None with a note, and Breslow-Day stands.
    """
    import warnings

    import statsmodels.formula.api as smf

    d = df[[outcome, exposure, stratum]].dropna().astype(float)
    if d[outcome].nunique() < 2:
        return TestResult("logistic-interaction", None, note="outcome has one value")
    cells = d.groupby([exposure, stratum])[outcome].agg(["sum", "count"])
    if len(cells) < 4 or ((cells["sum"] == 0) | (cells["sum"] == cells["count"])).any():
        return TestResult("logistic-interaction", None, note="separation: a cell has no or only events")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            full = smf.logit(f"{outcome} ~ {exposure} * {stratum}", d).fit(disp=0)
            red = smf.logit(f"{outcome} ~ {exposure} + {stratum}", d).fit(disp=0)
    except Exception as exc:  # noqa: BLE001 - numerical failure is reported, not raised
        return TestResult("logistic-interaction", None, note=f"did not converge: {type(exc).__name__}")
    lr = 2 * (full.llf - red.llf)
    return TestResult("logistic-interaction", float(sps.chi2.sf(lr, 1)), float(lr), 1.0)
