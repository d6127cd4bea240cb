"""Service-layer use cases on SQLite and PostgreSQL: one transaction each, validated, audited."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from immunoplan.errors import Conflict, InvalidInput
from immunoplan.registry import models as m
from immunoplan.services import records as rec


def _patient(reg, pid="P1", **kw):
    return rec.register_patient(reg, "dr.a", pseudo_id=pid, sex="female", age_years=30, **kw)


def test_register_patient_and_duplicate_is_refused(registry):
    p = _patient(registry, diagnoses=[{"code": "allergic_asthma", "allergen": "d1"}])
    assert p["pseudo_id"] == "P1" and p["id"] > 0
    with pytest.raises(Conflict, match="already exists"):  # the same patient twice: 409 / exit 2
        _patient(registry)
    with registry.session() as s:
        assert s.scalar(select(func.count()).select_from(m.Patient)) == 1
        assert s.scalar(select(m.Diagnosis.code)) == "allergic_asthma"


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("sex", {"sex": "x"}),
        ("age_years", {"age_years": 300}),
        ("height_cm", {"height_cm": "tall"}),
        ("pseudo_id", {"pseudo_id": " "}),
        ("birth_date", {"birth_date": "31/12/2000"}),
    ],
)
def test_register_patient_rejects_bad_fields(sqlite_registry, field, kwargs):
    args = {"pseudo_id": "P9", "sex": "male"} | kwargs
    with pytest.raises(InvalidInput) as exc:
        rec.register_patient(sqlite_registry, "dr.a", **args)
    assert exc.value.field == field
    with sqlite_registry.session() as s:
        assert s.scalar(select(func.count()).select_from(m.Patient)) == 0


def test_visit_measurement_questionnaire_link_to_visit(registry):
    _patient(registry)
    rec.record_visit(
        registry, "nurse", pseudo_id="P1", code="baseline", visit_on="2025-01-06", week=0, medication_score=3
    )
    meas = rec.record_measurement(
        registry,
        "nurse",
        pseudo_id="P1",
        kind="sige_kua_l",
        allergen="d1",
        value="48.8",
        measured_on="2025-01-06",
        visit_code="baseline",
    )
    q = rec.record_questionnaire(
        registry,
        "nurse",
        pseudo_id="P1",
        instrument="ACT",
        score=17,
        completed_on="2025-01-06",
        visit_code="baseline",
        items=[3, 3, 4, 3, 4],
    )
    assert meas["unit"] == "kUA/L" and meas["visit_id"] == q["visit_id"] is not None


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("kind", {"kind": "ige"}),
        ("value", {"value": -1}),
        ("value", {"value": 10**7}),
        ("unit", {"unit": "ng/mL"}),
        ("allergen", {"kind": "sige_kua_l", "allergen": ""}),
        ("measured_on", {"measured_on": "yesterday"}),
        ("pseudo_id", {"pseudo_id": "nobody"}),
        ("visit_code", {"visit_code": "week12"}),
    ],
)
def test_measurement_implausible_values_name_the_field(sqlite_registry, field, kwargs):
    _patient(sqlite_registry)
    args = {
        "pseudo_id": "P1",
        "kind": "total_ige_iu_ml",
        "value": 185.5,
        "measured_on": "2025-01-06",
    } | kwargs
    with pytest.raises(InvalidInput) as exc:
        rec.record_measurement(sqlite_registry, "nurse", **args)
    assert exc.value.field == field
    with sqlite_registry.session() as s:
        assert s.scalar(select(func.count()).select_from(m.Measurement)) == 0


def test_course_injections_due_late_and_target(registry):
    _patient(registry)
    c = rec.plan_course(
        registry,
        "dr.a",
        pseudo_id="P1",
        kind="SCIT",
        product="Alutard SQ",
        allergen="d1",
        target_dose="100000",
        dose_unit="SQ-U",
        interval_days=7,
        plan={"steps": [1, 2]},
        basis={"id": "x", "version": "1"},
    )
    rec.record_injection(
        registry,
        "nurse",
        course_id=c["id"],
        given_at="2025-01-06T09:00",
        dose="20",
        dose_unit="SQ-U",
        volume_ml="0.2",
        vial="1",
        phase="build-up",
    )
    due = rec.list_due_injections(registry, as_of="2025-01-13")
    assert [(d["pseudo_id"], d["status"], d["days_overdue"]) for d in due] == [("P1", "due", 0)]
    late = rec.list_due_injections(registry, as_of="2025-01-20", grace_days=2)
    assert late[0]["status"] == "late" and late[0]["days_overdue"] == 7
    assert rec.list_due_injections(registry, as_of="2025-01-10") == []
    assert len(rec.list_due_injections(registry, as_of="2025-01-10", window_days=3)) == 1
    rec.record_injection(
        registry,
        "nurse",
        course_id=c["id"],
        given_at="2025-01-13T09:00",
        dose="100000",
        dose_unit="SQ-U",
        volume_ml="1.0",
        vial="4",
        phase="maintenance",
    )
    with registry.session() as s:
        course = s.get(m.Course, c["id"])
        assert course.target_reached and course.status == "active"
        assert course.next_due_on.isoformat() == "2025-01-20"
        doses = s.scalars(select(m.Injection.dose).order_by(m.Injection.sequence)).all()
        assert doses == [Decimal("20"), Decimal("100000")]


def test_reaction_timing_is_derived_from_the_causing_injection(registry):
    _patient(registry)
    c = rec.plan_course(registry, "dr.a", pseudo_id="P1", kind="RIT")
    rec.record_injection(
        registry, "n", course_id=c["id"], given_at="2025-01-06T09:00", dose="10", dose_unit="SQ-U"
    )
    inj = rec.record_injection(
        registry, "n", course_id=c["id"], given_at="2025-01-08T09:00", dose="100", dose_unit="SQ-U"
    )
    r = rec.record_reaction(
        registry,
        "dr.a",
        pseudo_id="P1",
        kind="systemic",
        grade="mild",
        scale="seed001",
        scale_version="2025",
        findings=["urticaria"],
        onset_at="2025-01-08T09:25",
        injection_id=inj["id"],
    )
    assert r["minutes_after_dose"] == 25 and r["days_from_first_dose"] == 2 and r["course_id"] == c["id"]
    with pytest.raises(InvalidInput, match="before the dose"):
        rec.record_reaction(
            registry,
            "dr.a",
            pseudo_id="P1",
            kind="local",
            grade="1",
            scale="x",
            onset_at="2025-01-08T08:00",
            injection_id=inj["id"],
        )
    with pytest.raises(InvalidInput) as exc:
        rec.record_reaction(registry, "dr.a", pseudo_id="P1", kind="local", grade="1")
    assert exc.value.field == "scale"


def test_desensitization_steps_accumulate_exactly(registry):
    _patient(registry)
    c = rec.plan_course(registry, "dr.a", pseudo_id="P1", kind="drug_desensitization", drug="carboplatin")
    sess = rec.start_desensitization(
        registry,
        "ph",
        course_id=c["id"],
        session_on="2025-02-01",
        drug="carboplatin",
        target_dose_mg="500",
        protocol="12-step",
    )
    for n, dose in enumerate(["0.04", "0.1", "0.2"], start=1):
        step = rec.record_step(
            registry, "nurse", session_id=sess["id"], step_no=n, dose_mg=dose, bag=1, rate_ml_h="2.5"
        )
    assert Decimal(str(step["cumulative_dose_mg"])) == Decimal("0.34")
    with pytest.raises(InvalidInput):
        rec.start_desensitization(
            registry, "ph", course_id=c["id"], session_on="x", drug="d", target_dose_mg=1
        )


def test_omalizumab_assessment_and_override_are_stored(registry):
    _patient(registry)
    om = rec.record_omalizumab(
        registry, "nurse", pseudo_id="P1", given_at="2025-01-01T10:00", dose_mg="300", interval_weeks=4
    )
    assert om["dose_mg"] == 300
    a = rec.assess(
        registry,
        "dr.a",
        pseudo_id="P1",
        inputs={"sige_kua_l": 48.8, "total_ige_iu_ml": 185.5},
        result={"risk_tier": "high", "sige_class": 4, "basis": [{"id": "r", "version": "1"}]},
    )
    assert a["risk_tier"] == "high" and a["sige_class"] == 4 and a["sige_kua_l"] == 48.8
    with pytest.raises(InvalidInput, match="override"):
        rec.record_dose_decision(registry, "dr.a", pseudo_id="P1", kind="override", result={})
    d = rec.record_dose_decision(
        registry,
        "dr.a",
        pseudo_id="P1",
        kind="override",
        result={"kind": "dose"},
        override_reason="label table unverified; senior decision",
        dose="150",
        dose_unit="mg",
    )
    assert d["override_reason"].startswith("label")


def test_every_use_case_is_audited_with_its_actor(sqlite_registry):
    reg = sqlite_registry
    _patient(reg)
    rec.record_visit(reg, "nurse.b", pseudo_id="P1", code="baseline", visit_on="2025-01-06")
    with reg.session() as s:
        got = s.execute(
            select(m.AuditEntry.actor, m.AuditEntry.table_name, m.AuditEntry.use_case).order_by(
                m.AuditEntry.id
            )
        ).all()
    assert got == [("dr.a", "patients", "register_patient"), ("nurse.b", "visits", "record_visit")]


def test_reaction_is_graded_by_the_grading_engine(sqlite_registry):
    reg = sqlite_registry
    _patient(reg)
    c = rec.plan_course(reg, "dr.a", pseudo_id="P1", kind="SCIT")
    inj = rec.record_injection(
        reg, "n", course_id=c["id"], given_at="2025-01-06T09:00", dose="10", dose_unit="SQ-U"
    )
    r = rec.record_reaction(
        reg,
        "dr.a",
        pseudo_id="P1",
        kind="systemic",
        scale="wao2010",
        findings=["wheeze"],
        treatments=["bronchodilator"],
        onset_at="2025-01-06T09:10",
        injection_id=inj["id"],
    )
    assert (
        r["grade"] == "2"
        and r["scale_version"].startswith("WAO 2010")
        and r["basis"][0]["id"] == "grading_wao"
    )
    assert r["treatment"] == "bronchodilator"
    s = rec.record_reaction(
        reg,
        "dr.a",
        pseudo_id="P1",
        kind="systemic",
        scale="seed001",
        findings=["wheeze", "dyspnea"],
        treatments=["emergency_bronchodilator"],
    )
    assert s["grade"] == "severe"
    with pytest.raises(InvalidInput):
        rec.record_reaction(
            reg, "dr.a", pseudo_id="P1", kind="systemic", scale="wao2010", findings=["itchy-nose"]
        )


def test_assess_runs_the_assessment_engine_and_stores_its_basis(sqlite_registry):
    reg = sqlite_registry
    _patient(reg)
    a = rec.assess(
        reg, "dr.a", pseudo_id="P1", inputs={"age_years": 14, "total_ige_iu_ml": 300, "sige_kua_l": 60}
    )
    assert a["sige_class"] == 5 and a["sige_total_ratio_pct"] == 20
    assert a["risk_tier"] in ("low", "elevated", "high") and a["basis"]
    assert all({"table", "version"} <= set(b) for b in a["basis"])
    with pytest.raises(InvalidInput):
        rec.assess(
            reg, "dr.a", pseudo_id="P1", inputs={"age_years": -3, "total_ige_iu_ml": 300, "sige_kua_l": 60}
        )
