"""``immunoplan injection record|next``: the CLI contract of issue 10 (one JSON object, clinic-local times,
exit 0 on success, exit 2 with one stderr line naming the field/rule/range or the conflicting record; a
repeated command with the same idempotency key writes one row)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from immunoplan import clock
from immunoplan.registry import models as m
from immunoplan.registry.db import open_registry
from immunoplan.services import records as rec


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("IMMUNOPLAN_TIMEZONE", "Europe/Oslo")
    path = tmp_path / "cli.sqlite"
    reg = open_registry(path)
    rec.register_patient(reg, "dr.a", pseudo_id="CLI-1", sex="male", birth_date="1980-05-05")
    rec.plan_course(
        reg,
        "dr.a",
        pseudo_id="CLI-1",
        kind="cluster",
        product_id="alutard-sq-hdm",
        regimen_id="cluster",
        started_on="2026-03-10",
        dose_unit="SQ-U",
    )
    reg.dispose()
    with clock.frozen("2026-03-10T09:05"):
        yield path


def _rows(db: Path) -> int:
    reg = open_registry(db)
    try:
        with reg.session() as s:
            return int(s.scalar(select(func.count()).select_from(m.Injection)) or 0)
    finally:
        reg.dispose()


def _record(cli: Any, db: Path, *extra: Any) -> Any:
    return cli("injection", "record", "--course", 1, "--db", db, "--by", "nurse.kim", "--json", *extra)


def test_next_before_any_injection_is_the_schedules_first_dose(cli: Any, db: Path) -> None:
    r = cli("injection", "next", "--course", 1, "--db", db, "--json")
    assert r.code == 0, r.stderr
    j = r.json
    assert j["dose_ml"] == 0.1 and j["dose"]["vial"] == 1 and j["due_date"] == "2026-03-10"
    assert j["earliest_at"] is None and j["history"] == []
    assert set(j["rule"]) >= {"id", "source", "status"} and j["rule"]["id"] == "schedule-first-injection"


def test_record_prints_the_stored_injection_and_next(cli: Any, db: Path) -> None:
    r = _record(
        cli, db, "--dose-ml", "0.1", "--strength", "1", "--given-at", "2026-03-10T09:00", "--lot", "L-123"
    )
    assert r.code == 0, r.stderr
    j = r.json
    assert (j["dose"], j["dose_unit"], j["lot"], j["given_by"]) == (10, "SQ-U", "L-123", "nurse.kim")
    assert j["given_at"] == "2026-03-10T09:00:00+01:00"  # clinic-local ISO with its offset
    now = cli("injection", "next", "--course", 1, "--db", db, "--json").json
    assert j["next"]["dose"] == now["dose"] and j["next"]["earliest_at"] == now["earliest_at"]
    assert now["earliest_at"] == "2026-03-10T09:30:00+01:00" and now["due_date"] == "2026-03-10"
    assert [h["date"] for h in now["history"]] == ["2026-03-10"]
    assert now["rule"]["id"] == "same-day-continuation" and now["rule"]["status"] == "VERIFIED"
    later = cli("injection", "next", "--course", 1, "--db", db, "--at", "2026-03-17T09:00", "--json")
    assert (
        later.code == 0 and later.json["rule"]["id"] != "same-day-continuation"
    )  # the visit was left unfinished


def test_the_same_command_with_the_same_key_writes_one_row(cli: Any, db: Path) -> None:
    args = (
        "--dose-ml",
        "0.1",
        "--strength",
        "1",
        "--given-at",
        "2026-03-10T09:00",
        "--idempotency-key",
        "cli-key-0001",
    )
    first, again = _record(cli, db, *args), _record(cli, db, *args)
    assert first.code == again.code == 0
    assert again.json["replayed"] is True and again.json["id"] == first.json["id"]
    assert _rows(db) == 1


def test_the_same_act_without_a_key_exits_2_naming_the_first_record(cli: Any, db: Path) -> None:
    first = _record(cli, db, "--dose-ml", "0.1", "--strength", "1", "--given-at", "2026-03-10T09:00")
    r = cli(
        "injection", "record", "--course", 1, "--db", db, "--by", "nurse.lee", "--json",
        "--dose-ml", "0.1", "--strength", "1", "--given-at", "2026-03-10T09:00:30",
    )  # fmt: skip
    assert r.code == 2 and r.stdout == "" and r.stderr.count("\n") == 1
    assert f"injection {first.json['id']} given 09:00 by nurse.kim" in r.stderr
    assert _rows(db) == 1


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (("--dose-ml", "25", "--strength", "1", "--given-at", "2026-03-10T09:00"), ("dose_ml", "mL")),
        (("--dose-ml", "0.1", "--strength", "1", "--given-at", "10/03/2026"), ("given_at", "clinic time")),
        (("--dose-ml", "0.1", "--strength", "1", "--given-at", "2026-03-10T10:00"), ("given_at", "future")),
        (("--dose-ml", "0.1", "--strength", "7", "--given-at", "2026-03-10T09:00"), ("vial", "1, 2, 3, 4")),
        (("--dose-ml", "0.1", "--site", "leg", "--given-at", "2026-03-10T09:00"), ("site", "left arm")),
    ],
)
def test_refusals_exit_2_with_one_line_naming_the_field_and_range(
    cli: Any, db: Path, args: tuple[str, ...], names: tuple[str, ...]
) -> None:
    r = _record(cli, db, *args)
    assert r.code == 2 and r.stdout == "" and r.stderr.count("\n") == 1, (r.stdout, r.stderr)
    assert all(n in r.stderr for n in names), r.stderr
    assert _rows(db) == 0


def test_too_early_exits_2_naming_the_rule_and_override_records_the_reason(cli: Any, db: Path) -> None:
    assert _record(cli, db, "--dose-ml", "0.1", "--strength", "1", "--given-at", "2026-03-10T09:00").code == 0
    early = ("--dose-ml", "0.1", "--strength", "2", "--given-at", "2026-03-10T09:04")
    r = _record(cli, db, *early)
    assert r.code == 2 and "same-visit-interval" in r.stderr and "override_reason" in r.stderr
    ok = _record(cli, db, *early, "--override-reason", "allergist present, patient must leave")
    assert ok.code == 0 and ok.json["override_reason"] == "allergist present, patient must leave"
    assert ok.json["override"]["rule"]["id"] == "same-visit-interval"
    assert _rows(db) == 2


def test_unknown_course_exits_2(cli: Any, db: Path) -> None:
    r = cli("injection", "next", "--course", 99, "--db", db, "--json")
    assert r.code == 2 and "--course" in r.stderr and r.stderr.count("\n") == 1
    r = cli(
        "injection",
        "record",
        "--course",
        99,
        "--db",
        db,
        "--dose-ml",
        "0.1",
        "--given-at",
        "2026-03-10T09:00",
    )
    assert r.code == 2 and "course_id" in r.stderr
