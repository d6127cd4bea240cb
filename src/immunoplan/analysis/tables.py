"""Report tables built from a `CohortData`: each row names its test; p-values get a Benjamini-Hochberg column.

Tables follow seed 001 (Table 1 baseline, Tables 2-4 longitudinal outcomes, Table 5 adverse reactions) and
seed 000 (systemic reactions stratified by age group, sIgE grade and sIgE/total-IgE ratio; omalizumab within
each stratum; interaction; target-dose completion; efficacy by ratio > 16 %). Stratum cut-offs are read from
the reference file ``assess_sr_risk`` and echoed as the table's basis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from immunoplan import reference
from immunoplan.analysis import stats
from immunoplan.analysis.datasets import MEASURES, VISIT_LABELS, VISITS, CohortData
from immunoplan.analysis.models import breslow_day, group_visit_lmm, logistic_interaction


@dataclass
class ResultTable:
    """A rendered table: ordered columns, rows of plain values, notes, tests used and data basis."""

    id: str
    title: str
    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tests: set[str] = field(default_factory=set)
    basis: list[dict[str, Any]] = field(default_factory=list)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [{c: r.get(c, "") for c in self.columns} for r in self.rows], columns=self.columns
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "columns": self.columns,
            "rows": self.rows,
            "notes": self.notes,
            "tests": sorted(self.tests),
            "basis": self.basis,
        }


# --- formatting -------------------------------------------------------------------------------------------


def fmt_p(p: float | None) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _dec(values: np.ndarray) -> int:
    m = float(np.nanmedian(np.abs(values))) if len(values) else 0.0
    return 2 if m < 10 else 1


def describe(values: Sequence[float] | np.ndarray, normal: bool) -> str:
    """mean ± SD when ``normal``, else median [Q1, Q3] (quartiles by linear interpolation, numpy default)."""
    a = np.asarray(values, dtype=float)
    a = a[~np.isnan(a)]
    if len(a) == 0:
        return "-"
    d = _dec(a)
    if normal:
        sd = a.std(ddof=1) if len(a) > 1 else float("nan")
        return f"{a.mean():.{d}f} ± {sd:.{d}f}"
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return f"{med:.{d}f} [{q1:.{d}f}, {q3:.{d}f}]"


def count_pct(k: int, n: int) -> str:
    return f"{k} ({100 * k / n:.1f}%)" if n else "-"


def add_bh(table: ResultTable, key: str = "p_value", out: str = "p (BH)") -> None:
    """Benjamini-Hochberg across the table's raw p-values, shown next to them."""
    adj = stats.benjamini_hochberg([r.get(key) for r in table.rows])
    for r, a in zip(table.rows, adj, strict=True):
        r[out] = fmt_p(a) if r.get(key) is not None else ""
        r[key + "_bh"] = a
    table.tests.add("bh")


def _record(row: dict[str, Any], res: stats.TestResult, table: ResultTable) -> None:
    row["p"] = fmt_p(res.p)
    row["p_value"] = res.p
    row["test"] = res.test + (f" ({res.note})" if res.note and res.test != "mann-whitney" else "")
    table.tests.add(res.test)


# --- Table 1 ----------------------------------------------------------------------------------------------

CONTINUOUS = {
    "age_years": "Age (years)",
    "bmi_kg_m2": "BMI (kg/m2)",
    "total_ige_iu_ml": "Total IgE (IU/mL)",
    "sige_kua_l": "Mite sIgE (kUA/L)",
    "sige_total_ratio_pct": "sIgE/total IgE (%)",
}
CATEGORICAL = {
    "sex": "Sex",
    "age_group": "Age group",
    "smoking": "Smoking",
    "family_history_asthma": "Family history of asthma",
    "comorbid_allergies": "Comorbid allergies",
    "previous_biologics": "Previous biologics",
    "asthma_step": "GINA step",
    "sige_class": "sIgE grade",
}


