"""`immunoplan demo` and `immunoplan due` from the command line."""

from __future__ import annotations

from immunoplan.registry.db import open_registry
from immunoplan.services import records as rec


def test_demo_json_reports_cohorts_and_counts(cli, tmp_path):
    db = tmp_path / "demo.sqlite"
    r = cli("demo", "--db", db, "--seed", "3", "--json")
    assert r.code == 0, r.stderr
    out = r.json
    assert out["cohorts"] == {"seed001": 37, "seed000": 202, "clinic": 12}
    assert out["registry"]["tables"]["patients"] == 251
    assert out["calibration"]["id"] == "registry_demo_calibration"
    again = cli("demo", "--db", db, "--json")
    assert again.code == 2 and "already holds" in again.stderr and again.stdout == ""
    replaced = cli("demo", "--db", db, "--replace", "--patients", "20")
    assert replaced.code == 0 and "seed000" in replaced.stdout


def test_demo_rejects_bad_patient_count(cli, tmp_path):
    r = cli("demo", "--db", tmp_path / "x.sqlite", "--patients", "1")
    assert r.code == 2 and r.stderr.startswith("error: --patients")


def test_due_lists_late_injections(cli, tmp_path):
    db = tmp_path / "r.sqlite"
    reg = open_registry(db)
    rec.register_patient(reg, "t", pseudo_id="P1", sex="male")
    c = rec.plan_course(reg, "t", pseudo_id="P1", kind="SCIT", interval_days=7)
    rec.record_injection(
        reg, "t", course_id=c["id"], given_at="2025-03-01T10:00", dose="20", dose_unit="SQ-U"
    )
    reg.dispose()
    r = cli("due", "--db", db, "--as-of", "2025-03-20", "--json")
    assert r.code == 0, r.stderr
    assert [(x["pseudo_id"], x["status"], x["days_overdue"]) for x in r.json["injections"]] == [
        ("P1", "late", 12)
    ]
    human = cli("due", "--db", db, "--as-of", "2025-03-20")
    assert "P1" in human.stdout and "late" in human.stdout
    assert cli("due", "--db", db, "--as-of", "someday").code == 2
    assert cli("due", "--db", db, "--grace-days", "-1").code == 2


def test_demo_without_the_clinic_list(cli, tmp_path):
    r = cli("demo", "--db", tmp_path / "d.sqlite", "--no-clinic", "--patients", "4", "--json")
    assert r.code == 0 and r.json["cohorts"] == {"seed001": 37, "seed000": 4}
