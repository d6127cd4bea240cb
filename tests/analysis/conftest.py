"""Fixtures for the analysis tests: small synthetic cohorts and a registry file written through the models."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from immunoplan.analysis.datasets import CohortData

# Synthetic cohorts shaped like seeds 000/001: invented test values, not clinical reference numbers.
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


INSTRUMENT = {"act": "ACT", "acq": "ACQ-7", "aqlq": "AQLQ"}
WEEKS = {"baseline": 0, "week12": 12, "week24": 24, "week48": 48, "month12": 52}


def write_registry(path: Path, data: CohortData, cohort: str = "seed001") -> Path:
    """Write ``data`` into a new registry at ``path`` via the registry models (one audited transaction)."""
    from immunoplan.registry import models as m
    from immunoplan.registry.db import open_registry

    reg = open_registry(path)
    start = date(2024, 1, 8)
    with reg.transaction(actor="test.analysis", use_case="analysis-fixture") as s:
        for p in data.patients.itertuples(index=False):
            pat = m.Patient(
                pseudo_id=f"{cohort}-{p.patient_id}",
                age_years=int(p.age_years),
                age_group=p.age_group,
                sex=p.sex,
                height_cm=170.0,
                smoking=p.smoking,
                family_history_asthma=bool(p.family_history_asthma),
                comorbid_allergies=bool(p.comorbid_allergies),
                previous_biologics=bool(p.previous_biologics),
                asthma_step=int(p.asthma_step),
                cohort=cohort,
                study_group=p.group,
                enrolled_on=start,
            )
            s.add(pat)
            s.flush()
            visits = {}
            out = data.outcomes[data.outcomes["patient_id"] == p.patient_id]
            for code in sorted(set(out["visit"]), key=lambda c: WEEKS[c]):
                med = out[(out["visit"] == code) & (out["measure"] == "medication_score")]["value"]
                v = m.Visit(
                    patient_id=pat.id,
                    code=code,
                    visit_on=start + timedelta(weeks=WEEKS[code]),
                    week=WEEKS[code],
                    medication_score=float(med.iloc[0]) if len(med) else None,
                )
                s.add(v)
                s.flush()
                visits[code] = v
            s.add(
                m.Measurement(
                    patient_id=pat.id,
                    visit_id=visits["baseline"].id,
                    kind="weight_kg",
                    value=float(p.bmi_kg_m2) * 1.7**2,
                    unit="kg",
                    measured_on=start,
                )
            )
            for r in out.itertuples(index=False):
                v = visits[r.visit]
                if r.measure in INSTRUMENT:
                    s.add(
                        m.Questionnaire(
                            patient_id=pat.id,
                            visit_id=v.id,
                            instrument=INSTRUMENT[r.measure],
                            completed_on=v.visit_on,
                            score=float(r.value),
                        )
                    )
                elif r.measure != "medication_score":
                    s.add(
                        m.Measurement(
                            patient_id=pat.id,
                            visit_id=v.id,
                            kind=r.measure,
                            value=float(r.value),
                            unit="-",
                            measured_on=v.visit_on,
                        )
                    )
            s.add(
                m.RiskAssessment(
                    patient_id=pat.id,
                    actor="test",
                    age_group=p.age_group,
                    sige_kua_l=float(p.sige_kua_l),
                    total_ige_iu_ml=float(p.total_ige_iu_ml),
                    sige_class=int(p.sige_class),
                    sige_total_ratio_pct=float(p.sige_total_ratio_pct),
                )
            )
            course = m.Course(
                patient_id=pat.id,
                kind="SCIT",
                with_omalizumab=bool(p.omalizumab),
                omalizumab_timing="concurrent" if p.omalizumab else "none",
                status="active",
                started_on=start,
                target_reached=bool(p.target_reached),
            )
            s.add(course)
            s.flush()
            t0 = datetime(2024, 1, 8, 9, 0, tzinfo=UTC)
            for day in data.injections.loc[data.injections["patient_id"] == p.patient_id, "day"]:
                s.add(
                    m.Injection(
                        course_id=course.id,
                        patient_id=pat.id,
                        given_at=t0 + timedelta(days=float(day)),
                        dose=Decimal("100"),
                        dose_unit="SQ-U",
                    )
                )
            for r in data.reactions[data.reactions["patient_id"] == p.patient_id].itertuples(index=False):
                s.add(
                    m.Reaction(
                        patient_id=pat.id,
                        course_id=course.id,
                        kind=r.kind,
                        grade=None if r.kind == "local" else r.grade,
                        scale="seed001-classes",
                        days_from_first_dose=int(r.day),
                    )
                )
    reg.dispose()
    return path


@pytest.fixture
def small_cohort() -> CohortData:
    return synthetic_cohort(40, seed=11, injections_per_patient=6)


@pytest.fixture(scope="session")
def registry_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry with two cohorts: seed001-like (SCIT vs Omb+SCIT) and seed000-like (RIT vs RIT+Omb-pre).

    Session-scoped and only read by the tests (reports are written to each test's tmp_path)."""
    db = tmp_path_factory.mktemp("analysis-registry") / "registry.sqlite"
    write_registry(db, synthetic_cohort(24, seed=5, injections_per_patient=4), cohort="seed001")
    write_registry(
        db,
        synthetic_cohort(30, seed=6, groups=("RIT", "RIT+Omb-pre"), injections_per_patient=4),
        cohort="seed000",
    )
    one_group = synthetic_cohort(6, seed=7, groups=("clinic", "clinic"), injections_per_patient=2)
    write_registry(db, one_group, cohort="clinic")  # no study groups to compare: left out of whole reports
    return db