def table1(data: CohortData) -> ResultTable:
    """Baseline characteristics by group (seed 001 Table 1); one "all" column without two study groups."""
    g = data.groups
    p = data.patients
    if len(g) < 2:
        p, g = p.assign(group="all"), ["all"]
    cols = [
        "variable",
        "level",
        *[f"{x} (n={int((p['group'] == x).sum())})" for x in g],
        "p",
        "p (BH)",
        "test",
    ]
    t = ResultTable("table1", "Baseline characteristics", cols)
    t.notes.append(
        "Continuous: mean ± SD when Shapiro-Wilk does not reject normality in either group, else "
        "median [Q1, Q3]; Student t (Welch if Levene p < 0.05) or Mann-Whitney U. Categorical: "
        "n (%); Fisher exact for 2x2 tables with an expected count < 5, else Pearson chi-square."
    )
    t.tests.update({"shapiro", "levene"})
    for col, label in CONTINUOUS.items():
        if col not in p or p[col].notna().sum() == 0:
            continue
        xs = [p.loc[p["group"] == x, col].astype(float).dropna().to_numpy() for x in g]
        if any(len(x) < 2 for x in xs):
            continue
        normal = stats.is_normal(*xs)
        row: dict[str, Any] = {"variable": label, "level": "mean ± SD" if normal else "median [IQR]"}
        for name, x in zip(cols[2 : 2 + len(g)], xs, strict=True):
            row[name] = describe(x, normal)
        if len(g) == 2:
            _record(row, stats.compare_continuous(xs[0], xs[1]), t)
        t.rows.append(row)
    for col, label in CATEGORICAL.items():
        if col not in p or p[col].notna().sum() == 0:
            continue
        s = p[col]
        if col == "sige_class":
            s = s.map(lambda c: None if pd.isna(c) else ("1-2" if c <= 2 else "3-6"))
        elif col in ("family_history_asthma", "comorbid_allergies", "previous_biologics"):
            s = s.map(lambda v: None if pd.isna(v) else ("yes" if v else "no"))
        ct = pd.crosstab(s, p["group"]).reindex(columns=g, fill_value=0)
        if len(ct) < 2:
            continue
        res = stats.compare_categorical(ct.to_numpy()) if len(g) == 2 else None
        for i, (level, counts) in enumerate(ct.iterrows()):
            row = {"variable": label if i == 0 else "", "level": str(level)}
            for name, grp in zip(cols[2 : 2 + len(g)], g, strict=True):
                row[name] = count_pct(int(counts[grp]), int(ct[grp].sum()))
            if i == 0 and res is not None:
                _record(row, res, t)
            t.rows.append(row)
    add_bh(t)
    return t


# --- Tables 2-4: longitudinal -----------------------------------------------------------------------------

LONGITUDINAL = {
    "table2": ("Clinical outcomes over follow-up", ("act", "acq", "aqlq")),
    "table3": (
        "Laboratory markers over follow-up",
        ("total_ige_iu_ml", "sige_kua_l", "eosinophils_10e9_l", "feno_ppb"),
    ),
    "table4": ("Pulmonary function over follow-up", ("fev1_pct_pred", "pef_pct_pred", "fev1_fvc_pct")),
}


def _measure_label(m: str) -> str:
    label, unit = MEASURES[m]
    return f"{label} ({unit})" if unit else label


def longitudinal(data: CohortData, table_id: str) -> ResultTable | None:
    """Per visit: summary by group and between-group p; on the last visit: within-group baseline vs last."""
    title, measures = LONGITUDINAL[table_id]
    g = data.groups
    p = data.patients
    present = [m for m in measures if m in data.measures()]
    if len(g) != 2 or not present:
        return None
    cols = ["measure", "visit", *g, "p", "p (BH)", "test", *[f"within {x}: baseline vs last" for x in g]]
    t = ResultTable(table_id, title, cols)
    t.notes.append(
        "Between groups at each visit: Student t (Welch if Levene p < 0.05) when Shapiro-Wilk does "
        "not reject normality, else Mann-Whitney U. Within groups (baseline vs last visit, complete "
        "pairs): paired t-test when the differences are normal, else Wilcoxon signed-rank."
    )
    p.set_index("patient_id")["group"]
    for m in present:
        w = data.wide(m)
        visits = [v for v in VISITS if v in w.columns]
        for i, v in enumerate(visits):
            xs = [w.loc[data.group_of(w.index) == x, v].dropna().to_numpy() for x in g]
            normal = stats.is_normal(*xs)
            row: dict[str, Any] = {"measure": _measure_label(m) if i == 0 else "", "visit": VISIT_LABELS[v]}
            for x, arr in zip(g, xs, strict=True):
                row[x] = describe(arr, normal)
            if all(len(a) >= 2 for a in xs):
                _record(row, stats.compare_continuous(xs[0], xs[1]), t)
            if i == len(visits) - 1 and i > 0:
                for x in g:
                    sub = w[data.group_of(w.index) == x]
                    if sub[[visits[0], v]].dropna().shape[0] >= 2:
                        r = stats.paired(sub[visits[0]].to_numpy(), sub[v].to_numpy())
                        row[f"within {x}: baseline vs last"] = f"{fmt_p(r.p)} ({r.test})"
                        t.tests.add(r.test)
            t.rows.append(row)
    add_bh(t)
    return t


