"""Cohort datasets: the one place that turns the registry's tables into the analyses' pandas DataFrames.

Every analysis takes a `CohortData` (DataFrames only, no database), so tests build small frames by hand.
Schema (one name per concept, units in names, as in the registry):

``patients`` (one row per patient)
    patient_id (int), pseudo_id, cohort, group (study group), age_years, age_group (child/adolescent/adult),
    sex, bmi_kg_m2, smoking (never/former/current), family_history_asthma, comorbid_allergies,
    previous_biologics (0/1 floats, NaN unknown), asthma_step, sige_class (ImmunoCAP class 0-6, "sIgE grade"),
    sige_total_ratio_pct, total_ige_iu_ml, sige_kua_l, omalizumab (0/1), target_reached (0/1/NaN),
    follow_up_days (first to last immunotherapy injection, NaN without injections)
``outcomes`` (long: one row per patient, visit and measure)
    patient_id, visit (baseline/week12/week24/week48/month12), measure (see `MEASURES`), value
``injections``
    patient_id, day (days since the patient's first immunotherapy injection)
``reactions``
    patient_id, kind (local/systemic), grade, reaction_class (see `REACTION_CLASSES`), visit, day
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from immunoplan.errors import InvalidInput

VISITS = ("baseline", "week12", "week24", "week48", "month12")
VISIT_LABELS = {
    "baseline": "Baseline",
    "week12": "12 weeks",
    "week24": "24 weeks",
    "week48": "48 weeks",
    "month12": "12 months",
}
#: days after the first injection that close each period (visit code -> weeks x 7), used when a reaction
#: is not linked to a visit
VISIT_DAYS = {"week12": 84, "week24": 168, "week48": 336}

#: measure -> (label, unit, integer-valued scale?) in seed 001's Figure 1 panel order (A-J)
MEASURES: dict[str, tuple[str, str]] = {
    "acq": ("ACQ score", ""),
    "act": ("ACT score", ""),
    "aqlq": ("AQLQ score", ""),
    "eosinophils_10e9_l": ("Eosinophils", "10^9/L"),
    "feno_ppb": ("FeNO", "ppb"),
    "total_ige_iu_ml": ("Total IgE", "IU/mL"),
    "sige_kua_l": ("Mite sIgE", "kUA/L"),
    "pef_pct_pred": ("PEF", "% predicted"),
    "fev1_pct_pred": ("FEV1", "% predicted"),
    "fev1_fvc_pct": ("FEV1/FVC", "%"),
    "medication_score": ("Medication burden", "score"),
}
#: questionnaire instruments stored in the registry -> measure
INSTRUMENTS = {
    "ACT": "act",
    "C-ACT": "act",
    "ACQ-5": "acq",
    "ACQ-6": "acq",
    "ACQ-7": "acq",
    "AQLQ": "aqlq",
    "mini-AQLQ": "aqlq",
}
REACTION_CLASSES = ("local", "systemic-mild", "systemic-moderate", "systemic-severe")

PATIENT_COLUMNS = ("patient_id", "cohort", "group")
OUTCOME_COLUMNS = ("patient_id", "visit", "measure", "value")
INJECTION_COLUMNS = ("patient_id", "day")
REACTION_COLUMNS = ("patient_id", "kind", "reaction_class", "visit", "day")


@dataclass
class CohortData:
    """The DataFrames of one cohort (or of the whole registry before `select`)."""

    patients: pd.DataFrame
    outcomes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(OUTCOME_COLUMNS)))
    injections: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(INJECTION_COLUMNS)))
    reactions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(REACTION_COLUMNS)))
    name: str = "cohort"
    _by_measure: dict[str, pd.DataFrame] | None = field(default=None, init=False, repr=False)
    _wide: dict[str, pd.DataFrame] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for label, frame, cols in (
            ("patients", self.patients, PATIENT_COLUMNS),
            ("outcomes", self.outcomes, OUTCOME_COLUMNS),
            ("injections", self.injections, INJECTION_COLUMNS),
            ("reactions", self.reactions, REACTION_COLUMNS),
        ):
            missing = [c for c in cols if c not in frame.columns]
            if missing:
                raise InvalidInput(label, f"missing columns {missing}", ", ".join(cols))

    @property
    def groups(self) -> list[str]:
        """Study groups, comparator first (groups without omalizumab before those with it), then by name."""
        names = [g for g in self.patients["group"].dropna().unique()]
        return sorted(
            names, key=lambda g: ("omb" in str(g).lower() or "omalizumab" in str(g).lower(), str(g))
        )

    def cohorts(self) -> list[str]:
        return sorted(self.patients["cohort"].dropna().unique())

    def select(self, cohort: str) -> CohortData:
        """The rows of one cohort."""
        p = self.patients[self.patients["cohort"] == cohort]
        if p.empty:
            raise InvalidInput(
                "cohort", f"no patients in cohort {cohort!r}", ", ".join(self.cohorts()) or "none"
            )
        ids = set(p["patient_id"])
        return CohortData(
            p.reset_index(drop=True),
            self.outcomes[self.outcomes["patient_id"].isin(ids)].reset_index(drop=True),
            self.injections[self.injections["patient_id"].isin(ids)].reset_index(drop=True),
            self.reactions[self.reactions["patient_id"].isin(ids)].reset_index(drop=True),
            name=cohort,
        )

    def group_of(self, patient_ids: pd.Index | pd.Series | np.ndarray) -> np.ndarray:
        """The study group of each patient id (None where unknown)."""
        groups = self.patients.drop_duplicates("patient_id").set_index("patient_id")["group"]
        return groups.reindex(pd.Index(patient_ids)).to_numpy()

    def with_group(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` joined with each patient's group."""
        return frame.merge(self.patients[["patient_id", "group"]], on="patient_id", how="inner")

    def measures(self) -> list[str]:
        """Measures present in ``outcomes`` (in `MEASURES` order)."""
        return [m for m in MEASURES if m in self._split()]

    def measure(self, measure: str) -> pd.DataFrame:
        """Long rows (patient_id, visit, value) of one measure; split once and cached (treat as read-only)."""
        return self._split().get(measure, self.outcomes.iloc[0:0])

    def _split(self) -> dict[str, pd.DataFrame]:
        if self._by_measure is None:
            codes, names = pd.factorize(self.outcomes["measure"])
            self._by_measure = {
                str(name): self.outcomes.iloc[np.flatnonzero(codes == i)] for i, name in enumerate(names)
            }
        return self._by_measure

    def wide(self, measure: str) -> pd.DataFrame:
        """patients x visits table of one measure (index patient_id; columns in `VISITS` order; cached;
        repeated values of a patient at one visit are averaged)."""
        if measure not in self._wide:
            d = self.measure(measure).dropna(subset=["value"])
            pc, pids = pd.factorize(d["patient_id"])
            vc, vnames = pd.factorize(d["visit"])
            key = pc * len(vnames) + vc
            size = len(pids) * len(vnames)
            sums = np.bincount(key, weights=d["value"].to_numpy(float), minlength=size)
            counts = np.bincount(key, minlength=size)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
            w = pd.DataFrame(
                mean.reshape(len(pids), len(vnames)),
                index=pd.Index(pids, name="patient_id"),
                columns=list(vnames),
            )
            self._wide[measure] = w[[v for v in VISITS if v in w.columns]].sort_index()
        return self._wide[measure]


