"""Patients, course planning, omalizumab administrations and assessments through the service layer, a test
per rule: each refusal is raised by `services.records.*` itself (not a page) and writes nothing.

Rules and their sources: an UNVERIFIED schedule never doses (docs/conventions.md; ``scit_products`` status,
the schedule engine's ``cannot-answer``); the omalizumab dose of a course comes from the label tables
(``omalizumab_*``); the same act twice and idempotent replays (issue 10, ``services.unit_of_work``); dates are
the clinic's (``immunoplan.clock``). The clinic clock is pinned at 2026-03-10 17:30 in Los Angeles, which is
already 2026-03-11 in UTC.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from immunoplan import clock, reference
from immunoplan.clinical.immunotherapy.course_kinds import KIND_OF_REGIMEN, course_kind
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry, open_registry
from immunoplan.services import records as rec
from immunoplan.services.omalizumab import label_dose
from immunoplan.services.records import assessments, courses, omalizumab, patients

# The PostgreSQL server fixtures of tests/registry/conftest.py (the same throw-away PostgreSQL 15 server).
_spec = importlib.util.spec_from_file_location(
    "registry_pg_fixtures_courses", Path(__file__).resolve().parents[1] / "registry" / "conftest.py"
)
assert _spec and _spec.loader
_pg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_pg)
pg_server = _pg.pg_server
pg_url = _pg.pg_url

ZONE = "America/Los_Angeles"
NOW = "2026-03-10T17:30"  # clinic time; 2026-03-11 01:30 UTC
CLUSTER = {"product": "alutard-sq-hdm", "regimen": "cluster", "start": "2026-03-16", "start_time": "09:00"}
LABEL = {"age_years": 14, "weight_kg": 50, "total_ige_iu_ml": 300}
#: what the US label table answers for LABEL (asthma, >= 12 years): computed, not retyped
DOSE = to_jsonable(label_dose("asthma", "us", 14, 50, 300))


@pytest.fixture(autouse=True)
def clinic_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("IMMUNOPLAN_TIMEZONE", ZONE)
    with clock.frozen(NOW):
        yield


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("patients_courses") / "template.sqlite"
    open_registry(path).dispose()
    return path


@pytest.fixture
def reg(template: Path, tmp_path: Path) -> Iterator[Registry]:
    target = tmp_path / "registry.sqlite"
    shutil.copyfile(template, target)
    registry = open_registry(target)
    yield registry
    registry.dispose()


def count(reg: Registry, model: Any) -> int:
    with reg.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def patient(reg: Registry, mrn: str = "MRN-1", **kw: Any) -> dict[str, Any]:
    data = {"mrn": mrn, "name": "Ann Example", "birth_date": "1990-02-03", "sex": "female", **kw}
    return patients.add_patient(reg, "dr.a", data)


# --------------------------------------------------------------------------------------------- patients


def test_add_patient_stores_the_weight_dated_the_clinic_today_in_the_same_transaction(reg: Registry) -> None:
    p = patient(reg, weight_kg="70.5")
    assert p["mrn"] == "MRN-1" and p["display_name"] == "Ann Example" and p["weight_kg"] == 70.5
    assert p["pseudo_id"].startswith("P-") and "MRN" not in p["pseudo_id"]  # random, not from the MRN
    with reg.session() as s:
        w = s.scalars(select(m.Measurement)).one()
        use_cases = set(s.scalars(select(m.AuditEntry.use_case)))
    assert (w.kind, w.value, w.unit, w.patient_id) == ("weight_kg", 70.5, "kg", p["id"])
    assert w.measured_on == date(2026, 3, 10)  # the clinic's date, not UTC's 2026-03-11
    assert use_cases == {"register_patient"}


def test_duplicate_mrn_is_a_conflict_naming_the_existing_patient(reg: Registry) -> None:
    first = patient(reg, weight_kg=70)
    with pytest.raises(Conflict) as exc:
        patient(reg, name="Someone Else", weight_kg=80)
    assert exc.value.field == "mrn" and f"patient {first['id']}" in str(exc.value)
    assert first["pseudo_id"] in str(exc.value)
    assert count(reg, m.Patient) == 1 and count(reg, m.Measurement) == 1


def test_duplicate_pseudonym_is_a_conflict(reg: Registry) -> None:
    rec.register_patient(reg, "dr.a", pseudo_id="P-ONE", sex="male")
    with pytest.raises(Conflict, match="already exists"):
        rec.register_patient(reg, "dr.a", pseudo_id="P-ONE", sex="male", mrn="other")
    assert count(reg, m.Patient) == 1


@pytest.mark.parametrize("birth_date", ["0001-01-01", "9999-12-31", "2026-03-11", "2100-01-01"])
def test_birth_date_in_the_future_or_outside_the_registry_range_is_refused(
    reg: Registry, birth_date: str
) -> None:
    with pytest.raises(InvalidInput) as exc:
        patient(reg, birth_date=birth_date)
    assert exc.value.field == "birth_date" and exc.value.accepted
    assert count(reg, m.Patient) == 0


def test_born_today_in_the_clinic_is_accepted(reg: Registry) -> None:
    assert patient(reg, birth_date="2026-03-10")["birth_date"] == "2026-03-10"  # UTC says 03-11 already


@pytest.mark.parametrize(
    ("field", "value"),
    [("sex", "robot"), ("weight_kg", "6500"), ("weight_kg", "0"), ("height_cm", "tall"), ("mrn", "x" * 65)],
)
def test_patient_fields_outside_their_limits_name_the_field(reg: Registry, field: str, value: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        patient(reg, **{field: value})
    assert exc.value.field == field
    assert count(reg, m.Patient) == 0 and count(reg, m.Measurement) == 0


def test_keyword_register_patient_keeps_its_contract(reg: Registry) -> None:
    p = rec.register_patient(reg, "t", pseudo_id="KW-1", sex="male", age_years=40, diagnoses=[{"code": "aa"}])
    assert p["pseudo_id"] == "KW-1" and p["age_years"] == 40 and p["mrn"] is None
    with pytest.raises(InvalidInput) as exc:  # an explicit blank pseudonym is a typing error, not "generate"
        rec.register_patient(reg, "t", pseudo_id=" ", sex="male")
    assert exc.value.field == "pseudo_id"
    generated = rec.register_patient(reg, "t", sex="female")
    assert generated["pseudo_id"].startswith("P-")
    assert count(reg, m.Patient) == 2


# ---------------------------------------------------------------------------------------------- courses


def test_every_scit_regimen_has_a_registry_course_kind() -> None:
    regimens = {r for p in reference.load("scit_products")["products"].values() for r in p["regimens"]}
    assert regimens <= set(KIND_OF_REGIMEN)
    assert set(KIND_OF_REGIMEN.values()) <= set(m.COURSE_KINDS)
    assert course_kind("rush") == "RIT"
    with pytest.raises(InvalidInput):
        course_kind("weekly")


def test_plan_immunotherapy_stores_ids_and_schedule_parameters_as_columns(reg: Registry) -> None:
    pid = patient(reg)["id"]
    out = courses.plan_immunotherapy(
        reg, "dr.a", pid, {**CLUSTER, **LABEL, "omalizumab": "pre", "omalizumab_lead_weeks": "8"}
    )
    assert (
        out["schedule"][0]["date"] == "2026-03-16" and out["schedule"][0]["injections"][0]["clock"] == "09:00"
    )
    assert out["omalizumab"]["administrations"][0]["date"] == "2026-01-19"  # 8 weeks before the first visit
    with reg.session() as s:
        c = s.get(m.Course, out["id"])
        assert c is not None
        assert (c.kind, c.product_id, c.regimen_id) == ("cluster", "alutard-sq-hdm", "cluster")
        assert (c.start_time, c.maintenance_interval_weeks, c.omalizumab_lead_weeks) == ("09:00", 6, 8)
        assert c.with_omalizumab and c.omalizumab_timing == "pre" and "|" not in (c.regimen or "")
        assert c.started_on == c.next_due_on == date(2026, 3, 16)
        assert courses.stored_label_dose(c) == DOSE
        assert {b["id"] for b in c.basis or []} >= {"scit_products", "omalizumab_us_asthma_12plus"}


def test_an_unverified_regimen_is_refused_naming_the_rule_and_status(reg: Registry) -> None:
    pid = patient(reg)["id"]
    with pytest.raises(InvalidInput) as exc:
        courses.plan_immunotherapy(reg, "dr.a", pid, {**CLUSTER, "regimen": "rush"})
    assert exc.value.field == "regimen"
    assert "UNVERIFIED" in exc.value.reason and "alutard-sq-hdm rush" in exc.value.reason
    assert exc.value.accepted == "cluster, conventional"
    with pytest.raises(InvalidInput, match="UNVERIFIED"):  # the keyword form applies the same rule
        rec.plan_course(
            reg, "dr.a", pseudo_id=patient(reg, mrn="M2")["pseudo_id"], kind="RIT",
            product_id="alutard-sq-hdm", regimen_id="rush",
        )  # fmt: skip
    assert count(reg, m.Course) == 0


def test_an_adjuvant_without_a_label_dose_is_refused(reg: Registry) -> None:
    pid = patient(reg)["id"]
    eu = {**CLUSTER, **LABEL, "omalizumab": "concurrent", "region": "eu"}  # the EU table is UNVERIFIED
    with pytest.raises(InvalidInput) as exc:
        courses.plan_immunotherapy(reg, "dr.a", pid, eu)
    assert exc.value.field == "omalizumab" and "unverified-table" in exc.value.reason
    assert count(reg, m.Course) == 0
    out = courses.plan_immunotherapy(reg, "dr.a", pid, {**eu, "omalizumab_override_reason": "SmPC checked"})
    assert out["omalizumab"]["label_dose"]["override"]  # recorded with the plan


def test_omalizumab_alone_is_planned_at_the_label_dose(reg: Registry) -> None:
    pid = patient(reg)["id"]
    out = courses.plan_omalizumab_course(reg, "dr.a", pid, {"start": "2026-03-12", **LABEL})
    assert out["kind"] == "omalizumab" and out["schedule"] == []
    second = (date(2026, 3, 12) + timedelta(weeks=DOSE["interval_weeks"])).isoformat()
    assert [a["date"] for a in out["omalizumab"]["administrations"][:2]] == ["2026-03-12", second]
    with reg.session() as s:
        c = s.get(m.Course, out["id"])
        assert c is not None and (c.kind, c.dose_unit) == ("omalizumab", "mg")
        assert (c.target_dose, c.interval_days) == (DOSE["dose_mg"], 7 * DOSE["interval_weeks"])
    with pytest.raises(InvalidInput) as exc:  # outside the table: no course
        courses.plan_omalizumab_course(reg, "dr.a", pid, {"start": "2026-03-12", **LABEL, "weight_kg": 200})
    assert exc.value.field == "omalizumab"
    assert count(reg, m.Course) == 1


# -------------------------------------------------------------------------------------------- omalizumab


def test_omalizumab_on_a_course_not_planned_with_it_is_refused(reg: Registry) -> None:
    pid = patient(reg)["id"]
    c = courses.plan_immunotherapy(reg, "dr.a", pid, CLUSTER)
    with pytest.raises(InvalidInput) as exc:
        omalizumab.record_course_omalizumab(reg, "n", course_id=c["id"], dose_mg="300", given_at=NOW)
    assert exc.value.field == "course_id" and "not planned with omalizumab" in exc.value.reason
    with pytest.raises(InvalidInput):  # the keyword form too
        rec.record_omalizumab(
            reg,
            "n",
            pseudo_id=patient(reg, mrn="M2")["pseudo_id"],
            given_at=NOW,
            dose_mg=300,
            course_id=c["id"],
        )
    assert count(reg, m.OmalizumabAdministration) == 0


def test_interval_and_basis_come_from_the_stored_label_dose(reg: Registry) -> None:
    pid = patient(reg)["id"]
    c = courses.plan_immunotherapy(reg, "dr.a", pid, {**CLUSTER, **LABEL, "omalizumab": "concurrent"})
    row = omalizumab.record_course_omalizumab(reg, "n", course_id=c["id"], dose_mg="300", given_at=NOW)
    assert row["interval_weeks"] == DOSE["interval_weeks"] and row["basis"] == [DOSE["basis"]]
    assert row["given_at"] == "2026-03-10T17:30:00-07:00" and row["planned_dose_mg"] == DOSE["dose_mg"]
    with pytest.raises(InvalidInput) as exc:
        omalizumab.record_course_omalizumab(
            reg, "n", course_id=c["id"], dose_mg="0", given_at="2026-03-11T09:00"
        )
    assert exc.value.field == "dose_mg"
    assert count(reg, m.OmalizumabAdministration) == 1


def test_the_same_omalizumab_act_twice_is_a_conflict_naming_the_first(reg: Registry) -> None:
    pid = patient(reg)["id"]
    c = courses.plan_omalizumab_course(reg, "dr.a", pid, {"start": "2026-03-10", **LABEL})
    first = omalizumab.record_course_omalizumab(reg, "n1", course_id=c["id"], dose_mg="300", given_at=NOW)
    with pytest.raises(Conflict) as exc:  # another nurse, 20 s later: the same act
        omalizumab.record_course_omalizumab(
            reg, "n2", course_id=c["id"], dose_mg="300", given_at="2026-03-10T17:30:20"
        )
    assert f"omalizumab administration {first['id']}" in str(exc.value)
    assert "2026-03-10 17:30 PDT" in str(exc.value)  # the first record's time, in clinic time
    assert count(reg, m.OmalizumabAdministration) == 1
    with reg.transaction("dr.a") as s:  # a voided entry no longer blocks entering the act again
        row = s.get(m.OmalizumabAdministration, first["id"])
        assert row is not None
        row.voided_at, row.voided_by, row.void_reason = clock.now(), "dr.a", "wrong patient"
    again = omalizumab.record_course_omalizumab(reg, "n2", course_id=c["id"], dose_mg="300", given_at=NOW)
    assert again["id"] != first["id"]


def test_idempotency_replays_write_one_row(reg: Registry) -> None:
    a = patients.add_patient(reg, "dr.a", {"mrn": "K-1", "sex": "male"}, idempotency_key="patient-key-1")
    b = patients.add_patient(reg, "dr.a", {"mrn": "K-1", "sex": "male"}, idempotency_key="patient-key-1")
    assert b["replayed"] is True and b["id"] == a["id"]
    c1 = courses.plan_immunotherapy(reg, "dr.a", a["id"], CLUSTER, idempotency_key="course-key-1")
    c2 = courses.plan_immunotherapy(reg, "dr.a", a["id"], CLUSTER, idempotency_key="course-key-1")
    assert c2["replayed"] is True and c2["id"] == c1["id"] and c2["schedule"] == c1["schedule"]
    om = courses.plan_omalizumab_course(reg, "dr.a", a["id"], {"start": "2026-03-10", **LABEL})
    args = {"course_id": om["id"], "dose_mg": "300", "given_at": NOW, "idempotency_key": "dose-key-0001"}
    d1 = omalizumab.record_course_omalizumab(reg, "n", **args)
    d2 = omalizumab.record_course_omalizumab(reg, "n", **args)
    assert d2["replayed"] is True and d2["id"] == d1["id"]
    with pytest.raises(Conflict):  # a key already used for another use case
        courses.plan_immunotherapy(reg, "dr.a", a["id"], CLUSTER, idempotency_key="dose-key-0001")
    assert (count(reg, m.Patient), count(reg, m.Course), count(reg, m.OmalizumabAdministration)) == (1, 2, 1)


# ------------------------------------------------------------------------------------------- assessments


def test_assess_and_store_is_one_call_and_invalid_inputs_write_nothing(reg: Registry) -> None:
    pid = patient(reg)["id"]
    inputs = {"age_years": "30", "total_ige_iu_ml": "300", "sige_kua_l": "40", "weight_kg": "70"}
    out = assessments.assess_and_store(
        reg, "dr.a", patient_id=pid, inputs=inputs, idempotency_key="assess-k-1"
    )
    expected = to_jsonable(label_dose("asthma", "us", 30, 70, 300))
    assert out["result"]["omalizumab_label_dose"]["dose_mg"] == expected["dose_mg"] and out["result"]["basis"]
    again = assessments.assess_and_store(
        reg, "dr.a", patient_id=pid, inputs=inputs, idempotency_key="assess-k-1"
    )
    assert again["id"] == out["id"]
    with pytest.raises(InvalidInput) as exc:
        assessments.assess_and_store(reg, "dr.a", patient_id=pid, inputs={**inputs, "age_years": "-1"})
    assert exc.value.field == "age_years"
    with reg.session() as s:
        a = s.scalars(select(m.RiskAssessment)).one()
    assert a.actor == "dr.a" and a.total_ige_iu_ml == 300
    decision: dict[str, Any] = {"pseudo_id": _pseudo(reg, pid), "kind": "dose", "result": {"kind": "dose"}}
    d1 = rec.record_dose_decision(reg, "dr.a", **decision, idempotency_key="decision-k1")
    d2 = rec.record_dose_decision(reg, "dr.a", **decision, idempotency_key="decision-k1")
    assert d2["id"] == d1["id"] and d2["replayed"] is True
    assert count(reg, m.DoseDecision) == 1


def _pseudo(reg: Registry, patient_id: int) -> str:
    with reg.session() as s:
        p = s.get(m.Patient, patient_id)
        assert p is not None
        return p.pseudo_id


def test_show_course_lists_desensitization_session_ids(reg: Registry) -> None:
    """The course page's former 500: session ids are ints, not rows."""
    pseudo = patient(reg)["pseudo_id"]
    c = rec.plan_course(reg, "ph", pseudo_id=pseudo, kind="drug_desensitization", drug="carboplatin")
    with reg.transaction("ph") as s:
        s.add(
            m.DesensitizationSession(
                course_id=c["id"], patient_id=c["patient_id"], session_on=date(2026, 3, 10),
                drug="carboplatin", target_dose_mg=500,
            )
        )  # fmt: skip
    shown = courses.show_course(reg, c["id"])
    assert shown["sessions"] == [1] and shown["course"]["kind"] == "drug_desensitization"
    assert isinstance(datetime.fromisoformat(shown["course"]["created_at"]), datetime)