def repeated_measures(data: CohortData) -> ResultTable | None:
    """RM-ANOVA (group between, visit within, Greenhouse-Geisser) and LMM group x visit, per measure."""
    g = data.groups
    if len(g) != 2 or data.outcomes.empty:
        return None
    cols = [
        "measure",
        "visits",
        "n complete",
        "group p",
        "visit p (GG)",
        "group x visit p (GG)",
        "GG epsilon",
        "LMM n",
        "LMM group x visit p",
        "LMM engine",
    ]
    t = ResultTable("repeated", "Repeated-measures analyses (group x visit)", cols)
    t.notes.append(
        "RM-ANOVA on patients with every visit (type III sums of squares; Greenhouse-Geisser "
        "epsilon from the pooled within-group covariance). The linear mixed model uses every "
        "available value (random intercept per patient, REML) and tests group x visit by Wald "
        "chi-square."
    )
    t.tests.update({"rm-anova-gg", "mixedlm"})
    data.patients.set_index("patient_id")["group"]
    for m in MEASURES:
        w = data.wide(m)
        visits = [v for v in VISITS if v in w.columns]
        if len(visits) < 2:
            continue
        cc = w[visits].dropna()
        labels = data.group_of(cc.index)
        row: dict[str, Any] = {"measure": _measure_label(m), "visits": len(visits), "n complete": len(cc)}
        if all((labels == x).sum() >= 2 for x in g):
            res = {r.effect: r for r in stats.rm_anova(cc.to_numpy(), np.asarray(labels))}
            row["group p"] = fmt_p(res["group"].p)
            row["visit p (GG)"] = fmt_p(res["visit"].p_gg)
            row["group x visit p (GG)"] = fmt_p(res["group x visit"].p_gg)
            row["GG epsilon"] = f"{res['visit'].epsilon:.3f}"
            row["p_value"] = res["group x visit"].p_gg
        long = data.with_group(data.measure(m))
        lmm = group_visit_lmm(long, g, visits)
        row["LMM n"] = lmm.extra.get("n_obs", "")
        row["LMM group x visit p"] = fmt_p(lmm.p) + (f" ({lmm.note})" if lmm.note else "")
        row["LMM engine"] = lmm.extra.get("engine", "")
        row["lmm_p"] = lmm.p
        t.rows.append(row)
    if not t.rows:
        return None
    add_bh(t, out="group x visit p (GG, BH)")
    t.columns.insert(6, "group x visit p (GG, BH)")
    return t


# --- Table 5: adverse reactions ---------------------------------------------------------------------------

CLASS_LABELS = {
    "local": "Local injection-site reactions",
    "systemic-mild": "Mild systemic reactions",
    "systemic-moderate": "Moderate systemic reactions",
    "systemic-severe": "Severe systemic reactions",
    "systemic-any": "Any systemic reaction",
}


def _patients_with(rx: pd.DataFrame, ids: pd.Series) -> int:
    return int(ids.isin(rx["patient_id"]).sum())


