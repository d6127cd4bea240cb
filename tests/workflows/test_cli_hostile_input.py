"""Hostile input at the CLI edge (`immunoplan.cli.registry_options`): a registry id out of range or not a
number, or an empty required text option, exits 2 with one stderr line naming the option and the accepted
range, before the registry is opened (nothing written, no traceback); the registry administration commands
take ``--by`` and still ``--actor``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from immunoplan.registry import models as m
from immunoplan.registry.db import open_registry

HUGE = "99999999999999999999999"  # beyond SQLite INTEGER: reached the driver and raised OverflowError

# (the command before the id option, the option, what follows it)
ID_OPTIONS = [
    (("patient", "show"), "--patient", ()),
    (
        ("course", "plan"),
        "--patient",
        ("--kind", "scit", "--product", "alutard-sq-hdm", "--regimen", "cluster", "--start", "2026-06-16"),
    ),
    (("course", "show"), "--course", ()),
    (("injection", "record"), "--course", ("--dose-ml", "0.1", "--given-at", "2026-06-15T09:00")),
    (("injection", "next"), "--course", ()),
    (("omalizumab-dose", "record"), "--course", ("--dose-mg", "300", "--given-at", "2026-06-15T09:00")),
    (("visit", "record"), "--patient", ("--code", "baseline", "--on", "2026-06-15", "--feno-ppb", "30")),
    (
        ("visit", "record", "--patient", "1"),
        "--course",
        ("--code", "baseline", "--on", "2026-06-15", "--feno-ppb", "30"),
    ),
    (("void", "--kind", "injection"), "--id", ("--reason", "wrong patient")),
    (("amend", "--kind", "injection"), "--id", ("--set", "lot=L-1", "--reason", "typo")),
    (
        ("desensitization-session", "start"),
        "--patient",
        (
            "--drug",
            "carboplatin",
            "--dose-mg",
            "600",
            "--bag-volume-ml",
            "250",
            "--final-rate-ml-h",
            "80",
            "--session-on",
            "2026-06-15",
        ),
    ),  # fmt: skip
    (("desensitization-session", "step"), "--session", ("--step", "1")),
    (("desensitization-session", "reaction"), "--session", ("--step", "1", "--finding", "flushing")),
    (("desensitization-session", "finish"), "--session", ("--outcome", "stopped")),
    (("desensitization-session", "show"), "--session", ()),
]


def _refused_before_opening(r: Any, db: Path, *words: str) -> None:
    assert r.code == 2 and r.stdout == "", (r.code, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr and "Value error" not in r.stderr, r.stderr
    for w in words:
        assert w in lines[0], lines[0]
    assert not db.exists()  # refused while parsing: the registry was not even opened


@pytest.mark.parametrize("value", [HUGE, "0", "-3", "abc", "1e5"])
@pytest.mark.parametrize(
    ("command", "option", "rest"), ID_OPTIONS, ids=[f"{' '.join(c[:2])} {o}" for c, o, _ in ID_OPTIONS]
)
def test_a_registry_id_outside_its_range_exits_2_naming_the_option(
    cli: Any, tmp_path: Path, command: tuple[str, ...], option: str, rest: tuple[str, ...], value: str
) -> None:
    db = tmp_path / "never.sqlite"
    r = cli(*command, option, value, *rest, "--db", db, "--json")
    _refused_before_opening(r, db, option, "[1, 2147483647]")


@pytest.mark.parametrize("option", ["--mrn", "--name", "--sex"])
@pytest.mark.parametrize("blank", ["", "   "])
def test_patient_add_refuses_an_empty_required_option(
    cli: Any, tmp_path: Path, option: str, blank: str
) -> None:
    """An empty ``--mrn`` was stored as a patient without MRN, an empty ``--sex`` as ``unknown``."""
    args = {"--mrn": "MRN-1", "--name": "Ann Example", "--sex": "female"} | {option: blank}
    db = tmp_path / "never.sqlite"
    r = cli("patient", "add", *(x for kv in args.items() for x in kv), "--birth-date", "1990-02-03",
            "--db", db, "--json")  # fmt: skip
    _refused_before_opening(r, db, option, "required")


@pytest.mark.parametrize("flag", ["--by", "--actor"])
def test_db_restore_records_the_actor_given_by_by_or_actor(cli: Any, tmp_path: Path, flag: str) -> None:
    db, backup = tmp_path / "reg.sqlite", tmp_path / "backup.sqlite"
    assert cli("db", "init", "--db", db, "--json").code == 0
    assert cli("db", "backup", "--db", db, "--out", backup, "--json").code == 0
    r = cli("db", "restore", "--db", db, "--from", backup, flag, "dr.restore", "--json")
    assert r.code == 0, r.stderr
    reg = open_registry(db)
    try:
        with reg.session() as s:
            last = s.scalars(select(m.AuditEntry).order_by(m.AuditEntry.id.desc())).first()
    finally:
        reg.dispose()
    assert last is not None and (last.action, last.actor) == ("restore", "dr.restore")