@pytest.mark.postgres
def test_the_use_cases_on_postgresql(pg_url: str) -> None:
    """Row locks (``SELECT ... FOR UPDATE`` on the patient / course) and the same rules on PostgreSQL."""
    reg = open_registry(pg_url)
    try:
        pid = patient(reg, weight_kg=50)["id"]
        with pytest.raises(Conflict):
            patient(reg)
        c = courses.plan_immunotherapy(reg, "dr.a", pid, {**CLUSTER, **LABEL, "omalizumab": "concurrent"})
        first = omalizumab.record_course_omalizumab(reg, "n", course_id=c["id"], dose_mg="300", given_at=NOW)
        with pytest.raises(Conflict, match=f"omalizumab administration {first['id']}"):
            omalizumab.record_course_omalizumab(reg, "n", course_id=c["id"], dose_mg="300", given_at=NOW)
        assert (count(reg, m.Patient), count(reg, m.Course), count(reg, m.OmalizumabAdministration)) == (
            1,
            1,
            1,
        )
    finally:
        reg.dispose()


def test_the_research_export_drops_the_mrn_and_the_name(reg: Registry, tmp_path: Path) -> None:
    import pandas as pd

    from immunoplan.registry.exporting import export_research

    patient(reg, mrn="MRN-SECRET-1", name="Ann Secret", weight_kg=60)
    export_research(reg, tmp_path / "out", seed=1)
    exported = pd.read_csv(tmp_path / "out" / "patients.csv")
    assert {"mrn", "display_name", "pseudo_id", "birth_date"}.isdisjoint(exported.columns)
    text = "".join(f.read_text() for f in (tmp_path / "out").glob("*.csv"))
    assert "MRN-SECRET-1" not in text and "Ann Secret" not in text