def reaction_class(kind: str, grade: str | None) -> str:
    """Seed 001 classes: local; systemic mild/moderate/severe (other grades kept as 'systemic-<grade>')."""
    if kind == "local":
        return "local"
    g = (grade or "").strip().lower()
    return f"systemic-{g}" if g else "systemic-ungraded"


def visit_for_day(day: float | None) -> str | None:
    """The follow-up period (visit code) a day since the first injection falls into (`VISIT_DAYS`)."""
    if day is None or (isinstance(day, float) and np.isnan(day)):
        return None
    for code, last in VISIT_DAYS.items():
        if day <= last:
            return code
    return None


#: the raw registry tables `from_tables` needs (read by `immunoplan.registry.frames.read_analysis_tables`)
RAW_TABLES = (
    "patients",
    "visits",
    "measurements",
    "questionnaires",
    "risk_assessments",
    "courses",
    "injections",
    "reactions",
)


def from_tables(tables: Mapping[str, pd.DataFrame]) -> CohortData:
    """The analysis frames (`CohortData`, schema above) from the raw registry tables.

    ``tables`` holds one DataFrame per name in `RAW_TABLES`, with the columns that
    `immunoplan.registry.frames.read_analysis_tables` reads; this function does no I/O."""
    missing = [name for name in RAW_TABLES if name not in tables]
    if missing:
        raise InvalidInput("tables", f"missing registry tables {missing}", ", ".join(RAW_TABLES))
    pats = tables["patients"].copy()
    visits = tables["visits"]
    vcode = visits.set_index("visit_id")["visit"]
    meas = tables["measurements"].copy()
    meas["visit"] = meas["visit_id"].map(vcode)
    q = tables["questionnaires"].copy()
    q["visit"] = q["visit_id"].map(vcode)
    q["measure"] = q["instrument"].map(INSTRUMENTS)
    risk = tables["risk_assessments"]
    courses = tables["courses"]
    inj = tables["injections"]
    rx = tables["reactions"].copy()

    # outcomes: measurements (percent predicted from pct_predicted where the kind is an absolute value)
    meas = meas.copy()
    meas["measure"] = meas["kind"]
    for absolute, pct in (
        ("fev1_l", "fev1_pct_pred"),
        ("pef_l_s", "pef_pct_pred"),
        ("pef_l_min", "pef_pct_pred"),
    ):
        sel = (meas["kind"] == absolute) & meas["pct_predicted"].notna()
        if sel.any():
            extra = meas[sel].assign(measure=pct, value=meas.loc[sel, "pct_predicted"])
            meas = pd.concat([meas, extra], ignore_index=True)
    outcomes = pd.concat(
        [
            meas[meas["measure"].isin(MEASURES.keys())][list(OUTCOME_COLUMNS)],
            q[q["measure"].notna()][list(OUTCOME_COLUMNS)],
            visits.assign(measure="medication_score", value=visits["medication_score"]).dropna(
                subset=["value"]
            )[list(OUTCOME_COLUMNS)],
        ],
        ignore_index=True,
    )
    outcomes = outcomes[outcomes["visit"].isin(VISITS)].reset_index(drop=True)
    outcomes["value"] = outcomes["value"].astype(float)

    # baseline characteristics: latest risk assessment, baseline weight -> BMI, courses
    if not risk.empty:
        last = risk.sort_values("id").groupby("patient_id").tail(1).drop(columns="id")
        pats = pats.merge(last, on="patient_id", how="left")
    else:
        for c in ("sige_class", "sige_total_ratio_pct", "sige_kua_l", "total_ige_iu_ml"):
            pats[c] = np.nan
    wt = meas[meas["kind"] == "weight_kg"].sort_values("visit_id").groupby("patient_id")["value"].first()
    pats["bmi_kg_m2"] = pats["patient_id"].map(wt) / (pats["height_cm"].astype(float) / 100) ** 2
    ait = courses[courses["kind"].isin(["SCIT", "RIT", "cluster"])]
    flag = courses["with_omalizumab"].fillna(False).astype(bool) | (courses["kind"] == "omalizumab")
    omb = flag.groupby(courses["patient_id"]).any().astype(float)
    pats["omalizumab"] = pats["patient_id"].map(omb).fillna(0.0)
    tr = ait.groupby("patient_id")["target_reached"].max() if not ait.empty else pd.Series(dtype=float)
    pats["target_reached"] = pats["patient_id"].map(tr).astype(float)
    for c in ("family_history_asthma", "comorbid_allergies", "previous_biologics"):
        pats[c] = pats[c].astype(float)

    # injections -> days since first immunotherapy injection
    inj = inj[inj["course_id"].isin(ait["course_id"])].copy()
    inj["abs_day"] = inj["abs_day"].astype(float)
    inj["day"] = inj["abs_day"] - inj.groupby("patient_id")["abs_day"].transform("min")
    span = inj.groupby("patient_id")["day"].max()
    pats["follow_up_days"] = pats["patient_id"].map(span)
    injections = inj[["patient_id", "day"]].reset_index(drop=True)

    rx["visit"] = rx["visit_id"].map(vcode)
    rx["visit"] = rx["visit"].where(rx["visit"].notna(), rx["day"].map(visit_for_day))
    rx["reaction_class"] = [reaction_class(k, g) for k, g in zip(rx["kind"], rx["grade"], strict=True)]
    reactions = rx[["patient_id", "kind", "grade", "reaction_class", "visit", "day"]].reset_index(drop=True)
    pats = pats.drop(columns=["height_cm"])
    return CohortData(pats, outcomes, injections, reactions, name="registry")
