"""Corrections, never deletions (services.records.corrections): void and amend need a reason, a voided entry
cannot be corrected again, the original stays in the audit trail, amendments are re-validated, and voided
entries are ignored by the next dose, the due list, the research export and the analysis frames."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from immunoplan import clock
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry, open_registry
from immunoplan.registry.exporting import export_research
from immunoplan.registry.fhir import export_bundle
from immunoplan.registry.frames import read_analysis_tables
from immunoplan.services import records as rec
from immunoplan.services.records import corrections, injections, visits


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "corrections.sqlite"


@pytest.fixture
def reg(db: Path) -> Iterator[Registry]:
    r = open_registry(db)
    with clock.frozen("2026-11-20T10:00"):
        rec.register_patient(r, "dr.a", pseudo_id="C-1", sex="female", age_years=30)
        yield r
    r.dispose()


def _weekly_course(reg: Registry, **kw: Any) -> int:
    """A SCIT course without a catalogue schedule: next due = last live injection + 7 days."""
    c = rec.plan_course(reg, "dr.a", pseudo_id="C-1", kind="SCIT", interval_days=7, dose_unit="SQ-U", **kw)
    return int(c["id"])


def _inject(reg: Registry, course_id: int, at: str, dose: str = "100") -> int:
    row = rec.record_injection(reg, "nurse", course_id=course_id, given_at=at, dose=dose, dose_unit="SQ-U")
    return int(row["id"])


def _row(reg: Registry, model: type, row_id: int) -> Any:
    with reg.session() as s:
        return s.get(model, row_id)


def test_void_needs_a_reason_and_nothing_changes_without_one(reg: Registry) -> None:
    inj = _inject(reg, _weekly_course(reg), "2026-11-02T09:00")
    for reason, field in (
        ("", "reason"),
        ("   ", "reason"),
        ("x" * (corrections.REASON_MAX_CHARS + 1), "reason"),
    ):
        with pytest.raises(InvalidInput) as exc:
            corrections.void(reg, "dr.a", "injection", inj, reason)
        assert exc.value.field == field
    with pytest.raises(InvalidInput) as exc:
        corrections.void(reg, "dr.a", "prescription", inj, "wrong")
    assert exc.value.field == "kind"
    assert _row(reg, m.Injection, inj).voided_at is None


def test_voided_twice_is_a_conflict_and_a_voided_entry_cannot_be_amended(reg: Registry) -> None:
    inj = _inject(reg, _weekly_course(reg), "2026-11-02T09:00")
    done = corrections.void(reg, "dr.a", "injection", inj, "recorded on the wrong patient")
    assert done["voided_by"] == "dr.a" and done["void_reason"] == "recorded on the wrong patient"
    with pytest.raises(Conflict) as exc:
        corrections.void(reg, "dr.b", "injection", inj, "again")
    assert exc.value.record == f"injection {inj}"
    with pytest.raises(Conflict):
        corrections.amend(reg, "dr.b", "injection", inj, {"lot": "L2"}, "lot typo")
    row = _row(reg, m.Injection, inj)
    assert row.voided_by == "dr.a" and row.lot is None and row.amended_at is None


def test_amend_keeps_the_original_in_the_audit_trail(reg: Registry) -> None:
    inj = rec.record_injection(
        reg,
        "nurse",
        course_id=_weekly_course(reg),
        given_at="2026-11-02T09:00",
        dose="100",
        dose_unit="SQ-U",
        lot="L-1",
    )["id"]
    out = corrections.amend(reg, "dr.a", "injection", inj, {"lot": "L-7"}, "lot number misread")
    assert out["changed"] == {"lot": {"before": "L-1", "after": "L-7"}}
    with reg.session() as s:
        trail = corrections.history(s, "injection", inj)
    assert [e["action"] for e in trail] == ["insert", "update"]
    assert trail[0]["after"]["lot"] == "L-1"  # the original as recorded
    update = trail[1]
    assert update["use_case"] == "amend_injection" and update["actor"] == "dr.a"
    assert update["before"]["lot"] == "L-1" and update["after"]["lot"] == "L-7"
    assert update["after"]["amend_reason"] == "lot number misread"


def test_amend_revalidates_limits_and_nothing_changes(reg: Registry) -> None:
    course = _weekly_course(reg)
    inj = _inject(reg, course, "2026-11-02T09:00")
    for changes, field in (
        ({"dose_ml": "50"}, "dose_ml"),  # field limit dose_ml (0, 10] mL
        ({"site": "left leg"}, "site"),  # vocabulary INJECTION_SITES
        ({"given_at": "2027-01-01T09:00"}, "given_at"),  # after the clinic clock
        ({"colour": "red"}, "colour"),  # not an amendable field
    ):
        with pytest.raises(InvalidInput) as exc:
            corrections.amend(reg, "dr.a", "injection", inj, changes, "correction")
        assert exc.value.field == field, changes
    row = _row(reg, m.Injection, inj)
    assert row.amended_at is None and row.volume_ml is None and row.site is None
    v = visits.record_visit_with_results(
        reg, "n", _pid(reg), {"code": "baseline", "visit_on": "2026-11-02", "act": "3,3,4,3,3"}
    )
    with pytest.raises(InvalidInput) as exc:
        corrections.amend(reg, "dr.a", "visit", v["id"], {"act": "3,3,9,3,3"}, "ACT items")
    assert exc.value.field == "act"  # re-scored by the questionnaire engine: item 3 out of range
    with reg.session() as s:
        q = s.scalars(select(m.Questionnaire)).one()
        assert q.score == 16 and q.amended_at is None


def _pid(reg: Registry) -> int:
    with reg.session() as s:
        return int(s.scalars(select(m.Patient.id)).one())


def test_amending_a_questionnaire_rescores_its_items(reg: Registry) -> None:
    v = visits.record_visit_with_results(
        reg, "n", _pid(reg), {"code": "baseline", "visit_on": "2026-11-02", "act": "3,3,4,3,3"}
    )
    qid = v["questionnaires"]["ACT"]["id"]
    out = corrections.amend(reg, "dr.a", "questionnaire", qid, {"items": "5,5,5,5,5"}, "items re-read")
    assert out["changed"]["score"] == {"before": 16.0, "after": 25.0}
    with pytest.raises(InvalidInput) as exc:
        corrections.amend(reg, "dr.a", "questionnaire", qid, {"score": 12}, "score")
    assert exc.value.field == "score"  # computed from the items


def test_a_voided_injection_is_ignored_by_the_due_list(reg: Registry) -> None:
    course = _weekly_course(reg)
    _inject(reg, course, "2026-11-02T09:00")
    second = _inject(reg, course, "2026-11-09T09:00")
    assert _row(reg, m.Course, course).next_due_on.isoformat() == "2026-11-16"
    assert rec.list_due_injections(reg, as_of="2026-11-12") == []
    out = corrections.void(reg, "dr.a", "injection", second, "given to another patient")
    assert out["course"]["next_due_on"] == "2026-11-09"
    due = rec.list_due_injections(reg, as_of="2026-11-12")
    assert [(d["course_id"], d["next_due_on"], d["status"]) for d in due] == [(course, "2026-11-09", "late")]
    assert due[0]["last_injection_at"].startswith("2026-11-02")


def test_a_voided_injection_is_ignored_by_the_next_dose(reg: Registry) -> None:
    c = rec.plan_course(
        reg,
        "dr.a",
        pseudo_id="C-1",
        kind="SCIT",
        product_id="alutard-sq-hdm",
        regimen_id="conventional",
        started_on="2026-11-02",
        dose_unit="SQ-U",
    )["id"]
    first = injections.next_dose(reg, c, "2026-11-02T09:00")["dose"]
    rec.record_injection(
        reg, "n", course_id=c, given_at="2026-11-02T09:00", dose_ml=first["volume_ml"], vial=first["vial"]
    )
    after_one = injections.next_dose(reg, c, "2026-11-09T09:00")
    due_after_one = _row(reg, m.Course, c).next_due_on
    second = rec.record_injection(
        reg,
        "n",
        course_id=c,
        given_at="2026-11-09T09:00",
        dose_ml=after_one["dose"]["volume_ml"],
        vial=after_one["dose"]["vial"],
    )["id"]
    assert injections.next_dose(reg, c, "2026-11-16T09:00")["dose"] != after_one["dose"]
    corrections.void(reg, "dr.a", "injection", second, "wrong course")
    now = injections.next_dose(reg, c, "2026-11-09T09:00")
    assert now["dose"] == after_one["dose"] and len(now["history"]) == 1
    assert _row(reg, m.Course, c).next_due_on == due_after_one


def test_a_voided_injection_is_not_a_cause_of_a_reaction(reg: Registry) -> None:
    inj = _inject(reg, _weekly_course(reg), "2026-11-02T09:00")
    corrections.void(reg, "dr.a", "injection", inj, "duplicate entry")
    with pytest.raises(InvalidInput) as exc:
        rec.record_reaction(
            reg,
            "dr.a",
            pseudo_id="C-1",
            kind="local",
            grade="up-to-quarter",
            scale="local-size",
            injection_id=inj,
        )
    assert exc.value.field == "injection_id"


def test_amending_a_reaction_onset_rederives_its_timing(reg: Registry) -> None:
    inj = _inject(reg, _weekly_course(reg), "2026-11-02T09:00")
    r = rec.record_reaction(
        reg,
        "dr.a",
        pseudo_id="C-1",
        kind="systemic",
        grade="mild",
        scale="seed001",
        findings=["urticaria"],
        onset_at="2026-11-02T09:20",
        injection_id=inj,
    )
    assert r["minutes_after_dose"] == 20
    corrections.amend(reg, "dr.a", "reaction", r["id"], {"onset_at": "2026-11-02T09:45"}, "onset mistyped")
    assert _row(reg, m.Reaction, r["id"]).minutes_after_dose == 45
    with pytest.raises(InvalidInput):
        corrections.amend(reg, "dr.a", "reaction", r["id"], {"findings": "itchy-nose"}, "findings")


def test_a_voided_visit_voids_its_results(reg: Registry) -> None:
    v = visits.record_visit_with_results(
        reg,
        "n",
        _pid(reg),
        {"code": "baseline", "visit_on": "2026-11-02", "act": "3,3,4,3,3", "feno_ppb": "40"},
    )
    out = corrections.void(reg, "dr.a", "visit", v["id"], "wrong patient")
    assert sorted(x.split()[0] for x in out["also_voided"]) == ["measurement", "questionnaire"]
    again = visits.record_visit_with_results(
        reg, "n", _pid(reg), {"code": "baseline", "visit_on": "2026-11-02", "act": "3,3,4,3,3"}
    )
    assert again["id"] != v["id"]  # a voided entry may be entered anew


def test_step_amend_recomputes_the_cumulative_dose(reg: Registry) -> None:
    c = rec.plan_course(reg, "dr.a", pseudo_id="C-1", kind="drug_desensitization", drug="carboplatin")
    sess = rec.start_desensitization(
        reg, "ph", course_id=c["id"], session_on="2026-11-02", drug="carboplatin", target_dose_mg="500"
    )
    steps = [
        rec.record_step(reg, "n", session_id=sess["id"], step_no=n, dose_mg=d)
        for n, d in enumerate(["0.04", "0.1", "0.2"], 1)
    ]
    corrections.amend(reg, "dr.a", "step", steps[0]["id"], {"dose_mg": "0.05"}, "dose misread")
    corrections.void(reg, "dr.a", "step", steps[1]["id"], "not given")
    assert Decimal(_row(reg, m.DesensitizationStep, steps[2]["id"]).cumulative_dose_mg) == Decimal("0.25")


def test_voided_rows_are_absent_from_the_research_export_fhir_and_the_analysis_frames(
    reg: Registry, db: Path, tmp_path: Path
) -> None:
    keep = visits.record_visit_with_results(
        reg, "n", _pid(reg), {"code": "baseline", "visit_on": "2026-11-02", "feno_ppb": "40"}
    )
    gone = visits.record_visit_with_results(
        reg, "n", _pid(reg), {"code": "week12", "visit_on": "2026-11-09", "feno_ppb": "31"}
    )
    corrections.void(reg, "dr.a", "visit", gone["id"], "entered for the wrong patient")
    export_research(reg, tmp_path / "research", seed=1)
    with (tmp_path / "research" / "measurements.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["value"]) for r in rows] == [40.0]
    assert not {"voided_by", "void_reason", "amended_by", "amend_reason"} & set(
        rows[0]
    )  # staff names, free text
    with (tmp_path / "research" / "visits.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 1
    frames = read_analysis_tables(str(db))
    assert list(frames["measurements"]["value"]) == [40.0]
    assert list(frames["visits"]["visit_id"]) == [keep["id"]]
    bundle = export_bundle(reg)
    encounters = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter"]
    assert len(encounters) == 1
