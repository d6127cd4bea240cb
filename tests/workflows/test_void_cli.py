"""The CLI contract of ``immunoplan visit record``, ``immunoplan void`` and ``immunoplan amend``: --db, --by,
--json (one JSON object), --idempotency-key; exit 0 on success, 2 on refusal with one stderr line naming the
field and the accepted range, or the record it conflicts with."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from immunoplan import clock
from immunoplan.registry import models as m
from immunoplan.registry.db import open_registry
from immunoplan.services import records as rec


@pytest.fixture
def db(tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "cli.sqlite"
    with clock.frozen("2026-11-20T10:00"):
        reg = open_registry(path)
        rec.register_patient(reg, "dr.a", pseudo_id="CLI-1", sex="female", birth_date="2012-06-15")
        c = rec.plan_course(reg, "dr.a", pseudo_id="CLI-1", kind="SCIT", interval_days=7, dose_unit="SQ-U")
        rec.record_injection(
            reg, "n", course_id=c["id"], given_at="2026-11-02T09:00", dose="100", dose_unit="SQ-U"
        )
        reg.dispose()
        yield str(path)


def _refused(r: Any, *words: str) -> None:
    assert r.code == 2 and r.stdout == "", (r.code, r.stdout)
    line = r.stderr.strip()
    assert "\n" not in line and line.startswith("error: "), r.stderr
    for w in words:
        assert w in line, line


def _rows(db: str, model: type) -> list[Any]:
    reg = open_registry(db)
    try:
        with reg.session() as s:
            return list(s.scalars(select(model).order_by(model.id)))
    finally:
        reg.dispose()


VISIT = ("visit", "record", "--patient", "1", "--code", "baseline", "--on", "2026-06-01")


def test_visit_record_json_and_same_day_visit_refused_naming_it(cli: Any, db: str) -> None:
    r = cli(
        *VISIT,
        "--act",
        "4,4,3,4,3",
        "--fev1-l",
        "2.5",
        "--fvc-l",
        "3.2",
        "--height-cm",
        "160",
        "--feno-ppb",
        "40",
        "--by",
        "nurse.kim",
        "--db",
        db,
        "--json",
    )
    assert r.code == 0, r.stderr
    out = r.json
    assert out["questionnaires"]["ACT"]["score"] == 18 and out["age_years_at_visit"] == 13
    assert out["spirometry"]["fev1"]["z"] is not None
    again = cli(*VISIT, "--act", "4,4,4,4,4", "--db", db, "--json")
    _refused(again, f"visit {out['id']}", "amend")
    bad = cli(*VISIT[:-1], "2026-06-02", "--act", "4,4,9,4,3", "--db", db)
    _refused(bad, "act", "item 3")
    _refused(cli(*VISIT[:-1], "2026-06-03", "--feno-ppb", "5000", "--db", db), "feno_ppb", "ppb")
    assert len(_rows(db, m.Visit)) == 1
    assert _rows(db, m.Visit)[0].id == out["id"]


def test_void_contract(cli: Any, db: str) -> None:
    _refused(cli("void", "--kind", "injection", "--id", "1", "--db", db), "--reason")
    _refused(cli("void", "--kind", "injection", "--id", "1", "--reason", " ", "--db", db), "reason")
    _refused(
        cli("void", "--kind", "prescription", "--id", "1", "--reason", "x", "--db", db), "kind", "injection"
    )
    _refused(cli("void", "--kind", "injection", "--id", "99", "--reason", "x", "--db", db), "no injection 99")
    args = (
        "void",
        "--kind",
        "injection",
        "--id",
        "1",
        "--reason",
        "wrong patient",
        "--by",
        "dr.b",
        "--db",
        db,
    )
    r = cli(*args, "--idempotency-key", "cli-void-0001", "--json")
    assert r.code == 0, r.stderr
    assert r.json["voided_by"] == "dr.b" and r.json["void_reason"] == "wrong patient"
    assert datetime.fromisoformat(r.json["voided_at"]).utcoffset() is not None  # clinic-local, with offset
    replay = cli(*args, "--idempotency-key", "cli-void-0001", "--json")
    assert replay.code == 0 and replay.json["replayed"] is True
    _refused(cli(*args, "--json"), "already voided", "injection 1")
    row = _rows(db, m.Injection)[0]
    assert row.voided_by == "dr.b" and row.void_reason == "wrong patient"


def test_amend_contract(cli: Any, db: str) -> None:
    base = ("amend", "--kind", "injection", "--id", "1", "--db", db)
    r = cli(*base, "--set", "lot=L-7", "--set", "site=left arm", "--reason", "lot misread", "--json")
    assert r.code == 0, r.stderr
    assert r.json["changed"]["lot"] == {"before": None, "after": "L-7"}
    assert r.json["course"]["next_due_on"] == "2026-11-09"
    _refused(cli(*base, "--set", "dose_ml=50", "--reason", "x"), "dose_ml", "mL")
    _refused(cli(*base, "--set", "lot", "--reason", "x"), "--set", "field=value")
    _refused(cli(*base, "--set", "colour=red", "--reason", "x"), "colour", "lot")
    _refused(cli(*base, "--set", "lot=L-7", "--reason", "x"), "nothing to change")
    _refused(cli(*base, "--set", "lot=L-8"), "--reason")
    row = _rows(db, m.Injection)[0]
    assert row.lot == "L-7" and row.site == "left arm" and row.volume_ml is None
    assert row.amended_by is not None and row.amend_reason == "lot misread"
