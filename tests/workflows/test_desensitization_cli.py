"""``immunoplan desensitization-session``: start, step, reaction, finish, show; exit 2 with one stderr line on
a refusal (the service's rules), nothing written; replays with the same ``--idempotency-key``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from immunoplan import clock
from immunoplan.registry import models as m
from immunoplan.registry.db import open_registry
from immunoplan.services.records import register_patient

START = "2026-11-21T09:00"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A registry with one patient (id 1); the clinic clock pinned at 09:00 on the session day."""
    monkeypatch.setenv("IMMUNOPLAN_TIMEZONE", "America/Los_Angeles")
    path = tmp_path / "registry.sqlite"
    reg = open_registry(path)
    register_patient(reg, "setup", pseudo_id="RDD-1", sex="female")
    reg.dispose()
    with clock.frozen(START):
        yield str(path)


def at(minutes: float) -> None:
    clock.set_now(clock.parse_local("at", START) + timedelta(minutes=minutes))


def _start(cli: Any, db: str, *extra: str) -> dict[str, Any]:
    r = cli(
        "desensitization-session",
        "start",
        "--db",
        db,
        "--patient",
        "1",
        "--drug",
        "oxaliplatin",
        "--dose-mg",
        "160",
        "--bag-volume-ml",
        "250",
        "--final-rate-ml-h",
        "80",
        "--start",
        "09:00",
        "--session-on",
        "2026-11-21",
        "--by",
        "dr.cli",
        "--json",
        *extra,
    )
    assert r.code == 0, r.stderr
    return r.json  # type: ignore[no-any-return]


def _step(cli: Any, db: str, session: int, step: int, *extra: str) -> Any:
    return cli(
        "desensitization-session",
        "step",
        "--db",
        db,
        "--session",
        str(session),
        "--step",
        str(step),
        "--json",
        *extra,
    )


def _rows(db: str) -> dict[str, int]:
    reg = open_registry(db)
    try:
        with reg.session() as s:
            return {
                "steps": s.scalar(select(func.count()).select_from(m.DesensitizationStep)) or 0,
                "reactions": s.scalar(select(func.count()).select_from(m.Reaction)) or 0,
                "audit": s.scalar(select(func.count()).select_from(m.AuditEntry)) or 0,
            }
    finally:
        reg.dispose()


def _refused(r: Any, *words: str) -> None:
    assert r.code == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_start_step_in_order_and_show(cli: Any, db: str) -> None:
    out = _start(cli, db)
    sid = out["session_id"]
    assert len(out["steps"]) == 12 and out["dosing_allowed"] is True and out["cycle"] == 1
    r = _step(cli, db, sid, 1)
    assert r.code == 0 and r.json["step_no"] == 1
    assert r.json["started_at"] == "2026-11-21T09:00:00-08:00"  # clinic-local with its offset
    assert r.json["next_step"] == {"replan_no": 0, "step_no": 2, "earliest_at": "2026-11-21T09:15:00-08:00"}
    before = _rows(db)
    at(15)
    _refused(_step(cli, db, sid, 3), "step_no", "rdd-session-steps-in-order", "accepted: 2")
    assert _rows(db) == before
    assert _step(cli, db, sid, 2).code == 0
    show = cli("desensitization-session", "show", "--db", db, "--session", str(sid), "--json")
    assert show.code == 0
    steps = show.json["protocols"][0]["steps"]
    assert [st["recorded"]["status"] for st in steps[:2]] == ["given", "given"] and steps[2]["next"]
    text = cli("desensitization-session", "show", "--db", db, "--session", str(sid))
    assert text.code == 0 and "oxaliplatin" in text.stdout


def test_unverified_plan_is_refused(cli: Any, db: str) -> None:
    sid = _start(cli, db, "--bags", "4")["session_id"]
    before = _rows(db)
    _refused(_step(cli, db, sid, 1), "UNVERIFIED", "rdd-session-unverified-needs-override")
    assert _rows(db) == before
    other = _start(
        cli, db, "--bags", "4", "--override-unverified", "seed 004 protocol", "--session-on", "2026-11-22"
    )
    assert other["dosing_allowed"] is True and other["course_id"] == 1  # the same course: its second cycle


def test_same_step_twice_replays_or_names_the_first(cli: Any, db: str) -> None:
    sid = _start(cli, db)["session_id"]
    first = _step(cli, db, sid, 1, "--idempotency-key", "cli-step-1-aaaa")
    again = _step(cli, db, sid, 1, "--idempotency-key", "cli-step-1-aaaa")
    assert again.code == 0 and again.json["replayed"] is True and again.json["id"] == first.json["id"]
    before = _rows(db)
    _refused(
        _step(cli, db, sid, 1, "--idempotency-key", "cli-step-1-bbbb"),
        f"desensitization step {first.json['id']}",
    )
    assert _rows(db) == before