def adverse_reactions(data: CohortData) -> ResultTable | None:
    """Patients with >= 1 reaction of each class per follow-up period, by group (seed 001 Table 5)."""
    g = data.groups
    p = data.patients
    rx = data.reactions
    if len(g) != 2 or (rx.empty and data.injections.empty):
        return None
    ns = {x: int((p["group"] == x).sum()) for x in g}
    cols = ["period", "reaction", *[f"{x} (n={ns[x]})" for x in g], "p", "p (BH)", "test"]
    t = ResultTable("table5", "Adverse reactions by follow-up period", cols)
    t.notes.append(
        "Patients with at least one reaction of the class in the period (reactions linked to a visit, "
        "else assigned by days since the first injection). Fisher exact for 2x2 tables with an "
        "expected count < 5, else Pearson chi-square."
    )
    ids = {x: p.loc[p["group"] == x, "patient_id"] for x in g}
    periods = [v for v in VISITS if v != "baseline" and (rx["visit"] == v).any()] + ["all"]
    classes = [c for c in CLASS_LABELS if c == "systemic-any" or (rx["reaction_class"] == c).any()]
    for period in periods:
        sub = rx if period == "all" else rx[rx["visit"] == period]
        for i, c in enumerate(classes):
            sel = sub[sub["kind"] == "systemic"] if c == "systemic-any" else sub[sub["reaction_class"] == c]
            k = [_patients_with(sel, ids[x]) for x in g]
            row: dict[str, Any] = {
                "period": (VISIT_LABELS.get(period, "Whole follow-up")) if i == 0 else "",
                "reaction": CLASS_LABELS[c],
            }
            for x, kk in zip(g, k, strict=True):
                row[f"{x} (n={ns[x]})"] = count_pct(kk, ns[x])
            _record(row, stats.compare_categorical([[k[0], ns[g[0]] - k[0]], [k[1], ns[g[1]] - k[1]]]), t)
            t.rows.append(row)
    add_bh(t)
    return t


def incidence(data: CohortData) -> ResultTable | None:
    """Reactions per injection and patients with a reaction, by group and kind."""
    g = data.groups
    if len(g) != 2 or data.injections.empty:
        return None
    cols = [
        "group",
        "patients",
        "injections",
        "local per 100 injections",
        "systemic per 100 injections",
        "patients with local",
        "patients with systemic",
    ]
    t = ResultTable("incidence", "Incidence per injection and per patient", cols)
    inj = data.with_group(data.injections)
    rx = data.with_group(data.reactions)
    for x in g:
        ids = data.patients.loc[data.patients["group"] == x, "patient_id"]
        n_inj = int((inj["group"] == x).sum())
        row: dict[str, Any] = {"group": x, "patients": len(ids), "injections": n_inj}
        for kind in ("local", "systemic"):
            r = rx[(rx["group"] == x) & (rx["kind"] == kind)]
            row[f"{kind} per 100 injections"] = f"{100 * len(r) / n_inj:.2f} ({len(r)})" if n_inj else "-"
            row[f"patients with {kind}"] = count_pct(_patients_with(r, ids), len(ids))
        t.rows.append(row)
    return t


# --- seed 000: stratified systemic-reaction analysis --------------------------------------------------------


def strata_definitions() -> tuple[
    dict[str, tuple[str, Callable[[pd.DataFrame], pd.Series]]], list[dict[str, Any]]
]:
    """Stratifications of seed 000 with the cut-offs from ``assess_sr_risk`` (and the basis to echo)."""
    risk = reference.load("assess_sr_risk")
    low_classes = set(risk["tiers"][0]["when"]["all"][0]["value"])
    ratio_cut = float(risk["tiers"][0]["when"]["all"][1]["value"])
    low_label = "-".join(str(c) for c in (min(low_classes), max(low_classes)))
    defs: dict[str, tuple[str, Callable[[pd.DataFrame], pd.Series]]] = {
        "age_group": (
            "Age group",
            lambda d: d["age_group"].map(
                lambda a: None if pd.isna(a) else ("adult" if a == "adult" else "child/adolescent")
            ),
        ),
        "sige_grade": (
            "Mite sIgE grade",
            lambda d: d["sige_class"].map(
                lambda c: None if pd.isna(c) or c == 0 else (low_label if c in low_classes else "3-6")
            ),
        ),
        "ratio": (
            "sIgE/total IgE",
            lambda d: d["sige_total_ratio_pct"].map(
                lambda r: (
                    None if pd.isna(r) else (f"< {ratio_cut:g} %" if r < ratio_cut else f">= {ratio_cut:g} %")
                )
            ),
        ),
    }
    basis = [reference.basis("assess_sr_risk", "tier_low/tier_high cut-offs").to_dict()]
    return defs, basis


def _sr_flags(data: CohortData) -> pd.DataFrame:
    d = data.patients.copy()
    sr = data.reactions[data.reactions["kind"] == "systemic"]["patient_id"].unique()
    d["sr"] = d["patient_id"].isin(sr).astype(int)
    return d


