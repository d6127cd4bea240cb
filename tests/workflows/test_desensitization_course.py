"""The desensitization course around its cycles, through the services and the CLI: one course per patient and
drug, the next cycle's choice (checked against the options computed from the last cycle, recorded with its
basis, shown by ``session show --json``), the index reaction (the drug-allergy alert of the patient and of
every sheet), omalizumab as an off-label adjuvant (doses refused before the plan, recorded after it), the
end of a course. Each refusal leaves nothing behind."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from desens_course_helpers import completed_cycle, mild_then_completed, omalizumab_dose, start
from sqlalchemy import func, select

from immunoplan.errors import InvalidInput
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry, open_registry
from immunoplan.services.records import desensitization as svc
from immunoplan.services.records import register_patient
from immunoplan.services.records.desensitization import course as dc
from immunoplan.services.records.desensitization.sheets import sheet_data
from immunoplan.services.records.patients import show_patient

DAY1 = date(2026, 10, 5)
DAY2 = date(2026, 10, 19)


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Registry]:
    r = open_registry(tmp_path / "registry.sqlite")
    yield r
    r.dispose()


@pytest.fixture
def pid(reg: Registry) -> int:
    return int(register_patient(reg, "t", pseudo_id="C-1", sex="female", height_cm=165, weight_kg=70)["id"])


def _sessions(reg: Registry) -> int:
    with reg.session() as s:
        return int(s.scalar(select(func.count()).select_from(m.DesensitizationSession)) or 0)


def _audit(reg: Registry) -> int:
    with reg.session() as s:
        return int(s.scalar(select(func.count()).select_from(m.AuditEntry)) or 0)


def test_one_course_per_patient_and_drug_holds_its_cycles(reg: Registry, pid: int) -> None:
    s1 = completed_cycle(reg, pid, "oxaliplatin", "160", DAY1)
    s2 = completed_cycle(reg, pid, "Oxaliplatin", "160", DAY2, cycle_choice="same-protocol")
    s3 = completed_cycle(reg, pid, "carboplatin", "500", DAY2)
    v1, v2, v3 = (svc.session_view(reg, s) for s in (s1, s2, s3))
    assert v1["course_id"] == v2["course_id"] != v3["course_id"]
    assert (v1["cycle"], v2["cycle"], v3["cycle"]) == (1, 2, 1)
    shown = dc.course_view(reg, v1["course_id"], patient_id=pid)
    assert [c["session_id"] for c in shown["cycles"]] == [s1, s2]
    assert [c["outcome"] for c in shown["cycles"]] == ["completed", "completed"]
    assert shown["cycles"][1]["cycle_choice"]["choice"] == "same-protocol"


def test_the_options_of_the_next_cycle_come_from_the_last_one(reg: Registry, pid: int) -> None:
    sid = completed_cycle(reg, pid, "oxaliplatin", "160", DAY1)
    course = svc.session_view(reg, sid)["course_id"]
    after_ok = dc.next_cycle_options(reg, course)
    ids = {o["id"]: o for o in after_ok["options"]}
    assert set(ids) == {"same-protocol", "change-bags"} and ids["same-protocol"]["suggested"]
    assert ids["change-bags"]["bags"] == 3 and after_ok["last"]["outcome"] == "completed"
    mild_then_completed(reg, pid, "oxaliplatin", "160", DAY2, 14, cycle_choice="same-protocol")
    after_reaction = {o["id"]: o for o in dc.next_cycle_options(reg, course)["options"]}
    assert {"next-omalizumab", "next-premedication", "next-unchanged-if-cutaneous"} <= set(after_reaction)
    om = after_reaction["next-omalizumab"]
    assert om["basis"]["status"] == "VERIFIED" and "Prieto-Garcia" in om["basis"]["source"]
    assert not after_reaction["same-protocol"]["suggested"]
    assert dc.next_cycle_options(reg, course)["last"]["outcome"] == "completed-with-reactions"


def test_the_cycle_choice_is_recorded_with_its_basis_and_shown(reg: Registry, pid: int, cli: Any) -> None:
    first = mild_then_completed(reg, pid, "oxaliplatin", "160", DAY1, 14)
    r = start(reg, pid, "oxaliplatin", "160", DAY2, cycle_choice="next-omalizumab", from_session_id=first)
    choice = r["cycle_choice"]
    assert choice["choice"] == "next-omalizumab" and choice["from_session_id"] == first
    assert choice["from_cycle"] == 1 and choice["from_outcome"] == "completed-with-reactions"
    assert choice["basis"]["rule"] == "next-omalizumab"
    assert any("no adjuvant omalizumab plan" in w for w in choice["warnings"])
    assert svc.view_json(svc.session_view(reg, r["session_id"]))["cycle_choice"] == choice
    out = cli(
        "desensitization-session",
        "show",
        "--db",
        reg.url.removeprefix("sqlite:///"),
        "--session",
        str(r["session_id"]),
        "--json",
    )
    assert out.code == 0, out.stderr
    assert out.json["cycle_choice"]["choice"] == "next-omalizumab"


@pytest.mark.parametrize(
    ("choice", "extra", "field"),
    [
        ("resume-as-before", {}, "cycle_choice"),  # not an option
        ("next-add-bag", {}, "cycle_choice"),  # applies to 3-bag protocols only
        ("same-protocol", {"bags": 3}, "bags"),  # the same protocol has 4 bags
        ("change-bags", {"bags": 4}, "bags"),  # a change of bag count must change it
        ("same-protocol", {"from_session_id": 999}, "from_session_id"),
    ],
)
def test_a_choice_that_is_not_an_option_is_refused(
    reg: Registry, pid: int, choice: str, extra: dict[str, Any], field: str
) -> None:
    completed_cycle(reg, pid, "oxaliplatin", "160", DAY1)
    n, audit = _sessions(reg), _audit(reg)
    with pytest.raises(InvalidInput) as exc:
        start(reg, pid, "oxaliplatin", "160", DAY2, cycle_choice=choice, **extra)
    assert exc.value.field == field
    assert (_sessions(reg), _audit(reg)) == (n, audit)


def test_a_first_cycle_has_nothing_to_start_from(reg: Registry, pid: int) -> None:
    with pytest.raises(InvalidInput, match="no earlier cycle"):
        start(reg, pid, "oxaliplatin", "160", DAY1, cycle_choice="same-protocol")
    assert _sessions(reg) == 0


def test_index_reaction_is_the_alert_of_the_patient_and_of_every_sheet(reg: Registry, pid: int) -> None:
    sid = completed_cycle(reg, pid, "oxaliplatin", "160", DAY1)
    course = svc.session_view(reg, sid)["course_id"]
    before = show_patient(reg, pid)["drug_allergy_alerts"]
    assert len(before) == 1 and "index reaction not recorded" in before[0]["text"]
    r = dc.record_index_reaction(
        reg,
        "dr",
        {
            "course_id": course,
            "reaction_on": "2026-09-01",
            "drug": "oxaliplatin",
            "grade": "severe",
            "skin_test": "positive",
            "skin_test_detail": "PT 5 mg/mL",
            "phenotype": "mixed",
        },
    )
    i = r["index_reaction"]
    assert (i["grade"], i["grade_number"], i["scale"]) == ("severe", 3, "brown2004")
    alert = show_patient(reg, pid)["drug_allergy_alerts"][0]["text"]
    assert (
        alert
        == "drug allergy: oxaliplatin, brown2004 grade 3 (severe), mixed, 2026-09-01, skin test positive"
    )
    assert sheet_data(reg, sid)["sheet"]["allergy_alert"] == alert
    sid2 = completed_cycle(reg, pid, "oxaliplatin", "160", DAY2)
    assert sheet_data(reg, sid2)["sheet"]["allergy_alert"] == alert  # every sheet of the course


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"grade": "4"}, "grade"),
        ({"grade": "anaphylaxis"}, "grade"),
        ({"scale": "ring-messmer"}, "scale"),
        ({"skin_test": "maybe"}, "skin_test"),
        ({"phenotype": "type IV"}, "phenotype"),
        ({"reaction_on": "2027-01-01"}, "reaction_on"),
        ({"course_id": 999}, "course_id"),
    ],
)
def test_an_index_reaction_outside_the_vocabulary_is_refused(
    reg: Registry, pid: int, change: dict[str, Any], field: str
) -> None:
    sid = completed_cycle(reg, pid, "oxaliplatin", "160", DAY1)
    course = svc.session_view(reg, sid)["course_id"]
    audit = _audit(reg)
    data = {"course_id": course, "reaction_on": "2026-09-01", "drug": "oxaliplatin", "grade": "2", **change}
    with pytest.raises(InvalidInput) as exc:
        dc.record_index_reaction(reg, "dr", data)
    assert exc.value.field == field and _audit(reg) == audit


def test_omalizumab_for_a_desensitization_course_needs_the_adjuvant_plan(reg: Registry, pid: int) -> None:
    sid = mild_then_completed(reg, pid, "oxaliplatin", "160", DAY1, 14)
    course = svc.session_view(reg, sid)["course_id"]
    with pytest.raises(InvalidInput, match="adjuvant omalizumab plan") as exc:
        omalizumab_dose(reg, course, date(2026, 10, 20))
    assert exc.value.field == "course_id"
    with pytest.raises(InvalidInput) as bad:
        dc.plan_adjuvant_omalizumab(reg, "dr", course, "concurrent_with_scit", "2026-11-02")
    assert bad.value.field == "regimen_id"
    plan = dc.plan_adjuvant_omalizumab(reg, "dr", course, "desensitization_adjuvant", "2026-11-02")
    node = plan["omalizumab_adjuvant"]
    assert node["off_label"] and node["label"].startswith("OFF-LABEL") and node["status"] == "VERIFIED"
    pre = [a["date"] for a in node["schedule"]["administrations"][:2]]
    assert pre == ["2026-10-19", "2026-11-01"]  # 14 and 1 days before (omalizumab_regimens default)
    dose = omalizumab_dose(reg, course, date(2026, 10, 20))
    assert dose["dose_mg"] == 300 or str(dose["dose_mg"]) == "300"
    assert dose["basis"][0]["rule"] == "desensitization_adjuvant"
    shown = dc.course_view(reg, course, patient_id=pid)
    kinds = [e["kind"] for e in shown["course_calendar"]]
    assert "cycle" in kinds and "omalizumab" in kinds and "omalizumab-plan" in kinds
    assert shown["omalizumab_administrations"][0]["dose_mg"] == 300


def test_cli_index_reaction_options_adjuvant_and_dose(reg: Registry, pid: int, cli: Any) -> None:
    sid = completed_cycle(reg, pid, "oxaliplatin", "160", DAY1)
    course = str(svc.session_view(reg, sid)["course_id"])
    db = reg.url.removeprefix("sqlite:///")
    r = cli(
        "desensitization-session",
        "index-reaction",
        "--db",
        db,
        "--course",
        course,
        "--date",
        "2026-09-01",
        "--drug",
        "oxaliplatin",
        "--grade",
        "2",
        "--scale",
        "brown2004",
        "--skin-test",
        "positive",
        "--json",
    )
    assert r.code == 0, r.stderr
    assert r.json["index_reaction"]["grade"] == "moderate"
    bad = cli(
        "desensitization-session",
        "index-reaction",
        "--db",
        db,
        "--course",
        course,
        "--date",
        "2026-09-01",
        "--drug",
        "oxaliplatin",
        "--grade",
        "9",
        "--json",
    )
    assert bad.code == 2 and "grade" in bad.stderr
    o = cli("desensitization-session", "cycle-options", "--db", db, "--course", course, "--json")
    assert o.code == 0 and o.json["options"][0]["id"] == "same-protocol"
    no = cli(
        "omalizumab-dose",
        "record",
        "--db",
        db,
        "--course",
        course,
        "--dose-mg",
        "300",
        "--given-at",
        "2026-10-05T12:00",
        "--json",
    )
    assert no.code == 2 and "course_id" in no.stderr
    a = cli(
        "desensitization-session",
        "adjuvant-omalizumab",
        "--db",
        db,
        "--course",
        course,
        "--start-on",
        "2026-11-02",
        "--json",
    )
    assert a.code == 0, a.stderr
    assert a.json["omalizumab_adjuvant"]["off_label"] is True
    d = cli(
        "omalizumab-dose",
        "record",
        "--db",
        db,
        "--course",
        course,
        "--dose-mg",
        "300",
        "--given-at",
        "2026-10-05T12:00",
        "--json",
    )
    assert d.code == 0, d.stderr


def test_a_course_ends_only_without_a_session_in_progress(reg: Registry, pid: int) -> None:
    r = start(reg, pid, "oxaliplatin", "160", DAY1)
    with pytest.raises(InvalidInput, match="in progress"):
        dc.end_course(reg, "dr", r["course_id"], "stopped", "withdrawn")
    svc.finish_session(reg, "nurse", {"session_id": r["session_id"], "outcome": "stopped"})
    with pytest.raises(InvalidInput) as exc:
        dc.end_course(reg, "dr", r["course_id"], "stopped", "  ")
    assert exc.value.field == "reason"
    done = dc.end_course(reg, "dr", r["course_id"], "stopped", "oxaliplatin withdrawn")
    assert done["status"] == "stopped"
    with pytest.raises(InvalidInput, match="stopped"):
        dc.plan_adjuvant_omalizumab(reg, "dr", r["course_id"], "desensitization_adjuvant", "2026-12-01")
