"""``immunoplan desensitization-session baseline`` and ``reaction`` with structured treatments
(``--treatment DRUG:DOSE:UNIT:ROUTE[@HH:MM]``, repeatable), vital signs, tryptase, the scale and the
endophenotype; the issue's walk (oxaliplatin 160 mg, 250 mL, 80 mL/h, 3 bags; a reaction at the final step 12,
the resume steps given, finished) and bronchospasm at SpO2 90 % graded severe; bad values exit 2 naming the
field, nothing written."""

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
S = "desensitization-session"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("IMMUNOPLAN_TIMEZONE", "Europe/Oslo")
    path = tmp_path / "registry.sqlite"
    reg = open_registry(path)
    register_patient(reg, "setup", pseudo_id="OX-1", sex="female")
    reg.dispose()
    with clock.frozen(START):
        yield str(path)


def at(minutes: float) -> None:
    clock.set_now(clock.parse_local("at", START) + timedelta(minutes=minutes))


def _start(cli: Any, db: str) -> int:
    r = cli(
        S, "start", "--db", db, "--patient", "1", "--drug", "oxaliplatin", "--dose-mg", "160",
        "--bag-volume-ml", "250", "--final-rate-ml-h", "80", "--bags", "3", "--start", "09:00",
        "--session-on", "2026-11-21", "--by", "dr.cli", "--json",
    )  # fmt: skip
    assert r.code == 0, r.stderr
    return int(r.json["session_id"])


def _step(cli: Any, db: str, sid: int, n: int, *extra: str) -> Any:
    return cli(S, "step", "--db", db, "--session", str(sid), "--step", str(n), "--json", *extra)


def _reactions(db: str) -> int:
    reg = open_registry(db)
    try:
        with reg.session() as s:
            return int(s.scalar(select(func.count()).select_from(m.Reaction)) or 0)
    finally:
        reg.dispose()


def test_the_walk_with_baseline_treatments_vitals_and_tryptase(cli: Any, db: str) -> None:
    sid = _start(cli, db)
    b = cli(
        S, "baseline", "--db", db, "--session", str(sid), "--tryptase-ng-ml", "3.9", "--systolic-bp-mmhg",
        "126", "--diastolic-bp-mmhg", "78", "--temperature-c", "36.6", "--json",
    )  # fmt: skip
    assert b.code == 0, b.stderr
    assert b.json["baseline"]["tryptase_at"] == "2026-11-21T09:00:00+01:00"
    for n in range(1, 13):
        at(15 * (n - 1))
        assert _step(cli, db, sid, n).code == 0
    at(12 * 15)
    r = cli(
        S, "reaction", "--db", db, "--session", str(sid), "--step", "12", "--minutes-into-step", "20",
        "--finding", "flushing", "--symptom", "flushing", "--onset-at", "2026-11-21T11:58",
        "--systolic-bp-mmhg", "118", "--diastolic-bp-mmhg", "72", "--heart-rate-bpm", "98",
        "--spo2-pct", "97", "--temperature-c", "37.0", "--tryptase-ng-ml", "6.4",
        "--treatment", "cetirizine:20:mg:PO@11:59", "--treatment", "famotidine:20:mg:IV@12:00",
        "--treatment-note", "infusion paused 15 min", "--json", "--by", "nurse.c",
    )  # fmt: skip
    assert r.code == 0, r.stderr
    assert r.json["grade"]["grade"] == "mild" and r.json["phenotype"]["phenotype"] == "type I"
    assert [s["step_no"] for s in r.json["continuation"]] == [11, 12]
    at(12 * 15 + 30)
    assert _step(cli, db, sid, 11).code == 0
    at(12 * 15 + 45)
    assert _step(cli, db, sid, 12, "--replan", "1").code == 0
    fin = cli(S, "finish", "--db", db, "--session", str(sid), "--outcome", "completed", "--json")
    assert fin.code == 0 and fin.json["outcome"] == "completed-with-reactions"
    show = cli(S, "show", "--db", db, "--session", str(sid), "--json")
    assert show.code == 0, show.stderr
    rx = show.json["reactions"][0]
    assert [(t["drug"], t["dose"], t["unit"], t["route"], t["given_at"]) for t in rx["treatments"]] == [
        ("cetirizine", "20", "mg", "PO", "2026-11-21T11:59:00+01:00"),
        ("famotidine", "20", "mg", "IV", "2026-11-21T12:00:00+01:00"),
    ]
    assert rx["vital_signs"]["diastolic_bp_mmhg"] == "72" and rx["vital_signs"]["temperature_c"] == "37.0"
    assert rx["tryptase_ng_ml"] == 6.4 and rx["phenotype"] == "type I"
    assert rx["treatment"] == "infusion paused 15 min"
    assert show.json["baseline"]["tryptase_ng_ml"] == 3.9
    text = cli(S, "show", "--db", db, "--session", str(sid))
    flat = " ".join(text.stdout.split())  # the console wraps long lines
    assert text.code == 0 and "cetirizine 20 mg PO" in flat and "phenotype type I" in flat


def test_bronchospasm_at_spo2_90_is_severe_and_stops(cli: Any, db: str) -> None:
    sid = _start(cli, db)
    assert _step(cli, db, sid, 1).code == 0
    r = cli(
        S, "reaction", "--db", db, "--session", str(sid), "--step", "1", "--finding", "wheeze",
        "--spo2-pct", "90", "--scale", "wao2017", "--json",
    )  # fmt: skip
    assert r.code == 0, r.stderr
    assert r.json["grade"]["scale"] == "wao2017"
    brown = r.json["grade"]["brown"]
    assert brown["grade"] == "severe" and brown["basis"]["status"] == "SECONDARY"
    assert r.json["continuation"] == []


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("--temperature-c", "420"), "temperature_c"),
        (("--tryptase-ng-ml", "-1"), "tryptase_ng_ml"),
        (("--treatment", "x" * 5000 + ":1:mg:IV"), "treatments.0.drug"),
        (("--treatment", "epinephrine:0.5:mg"), "treatments.0"),
        (
            ("--treatment", "epinephrine:0.5:mg:IM", "--treatment", "salbutamol:4:puffs:ear"),
            "treatments.1.route",
        ),
        (("--diastolic-bp-mmhg", "abc"), "diastolic_bp_mmhg"),
        (("--scale", "nope"), "scale"),
    ],
)
def test_bad_values_exit_2_naming_the_field(cli: Any, db: str, args: tuple[str, ...], field: str) -> None:
    sid = _start(cli, db)
    assert _step(cli, db, sid, 1).code == 0
    r = cli(S, "reaction", "--db", db, "--session", str(sid), "--step", "1", "--finding", "wheeze", *args)
    assert r.code == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0] and len(lines[0]) < 600, lines
    assert _reactions(db) == 0
    bad = cli(S, "baseline", "--db", db, "--session", str(sid), "--temperature-c", "420")
    assert bad.code == 2 and "temperature_c" in bad.stderr
