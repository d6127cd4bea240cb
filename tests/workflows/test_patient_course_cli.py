"""The CLI contract of issue 10 for patients, courses and omalizumab doses: ``patient add`` ->
``{"id": ...}``, ``course plan`` -> ``{"id": ..., "schedule": [...]}``, ``omalizumab-dose record``; exit 0 on
success, 2 with one stderr line naming the field and the rule, or the record it conflicts with. Clinic clock
pinned."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from immunoplan import clock
from immunoplan.registry import models as m
from immunoplan.registry.db import open_registry

ZONE = "America/Los_Angeles"


@pytest.fixture(autouse=True)
def clinic_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("IMMUNOPLAN_TIMEZONE", ZONE)
    with clock.frozen("2026-03-10T17:30"):
        yield


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "registry.sqlite")


def _count(db: str, model: Any) -> int:
    reg = open_registry(db)
    try:
        with reg.session() as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        reg.dispose()


def _refused(r: Any, *words: str) -> None:
    assert r.code == 2 and r.stdout == "", r.stdout
    line = r.stderr.strip()
    assert "\n" not in line and line.startswith("error: "), r.stderr
    for w in words:
        assert w in line, line


ADD = (
    "patient",
    "add",
    "--mrn",
    "MRN-7",
    "--name",
    "Ann Example",
    "--birth-date",
    "1990-02-03",
    "--sex",
    "female",
)


def test_patient_add_then_course_plan_then_show(cli: Any, db: str) -> None:
    r = cli(*ADD, "--weight-kg", "70", "--db", db, "--by", "dr.a", "--json")
    assert r.code == 0, r.stderr
    p = r.json
    assert isinstance(p["id"], int) and p["mrn"] == "MRN-7" and p["pseudo_id"].startswith("P-")
    assert p["weight_kg"] == 70.0 and p["created_at"].endswith("-07:00")  # clinic-local with its offset
    r = cli(
        "course", "plan", "--patient", str(p["id"]), "--kind", "scit", "--product", "alutard-sq-hdm",
        "--regimen", "cluster", "--start", "2026-03-16", "--start-time", "09:00", "--db", db, "--json",
    )  # fmt: skip
    assert r.code == 0, r.stderr
    c = r.json
    assert isinstance(c["id"], int) and isinstance(c["schedule"], list) and c["schedule"]
    first = c["schedule"][0]
    assert first["date"] == "2026-03-16" and [i["clock"] for i in first["injections"]] == [
        "09:00",
        "09:30",
        "10:00",
    ]
    assert (c["course"]["product_id"], c["course"]["regimen_id"], c["course"]["kind"]) == (
        "alutard-sq-hdm",
        "cluster",
        "cluster",
    )
    shown = cli("patient", "show", "--patient", str(p["id"]), "--db", db, "--json")
    assert shown.code == 0 and shown.json["courses"][0]["id"] == c["id"] and shown.json["weight_kg"] == 70.0
    assert shown.json["age_years"] == 36
    course = cli("course", "show", "--course", str(c["id"]), "--db", db, "--json")
    assert course.code == 0 and course.json["course"]["maintenance_interval_weeks"] == 6
    with open_registry(db).session() as s:
        actors = set(s.scalars(select(m.AuditEntry.actor)))
    assert "dr.a" in actors


def test_refusals_exit_2_with_one_line(cli: Any, db: str) -> None:
    assert cli(*ADD, "--db", db, "--json").code == 0
    _refused(cli(*ADD, "--db", db, "--json"), "mrn", "already exists", "patient 1")
    bad_day = list(ADD)
    bad_day[bad_day.index("1990-02-03")] = "0001-01-01"
    _refused(cli(*bad_day, "--mrn", "other", "--db", db), "birth_date", "1900-01-01")
    future = [a if a != "1990-02-03" else "2026-03-11" for a in ADD]  # tomorrow in the clinic
    _refused(cli(*future, "--db", db), "birth_date", "future")
    _refused(cli(*ADD, "--weight-kg", "7000", "--db", db), "weight_kg", "kg")
    plan = ("course", "plan", "--patient", "1", "--start", "2026-03-16", "--db", db, "--json")
    _refused(
        cli(*plan, "--kind", "scit", "--product", "alutard-sq-hdm", "--regimen", "rush"), "UNVERIFIED", "rush"
    )
    _refused(cli(*plan, "--kind", "injection"), "--kind", "scit, omalizumab")
    _refused(cli(*plan, "--kind", "scit", "--product", "nope", "--regimen", "cluster"), "product")
    _refused(
        cli(
            "course",
            "plan",
            "--patient",
            "99",
            "--kind",
            "omalizumab",
            "--start",
            "2026-03-16",
            "--age-years",
            "14",
            "--weight-kg",
            "50",
            "--total-ige-iu-ml",
            "300",
            "--db",
            db,
        ),  # fmt: skip
        "patient",
    )
    assert _count(db, m.Patient) == 1 and _count(db, m.Course) == 0


def test_omalizumab_course_and_dose_record(cli: Any, db: str) -> None:
    pid = cli(*ADD, "--db", db, "--json").json["id"]
    label = ("--age-years", "14", "--weight-kg", "50", "--total-ige-iu-ml", "300")
    r = cli(
        "course", "plan", "--patient", str(pid), "--kind", "omalizumab", "--start", "2026-03-10", *label,
        "--db", db, "--json",
    )  # fmt: skip
    assert r.code == 0, r.stderr
    cid = r.json["id"]
    assert r.json["schedule"] == [] and r.json["omalizumab"]["label_dose"]["status"] == "dose"
    dose = ("omalizumab-dose", "record", "--course", str(cid), "--dose-mg", "300", "--db", db, "--json")
    first = cli(*dose, "--given-at", "2026-03-10T17:30", "--idempotency-key", "cli-dose-0001", "--by", "n1")
    assert first.code == 0, first.stderr
    assert first.json["given_at"] == "2026-03-10T17:30:00-07:00" and first.json["interval_weeks"] == 4
    replay = cli(*dose, "--given-at", "2026-03-10T17:30", "--idempotency-key", "cli-dose-0001", "--by", "n1")
    assert replay.code == 0 and replay.json["replayed"] is True and replay.json["id"] == first.json["id"]
    _refused(
        cli(*dose, "--given-at", "2026-03-10T17:30:40"),
        "given_at",
        f"omalizumab administration {first.json['id']}",
    )
    scit = cli(
        "course", "plan", "--patient", str(pid), "--kind", "scit", "--product", "alutard-sq-hdm",
        "--regimen", "conventional", "--start", "2026-03-16", "--db", db, "--json",
    )  # fmt: skip
    assert scit.code == 0
    no_om = ("omalizumab-dose", "record", "--course", str(scit.json["id"]), "--dose-mg", "300", "--db", db)
    _refused(cli(*no_om, "--given-at", "2026-03-10T17:00"), "course_id", "not planned with omalizumab")
    assert _count(db, m.OmalizumabAdministration) == 1


def test_scit_with_omalizumab_pretreatment(cli: Any, db: str) -> None:
    pid = cli(*ADD, "--db", db, "--json").json["id"]
    r = cli(
        "course", "plan", "--patient", str(pid), "--kind", "scit", "--product", "hdm-tyrosine-ultrarush",
        "--regimen", "rush", "--start", "2026-05-04", "--omalizumab", "pre", "--omalizumab-lead-weeks", "8",
        "--age-years", "14", "--weight-kg", "50", "--total-ige-iu-ml", "300", "--db", db, "--json",
    )  # fmt: skip
    assert r.code == 0, r.stderr
    assert r.json["course"]["kind"] == "RIT" and r.json["course"]["omalizumab_lead_weeks"] == 8
    assert r.json["omalizumab"]["administrations"][0]["date"] == "2026-03-09"
    missing = cli(
        "course", "plan", "--patient", str(pid), "--kind", "scit", "--product", "hdm-tyrosine-ultrarush",
        "--regimen", "rush", "--start", "2026-05-04", "--omalizumab", "pre", "--db", db,
    )  # fmt: skip
    _refused(missing, "needed for the omalizumab label dose")