def stratified(data: CohortData) -> ResultTable | None:
    """SR incidence with vs without omalizumab per stratum: Fisher, RD and RR (95 % CI), interaction."""
    d = _sr_flags(data)
    if d["omalizumab"].nunique() < 2 or data.reactions.empty:
        return None
    defs, basis = strata_definitions()
    cols = [
        "stratification",
        "stratum",
        "omalizumab: SR/n (%)",
        "no omalizumab: SR/n (%)",
        "p",
        "p (BH)",
        "test",
        "risk difference (95% CI)",
        "risk ratio (95% CI)",
        "interaction",
    ]
    t = ResultTable(
        "stratified", "Systemic reactions by stratum, omalizumab vs not (seed 000)", cols, basis=basis
    )
    t.notes.append(
        "Patients with >= 1 systemic reaction. Fisher exact test; risk difference with Newcombe "
        "hybrid-score CI; risk ratio with Katz log CI (0.5 added to each cell when one is zero). "
        "Interaction: Breslow-Day homogeneity of odds ratios and the likelihood-ratio test of "
        "stratum x omalizumab in a logistic model (not estimable under separation)."
    )
    t.tests.update({"fisher", "risk-difference", "risk-ratio", "breslow-day", "logistic-interaction"})

    def row_for(label: str, stratum: str, sub: pd.DataFrame) -> dict[str, Any]:
        on, off = sub[sub["omalizumab"] == 1], sub[sub["omalizumab"] == 0]
        e1, n1, e0, n0 = int(on["sr"].sum()), len(on), int(off["sr"].sum()), len(off)
        row: dict[str, Any] = {
            "stratification": label,
            "stratum": stratum,
            "_stratification": label,
            "omalizumab: SR/n (%)": f"{e1}/{n1} ({100 * e1 / n1:.1f}%)" if n1 else "-",
            "no omalizumab: SR/n (%)": f"{e0}/{n0} ({100 * e0 / n0:.1f}%)" if n0 else "-",
        }
        if n1 and n0:
            _record(row, stats.fisher([[e1, n1 - e1], [e0, n0 - e0]]), t)
            rd = stats.risk_difference(e1, n1, e0, n0)
            rr = stats.risk_ratio(e1, n1, e0, n0)
            row["risk difference (95% CI)"] = f"{rd.estimate:.3f} ({rd.low:.3f}, {rd.high:.3f})"
            row["risk ratio (95% CI)"] = (
                "-" if rr.estimate is None else f"{rr.estimate:.2f} ({rr.low:.2f}, {rr.high:.2f})"
            )
            row["rr"] = rr.to_dict()
        return row

    t.rows.append(row_for("All patients", "all", d))
    for key, (label, fn) in defs.items():
        s = fn(d)
        if s.notna().sum() == 0:
            continue
        d[key] = s
        levels = sorted(s.dropna().unique())
        tables = []
        for i, lv in enumerate(levels):
            sub = d[d[key] == lv]
            row = row_for(label, str(lv), sub)
            row["stratification"] = label if i == 0 else ""
            on, off = sub[sub["omalizumab"] == 1], sub[sub["omalizumab"] == 0]
            tables.append(
                np.array(
                    [
                        [on["sr"].sum(), len(on) - on["sr"].sum()],
                        [off["sr"].sum(), len(off) - off["sr"].sum()],
                    ]
                )
            )
            t.rows.append(row)
        if len(levels) == 2:
            bd = breslow_day(tables)
            lr = logistic_interaction(
                d.assign(x=(d[key] == levels[1]).astype(float)), "sr", "omalizumab", "x"
            )
            t.rows[-len(levels)]["interaction"] = (
                f"Breslow-Day p={fmt_p(bd.p)}; logistic LR p={fmt_p(lr.p)}"
                + (f" ({lr.note})" if lr.note else "")
            )
    add_bh(t)
    return t


