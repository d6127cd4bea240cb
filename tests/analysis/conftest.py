"""Fixtures for the analysis tests: small synthetic cohorts and a registry file written through the models."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from immunoplan.analysis.datasets import CohortData
from immunoplan.analysis.synthetic import synthetic_cohort

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
