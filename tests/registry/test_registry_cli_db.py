"""`immunoplan db init|migrate|backup|restore|info` (SQLite; PostgreSQL backup/restore marked postgres)."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import func, select

from immunoplan.registry import models as m
from immunoplan.registry.db import head_revision, open_registry
from immunoplan.services import records as rec


def test_db_init_creates_and_reports_revision(cli, tmp_path):
    path = tmp_path / "new" / "reg.sqlite"
    r = cli("db", "init", "--db", path, "--json")
    assert r.code == 0, r.stderr
    assert r.json["revision"] == head_revision() and r.json["dialect"] == "sqlite"
    assert path.exists()
    r2 = cli("db", "migrate", "--db", path, "--json")
    assert r2.code == 0 and r2.json["from_revision"] == r2.json["revision"] == head_revision()


def test_db_info_human_output(cli, tmp_path):
    path = tmp_path / "reg.sqlite"
    r = cli("db", "info", "--db", path)
    assert r.code == 0 and "patients" in r.stdout


def test_db_rejects_both_db_and_url(cli, tmp_path):
    r = cli("db", "init", "--db", tmp_path / "a.sqlite", "--url", "sqlite:///x", "--json")
    assert r.code == 2 and r.stderr.startswith("error: --db") and r.stdout == ""


def test_db_rejects_unknown_backend(cli):
    r = cli("db", "init", "--url", "mysql://u@h/d")
    assert r.code == 2 and "url" in r.stderr and "Traceback" not in r.stderr


def _add(reg, pid):
    rec.register_patient(reg, "t", pseudo_id=pid, sex="female")


def _count(reg):
    with reg.session() as s:
        return s.scalar(select(func.count()).select_from(m.Patient))


def test_backup_while_writing_and_restore_round_trip(cli, tmp_path):
    path, out = tmp_path / "reg.sqlite", tmp_path / "bk" / "backup.sqlite"
    reg = open_registry(path)
    _add(reg, "A")
    # an open write transaction in another connection does not block or leak into the backup
    writer = sqlite3.connect(path)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute(
        "INSERT INTO patients (pseudo_id, sex, cohort, created_at) VALUES ('UNCOMMITTED', 'male', "
        "'clinic', '2025-01-01')"
    )
    r = cli("db", "backup", "--db", path, "--out", out, "--json")
    writer.rollback()
    writer.close()
    assert r.code == 0, r.stderr
    assert r.json["method"] == "sqlite-online-backup"
    _add(reg, "B")  # changed after the backup
    assert _count(reg) == 2
    reg.dispose()
    r = cli("db", "restore", "--db", path, "--from", out, "--json")
    assert r.code == 0, r.stderr
    reg = open_registry(path)
    with reg.session() as s:
        assert s.scalars(select(m.Patient.pseudo_id)).all() == ["A"]
        last = s.scalars(select(m.AuditEntry).order_by(m.AuditEntry.id.desc())).first()
    assert last.action == "restore" and last.after["restored_from"] == str(out)
    reg.dispose()


def test_restore_refuses_a_file_that_is_not_a_backup(cli, tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"not a database" * 100)
    path = tmp_path / "reg.sqlite"
    open_registry(path).dispose()
    r = cli("db", "restore", "--db", path, "--from", bad)
    assert r.code == 2 and "from" in r.stderr
    assert cli("db", "restore", "--db", path, "--from", tmp_path / "missing").code == 2


@pytest.mark.postgres
def test_postgres_backup_and_restore(cli, pg_url, tmp_path):
    reg = open_registry(pg_url)
    _add(reg, "A")
    out = tmp_path / "pg.dump"
    r = cli("db", "backup", "--url", pg_url, "--out", out, "--json")
    assert r.code == 0, r.stderr
    _add(reg, "B")
    reg.dispose()
    r = cli("db", "restore", "--url", pg_url, "--from", out, "--json")
    assert r.code == 0, r.stderr
    reg = open_registry(pg_url)
    with reg.session() as s:
        assert s.scalars(select(m.Patient.pseudo_id)).all() == ["A"]
    reg.dispose()


@pytest.mark.parametrize(
    "args",
    [
        ("db", "migrate", "--url", "oracle://u@h/d"),
        ("db", "backup", "--db", "{tmp}/missing.sqlite", "--out", "{tmp}/b.sqlite"),
        ("db", "backup", "--out", "{tmp}/b.sqlite", "--url", "sqlite://"),
        ("db", "info", "--url", "not a url"),
        ("export", "research", "--db", "{tmp}/a.sqlite", "--url", "sqlite:///x", "--out", "{tmp}/r"),
        ("export", "fhir", "--url", "mysql://u@h/d", "--out", "{tmp}/f.json"),
        ("export", "tables", "--db", "{tmp}/a.sqlite", "--out", "{tmp}/t", "--table", "users"),
        ("import", "{tmp}/x.csv", "--db", "{tmp}/a.sqlite", "--table", "nonsense"),
        ("due", "--db", "{tmp}/a.sqlite", "--window-days", "-2"),
    ],
)
def test_bad_input_exits_2_with_one_line(cli, tmp_path, args):
    (tmp_path / "x.csv").write_text("pseudo_id,sex\nA,female\n")
    r = cli(*[a.format(tmp=tmp_path) for a in args])
    assert r.code == 2, (r.stdout, r.stderr)
    assert r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1 and r.stdout == ""