def test_early_step_needs_a_reason(cli: Any, db: str) -> None:
    sid = _start(cli, db)["session_id"]
    _step(cli, db, sid, 1)
    at(3)
    _refused(_step(cli, db, sid, 2), "early_reason", "rdd-session-step-time")
    r = _step(cli, db, sid, 2, "--early-reason", "no symptoms, physician present")
    assert r.code == 0 and r.json["early_reason"] == "no symptoms, physician present"


def test_reaction_at_the_final_step_then_continuation_and_finish(cli: Any, db: str) -> None:
    sid = _start(cli, db)["session_id"]
    for n in range(1, 13):
        at(15 * (n - 1))
        assert _step(cli, db, sid, n).code == 0
    at(12 * 15)
    base = ("desensitization-session", "reaction", "--db", db, "--session", str(sid), "--step", "12")
    _refused(cli(*base, "--severity", "awful"), "severity", "awful")
    r = cli(
        *base,
        "--severity",
        "mild",
        "--minutes-into-step",
        "20",
        "--symptom",
        "flushing",
        "--json",
        "--by",
        "nurse.c",
    )
    assert r.code == 0, r.stderr
    assert [s["step_no"] for s in r.json["continuation"]] == [11, 12]
    assert r.json["reaction"]["scale"] == "brown2004"
    at(12 * 15 + 30)
    _refused(_step(cli, db, sid, 12), "the next step is 11")
    assert _step(cli, db, sid, 11).code == 0
    at(12 * 15 + 45)
    assert _step(cli, db, sid, 12, "--replan", "1").code == 0
    fin = cli(
        "desensitization-session",
        "finish",
        "--db",
        db,
        "--session",
        str(sid),
        "--outcome",
        "completed",
        "--json",
    )
    assert fin.code == 0 and fin.json["outcome"] == "completed-with-reactions"
    _refused(_step(cli, db, sid, 12), "finished")
    reg = open_registry(db)
    try:
        with reg.session() as s:
            actors = set(s.scalars(select(m.AuditEntry.actor).where(m.AuditEntry.table_name == "reactions")))
    finally:
        reg.dispose()
    assert actors == {"nurse.c"}


def test_severe_reaction_stops_and_finish_completed_is_refused(cli: Any, db: str) -> None:
    sid = _start(cli, db)["session_id"]
    _step(cli, db, sid, 1)
    r = cli(
        "desensitization-session", "reaction", "--db", db, "--session", str(sid), "--step", "1",
        "--severity", "severe", "--json",
    )  # fmt: skip
    assert r.code == 0 and r.json["continuation"] == []
    at(20)
    _refused(_step(cli, db, sid, 2), "stopped the protocol")
    fin = ("desensitization-session", "finish", "--db", db, "--session", str(sid), "--outcome")
    _refused(cli(*fin, "completed"), "outcome", "rdd-session-complete-needs-last-step")
    assert cli(*fin, "stopped", "--json").json["status"] == "stopped"


def test_bad_input_is_one_line(cli: Any, db: str) -> None:
    sid = _start(cli, db)["session_id"]
    _refused(_step(cli, db, sid, 1, "--status", "done"), "status", "given, paused, skipped, stopped")
    _refused(_step(cli, db, sid, 1, "--given-at", "noon"), "given_at")
    _refused(_step(cli, db, 99, 1), "session_id", "no desensitization session 99")
    r = cli(
        "desensitization-session", "start", "--db", db, "--patient", "1", "--drug", "x", "--dose-mg", "-1",
        "--bag-volume-ml", "250", "--final-rate-ml-h", "80", "--session-on", "2026-11-21",
    )  # fmt: skip
    _refused(r, "dose_mg")


def test_reaction_graded_from_findings(cli: Any, db: str) -> None:
    sid = _start(cli, db)["session_id"]
    _step(cli, db, sid, 1)
    base = ("desensitization-session", "reaction", "--db", db, "--session", str(sid), "--step", "1")
    _refused(cli(*base, "--finding", "wheeze", "--severity", "mild"), "severity", "accepted: moderate")
    r = cli(*base, "--finding", "wheeze", "--finding", "hypoxia", "--spo2-pct", "90", "--json")
    assert r.code == 0, r.stderr
    assert r.json["grade"]["grade"] == "severe" and r.json["grade"]["basis"]["status"] == "SECONDARY"
    assert r.json["continuation"] == []
