"""Synthetic `CohortData` built directly as DataFrames (vectorised) for tests and the report benchmark.

The values are invented test data shaped like seeds 000/001 (two groups, four visits, reactions); they are
not clinical reference numbers and never leave tests/benchmarks. The registry demo (``immunoplan demo``) is
the realistic end-to-end source.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from immunoplan.analysis.datasets import CohortData

_TRAJ = {  # measure: (baseline mean, sd, change per visit comparator, change per visit omalizumab, decimals)
    "act": (17.0, 4.0, 0.6, 1.5, 0),
    "acq": (2.7, 1.2, -0.2, -0.5, 2),
    "aqlq": (4.3, 1.1, 0.4, 0.7, 2),
    "eosinophils_10e9_l": (0.6, 0.07, 0.01, -0.07, 3),
    "feno_ppb": (41.0, 12.0, -2.0, -7.0, 1),
    "total_ige_iu_ml": (190.0, 46.0, 5.0, -5.0, 1),
    "sige_kua_l": (50.0, 19.0, 1.0, -2.0, 1),
    "pef_pct_pred": (75.0, 4.8, 1.8, 3.5, 1),
    "fev1_pct_pred": (80.0, 4.0, 1.7, 3.5, 1),
    "fev1_fvc_pct": (74.0, 3.0, 1.5, 2.4, 1),
    "medication_score": (6.0, 2.0, -0.5, -1.0, 1),
}
_VISITS = ("baseline", "week12", "week24", "week48")


def synthetic_cohort(
    n: int,
    seed: int = 0,
    groups: tuple[str, str] = ("SCIT", "Omb+SCIT"),
    missing: float = 0.05,
    injections_per_patient: int = 20,
) -> CohortData:
    """``n`` patients, half per group, outcomes at four visits (``missing`` fraction dropped), reactions."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n + 1)
    omb = (np.arange(n) % 2 == 1).astype(float)
    group = np.where(omb == 1, groups[1], groups[0])
    age = rng.integers(8, 66, n).astype(float)
    sige = np.exp(rng.normal(3.3, 1.0, n))
    tige = sige * 100 / rng.uniform(3, 40, n)
    sige_class = np.digitize(sige, [0.35, 0.7, 3.5, 17.5, 50, 100]).astype(float)
    patients = pd.DataFrame(
        {
            "patient_id": ids,
            "pseudo_id": [f"S{i:06d}" for i in ids],
            "cohort": "synthetic",
            "group": group,
            "age_years": age,
            "age_group": np.where(age < 12, "child", np.where(age < 18, "adolescent", "adult")),
            "sex": rng.choice(["female", "male"], n),
            "bmi_kg_m2": rng.normal(24.8, 3.0, n),
            "smoking": rng.choice(["never", "former", "current"], n, p=[0.78, 0.16, 0.06]),
            "family_history_asthma": (rng.random(n) < 0.4).astype(float),
            "comorbid_allergies": (rng.random(n) < 0.25).astype(float),
            "previous_biologics": (rng.random(n) < 0.13).astype(float),
            "asthma_step": rng.integers(3, 5, n),
            "sige_class": sige_class,
            "sige_total_ratio_pct": 100 * sige / tige,
            "total_ige_iu_ml": tige,
            "sige_kua_l": sige,
            "omalizumab": omb,
            "target_reached": (rng.random(n) < 0.8 + 0.1 * omb).astype(float),
            "follow_up_days": np.full(n, 336.0),
        }
    )
    frames = []
    u = rng.normal(0, 1, n)
    for m, (base, sd, d0, d1, dec) in _TRAJ.items():
        slope = np.where(omb == 1, d1, d0)
        for j, v in enumerate(_VISITS):
            val = base + slope * j + sd * (0.7 * u + 0.7 * rng.normal(0, 1, n))
            frames.append(
                pd.DataFrame({"patient_id": ids, "visit": v, "measure": m, "value": np.round(val, dec)})
            )
    outcomes = pd.concat(frames, ignore_index=True)
    keep = (outcomes["visit"] == "baseline") | (rng.random(len(outcomes)) >= missing)
    outcomes = outcomes[keep].reset_index(drop=True)
    days = np.tile(np.linspace(0, 336, injections_per_patient), n)
    injections = pd.DataFrame({"patient_id": np.repeat(ids, injections_per_patient), "day": days})
    high = ((sige_class >= 3) & (patients["sige_total_ratio_pct"].to_numpy() >= 10)).astype(float)
    p_sr = 0.04 + 0.25 * high * (1 - 0.6 * omb) + 0.08 * (age < 18)
    has_sr = rng.random(n) < p_sr
    has_local = rng.random(n) < 0.3 - 0.1 * omb
    sr_day = rng.uniform(1, 336, n)
    loc_day = rng.uniform(1, 336, n)
    grade = rng.choice(["mild", "moderate", "severe"], n, p=[0.7, 0.22, 0.08])
    rx = pd.concat(
        [
            pd.DataFrame(
                {"patient_id": ids[has_sr], "kind": "systemic", "grade": grade[has_sr], "day": sr_day[has_sr]}
            ),
            pd.DataFrame(
                {"patient_id": ids[has_local], "kind": "local", "grade": "local", "day": loc_day[has_local]}
            ),
        ],
        ignore_index=True,
    )
    rx["reaction_class"] = np.where(rx["kind"] == "local", "local", "systemic-" + rx["grade"])
    rx["visit"] = pd.cut(rx["day"], [0, 84, 168, 336], labels=["week12", "week24", "week48"]).astype(str)
    return CohortData(
        patients,
        outcomes,
        injections,
        rx[["patient_id", "kind", "grade", "reaction_class", "visit", "day"]],
        name="synthetic",
    )
