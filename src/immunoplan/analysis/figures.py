"""Report figures (matplotlib Agg; deterministic PNG/SVG: fixed SVG hash salt, no dates/versions in metadata).

- `figure1`: seed 001 Figure 1, ten panels (A ACQ, B ACT, C AQLQ, D eosinophils, E FeNO, F total IgE,
  G mite sIgE, H PEF, I FEV1, J FEV1/FVC) over visits by group, mean with 95 % CI (t quantile).
- `forest`: risk ratios (95 % CI) of systemic reactions, omalizumab vs not, per seed 000 stratum.
- `km`: Kaplan-Meier curves of time to first systemic reaction by group (lifelines), log-rank p.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy import stats as sps  # noqa: E402

from immunoplan.analysis.datasets import MEASURES, VISIT_LABELS, CohortData  # noqa: E402
from immunoplan.analysis.stats import TestResult  # noqa: E402
from immunoplan.analysis.tables import ResultTable  # noqa: E402

PANELS = (
    "acq",
    "act",
    "aqlq",
    "eosinophils_10e9_l",
    "feno_ppb",
    "total_ige_iu_ml",
    "sige_kua_l",
    "pef_pct_pred",
    "fev1_pct_pred",
    "fev1_fvc_pct",
)
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
RC: Any = {
    "svg.hashsalt": "immunoplan",
    "svg.fonttype": "none",
    "font.size": 8,
    "axes.titlesize": 9,
    "path.simplify": True,
}
PNG_META = {"Software": None}
SVG_META = {"Date": None, "Creator": None, "Format": None, "Type": None}


def save(fig: Figure, out: Path, stem: str, dpi: int = 150) -> list[Path]:
    """Write ``stem``.png and ``stem``.svg deterministically; returns both paths."""
    out.mkdir(parents=True, exist_ok=True)
    png, svg = out / f"{stem}.png", out / f"{stem}.svg"
    with matplotlib.rc_context(RC):
        fig.savefig(png, dpi=dpi, metadata=PNG_META)
        fig.savefig(svg, metadata=SVG_META)
    return [png, svg]


def _mean_ci(a: np.ndarray) -> tuple[float, float]:
    a = a[~np.isnan(a)]
    if len(a) == 0:
        return float("nan"), float("nan")
    if len(a) < 2:
        return float(a.mean()), 0.0
    half = sps.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a))
    return float(a.mean()), float(half)


def figure1(data: CohortData) -> Figure | None:
    """Seed 001 Figure 1: one panel per outcome measured at >= 2 visits (panel letters as in the paper),
    mean ± 95 % CI by group and visit. None when no outcome has two visits."""
    present = [m for m in PANELS if m in data.measures() and data.wide(m).shape[1] >= 2]
    if not present:
        return None
    data.patients.set_index("patient_id")["group"]
    ncols = min(3, len(present) + 1)
    nrows = -(-(len(present) + 1) // ncols)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(3.4 * ncols, 2.25 * nrows + 0.4), layout="constrained")
        axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
        for ax, m in zip(axes, present, strict=False):
            label, unit = MEASURES[m]
            ax.set_title(f"({chr(65 + PANELS.index(m))}) {label}", loc="left")
            w = data.wide(m)
            visits = list(w.columns)
            x = np.arange(len(visits))
            labels = data.group_of(w.index)
            for j, g in enumerate(data.groups):
                sub = w[labels == g]
                mc = [_mean_ci(sub[v].to_numpy(float)) for v in visits]
                ax.errorbar(
                    x + (j - 0.5) * 0.08,
                    [a for a, _ in mc],
                    yerr=[b for _, b in mc],
                    marker="o",
                    ms=3,
                    capsize=2,
                    color=COLOURS[j % len(COLOURS)],
                    label=g,
                    lw=1.2,
                )
            ax.set_xticks(x, [VISIT_LABELS[v] for v in visits])
            ax.set_ylabel(unit or "score")
            ax.grid(alpha=0.3)
        for ax in axes[len(present) :]:
            ax.axis("off")
        handles, names = axes[0].get_legend_handles_labels()
        axes[len(present)].legend(handles, names, loc="center", title="Group (mean ± 95 % CI)")
        fig.suptitle(f"Outcomes over follow-up by group — {data.name}")
    return fig


def forest(table: ResultTable) -> Figure | None:
    """Forest plot of the stratified risk ratios (rows of the ``stratified`` table that have one)."""
    rows = [r for r in table.rows if r.get("rr") and r["rr"].get("estimate") is not None]
    if not rows:
        return None
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(7, 0.45 * len(rows) + 1.4), layout="constrained")
        ax = fig.subplots()
        y = np.arange(len(rows))[::-1]
        est = np.array([r["rr"]["estimate"] for r in rows])
        lo = np.array([r["rr"]["low"] for r in rows])
        hi = np.array([r["rr"]["high"] for r in rows])
        ax.errorbar(est, y, xerr=[est - lo, hi - est], fmt="s", color="black", ms=4, capsize=3)
        ax.axvline(1.0, color="grey", ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_yticks(y, [f"{r['_stratification']}: {r['stratum']}" for r in rows])
        ax.set_xlabel("Risk ratio of systemic reaction, omalizumab vs not (95 % CI, log scale)")
        ax.set_title("Systemic reactions by stratum (seed 000 analysis)")
        ax.grid(alpha=0.3, axis="x")
    return fig


def km(data: CohortData) -> tuple[Figure, TestResult] | None:
    """Kaplan-Meier time to first systemic reaction by group; censored at the patient's last injection."""
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import multivariate_logrank_test

    p = data.patients[["patient_id", "group", "follow_up_days"]].copy()
    sr = data.reactions[(data.reactions["kind"] == "systemic") & data.reactions["day"].notna()]
    first = sr.groupby("patient_id")["day"].min()
    p["event"] = p["patient_id"].isin(first.index).astype(int)
    p["time"] = p["patient_id"].map(first).fillna(p["follow_up_days"])
    p = p.dropna(subset=["time"])
    if p.empty or p["event"].sum() == 0 or p["group"].nunique() < 2:
        return None
    lr = multivariate_logrank_test(p["time"], p["group"], p["event"])
    res = TestResult("log-rank", float(lr.p_value), float(lr.test_statistic), float(p["group"].nunique() - 1))
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(7, 4.2), layout="constrained")
        ax = fig.subplots()
        for j, g in enumerate(data.groups):
            sub = p[p["group"] == g]
            kmf = KaplanMeierFitter(label=f"{g} (n={len(sub)})").fit(sub["time"], sub["event"])
            sf = kmf.survival_function_.iloc[:, 0]
            ci = kmf.confidence_interval_survival_function_
            c = COLOURS[j % len(COLOURS)]
            ax.step(sf.index, sf.to_numpy(), where="post", color=c, label=kmf._label)
            ax.fill_between(ci.index, ci.iloc[:, 0], ci.iloc[:, 1], step="post", alpha=0.15, color=c)
        ax.set_xlabel("Days since first injection")
        ax.set_ylabel("Free of systemic reaction")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"Time to first systemic reaction (log-rank p = {res.p:.3g})")
        ax.legend(loc="lower left")
        ax.grid(alpha=0.3)
    return fig, res


def all_figures(
    data: CohortData, tables: list[ResultTable], out: Path, prefix: str = ""
) -> list[dict[str, Any]]:
    """Build and save every figure the data support; returns [{id, title, png, svg, tests}]."""
    made: list[dict[str, Any]] = []

    def keep(fig: Figure, name: str, title: str, tests: list[str]) -> None:
        png, svg = save(fig, out, f"{prefix}{name}")
        made.append({"id": name, "title": title, "png": png, "svg": svg, "tests": tests})

    f1 = figure1(data)
    if f1 is not None:
        keep(f1, "figure1", "Figure 1 — outcomes over follow-up (mean ± 95 % CI)", [])
    strat = next((t for t in tables if t.id == "stratified"), None)
    if strat is not None:
        ff = forest(strat)
        if ff is not None:
            keep(ff, "forest", "Forest plot — risk ratio of systemic reaction by stratum", ["risk-ratio"])
    k = km(data)
    if k is not None:
        title = f"Kaplan-Meier — time to first systemic reaction (log-rank p = {k[1].p:.3g})"
        keep(k[0], "km", title, ["log-rank"])
    return made