def strata_risk(data: CohortData) -> ResultTable | None:
    """SR incidence between stratum levels (all patients) and target-dose completion by group."""
    d = _sr_flags(data)
    if data.reactions.empty and d["target_reached"].isna().all():
        return None
    defs, basis = strata_definitions()
    cols = ["comparison", "level A", "level B", "p", "p (BH)", "test"]
    t = ResultTable("strata_risk", "SR incidence across strata and target-dose completion", cols, basis=basis)
    t.notes.append(
        "Counts are patients. Fisher exact for 2x2 tables with an expected count < 5, else Pearson "
        "chi-square."
    )
    for label, fn in defs.values():
        s = fn(d)
        levels = sorted(s.dropna().unique())
        if len(levels) != 2:
            continue
        a, b = d[s == levels[0]], d[s == levels[1]]
        row: dict[str, Any] = {
            "comparison": f"SR by {label}",
            "level A": f"{levels[0]}: {count_pct(int(a['sr'].sum()), len(a))}",
            "level B": f"{levels[1]}: {count_pct(int(b['sr'].sum()), len(b))}",
        }
        ct = [
            [int(a["sr"].sum()), len(a) - int(a["sr"].sum())],
            [int(b["sr"].sum()), len(b) - int(b["sr"].sum())],
        ]
        _record(row, stats.compare_categorical(ct), t)
        t.rows.append(row)
    g = data.groups
    if len(g) == 2 and d["target_reached"].notna().any():
        parts = [d[(d["group"] == x) & d["target_reached"].notna()] for x in g]
        ks = [int(x["target_reached"].sum()) for x in parts]
        row = {
            "comparison": "Target dose reached",
            "level A": f"{g[0]}: {count_pct(ks[0], len(parts[0]))}",
            "level B": f"{g[1]}: {count_pct(ks[1], len(parts[1]))}",
        }
        if len(parts[0]) and len(parts[1]):
            _record(
                row,
                stats.compare_categorical([[ks[0], len(parts[0]) - ks[0]], [ks[1], len(parts[1]) - ks[1]]]),
                t,
            )
        t.rows.append(row)
    if not t.rows:
        return None
    add_bh(t)
    return t


def efficacy_by_ratio(data: CohortData) -> ResultTable | None:
    """Change from baseline to the last follow-up visit in ACQ and medication burden, ratio > 16 % vs not."""
    eff = reference.load("assess_sr_risk")["efficacy"]
    cut = float(eff["when"]["value"])
    p = data.patients.set_index("patient_id")
    if p["sige_total_ratio_pct"].notna().sum() == 0:
        return None
    cols = ["measure", "visits", f"ratio > {cut:g} %", f"ratio <= {cut:g} %", "p", "p (BH)", "test"]
    t = ResultTable(
        "efficacy_ratio",
        f"Efficacy by sIgE/total IgE ratio > {cut:g} % (seed 000)",
        cols,
        basis=[
            reference.basis("assess_sr_risk", eff["id"], status=eff["status"], source=eff["source"]).to_dict()
        ],
    )
    t.notes.append(
        "Change = last follow-up visit minus baseline (negative = improvement for ACQ and medication "
        "burden). Student t (Welch if Levene p < 0.05) or Mann-Whitney U by Shapiro-Wilk."
    )
    for m in ("acq", "medication_score"):
        w = data.wide(m)
        follow = [v for v in ("month12", "week48") if v in w.columns]
        if "baseline" not in w.columns or not follow:
            continue
        change = (w[follow[0]] - w["baseline"]).dropna()
        ratio = p.loc[change.index, "sige_total_ratio_pct"]
        hi, lo = change[ratio > cut].to_numpy(), change[ratio <= cut].to_numpy()
        if len(hi) < 2 or len(lo) < 2:
            continue
        normal = stats.is_normal(hi, lo)
        row: dict[str, Any] = {
            "measure": f"Δ {_measure_label(m)}",
            "visits": f"baseline -> {VISIT_LABELS[follow[0]]}",
            f"ratio > {cut:g} %": f"{describe(hi, normal)} (n={len(hi)})",
            f"ratio <= {cut:g} %": f"{describe(lo, normal)} (n={len(lo)})",
        }
        _record(row, stats.compare_continuous(hi, lo), t)
        t.rows.append(row)
    if not t.rows:
        return None
    add_bh(t)
    return t


def all_tables(data: CohortData) -> list[ResultTable]:
    """Every table the data support, in report order."""
    built: list[ResultTable | None] = [table1(data)]
    built += [longitudinal(data, k) for k in LONGITUDINAL]
    built += [
        repeated_measures(data),
        adverse_reactions(data),
        incidence(data),
        stratified(data),
        strata_risk(data),
        efficacy_by_ratio(data),
    ]
    return [t for t in built if t is not None and t.rows]
