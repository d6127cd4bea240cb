"""CLI: `assessment record` stores the assessment shown (with its basis) and `injection reaction` records a
graded reaction to the last injection with the next dose from the adjustment rules; refusals exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from immunoplan import clock
from immunoplan.registry import models as m
from immunoplan.registry.db import open_registry


@pytest.fixture
def db(cli, tmp_path: Path) -> str:
    path = str(tmp_path / "c.sqlite")
    with clock.frozen("2026-03-10T09:00"):
        assert (
            cli(
                "patient",
                "add",
                "--db",
                path,
                "--mrn",
                "7",
                "--name",
                "A B",
                "--birth-date",
                "2012-01-02",
                "--sex",
                "female",
                "--json",
            ).code
            == 0
        )
        assert (
            cli(
                "course",
                "plan",
                "--db",
                path,
                "--patient",
                "1",
                "--kind",
                "scit",
                "--product",
                "alutard-sq-hdm",
                "--regimen",
                "cluster",
                "--start",
                "2026-03-10",
                "--json",
            ).code
            == 0
        )
    return path


def _count(path: str, model: type) -> int:
    reg = open_registry(path)
    try:
        with reg.session() as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        reg.dispose()


def test_assessment_record_stores_the_result_with_its_basis(cli, db: str) -> None:
    r = cli(
        "assessment",
        "record",
        "--db",
        db,
        "--patient",
        "1",
        "--age",
        "14",
        "--total-ige",
        "420",
        "--sige",
        "68",
        "--by",
        "dr.lee",
        "--json",
    )
    assert r.code == 0, r.stderr
    assert r.json["result"]["risk"]["risk_tier"] == "high"
    assert r.json["result"]["basis"], "the stored assessment lists every rule's basis"
    assert _count(db, m.RiskAssessment) == 1


def test_assessment_record_refuses_bad_input_and_writes_nothing(cli, db: str) -> None:
    r = cli(
        "assessment",
        "record",
        "--db",
        db,
        "--patient",
        "1",
        "--age",
        "400",
        "--total-ige",
        "420",
        "--sige",
        "68",
        "--json",
    )
    assert r.code == 2 and "age_years" in r.stderr and "[0, 120]" in r.stderr
    r = cli(
        "assessment",
        "record",
        "--db",
        db,
        "--patient",
        "99",
        "--age",
        "14",
        "--total-ige",
        "420",
        "--sige",
        "68",
        "--json",
    )
    assert r.code == 2 and "99" in r.stderr
    assert _count(db, m.RiskAssessment) == 0


def test_injection_reaction_grades_records_and_gives_the_dose_after_it(cli, db: str) -> None:
    with clock.frozen("2026-03-10T09:40"):
        assert (
            cli(
                "injection",
                "record",
                "--db",
                db,
                "--course",
                "1",
                "--dose-ml",
                "0.1",
                "--vial",
                "1",
                "--given-at",
                "2026-03-10T09:05",
                "--json",
            ).code
            == 0
        )
        r = cli(
            "injection",
            "reaction",
            "--db",
            db,
            "--course",
            "1",
            "--kind",
            "systemic",
            "--symptom",
            "urticaria",
            "--symptom",
            "wheeze",
            "--by",
            "nurse.kim",
            "--json",
        )
    assert r.code == 0, r.stderr
    assert r.json["next"]["rule"]["id"] == "lsu-systemic-tenth"
    assert _count(db, m.Reaction) == 1


def test_injection_reaction_refuses_an_unknown_finding(cli, db: str) -> None:
    with clock.frozen("2026-03-10T09:40"):
        assert (
            cli(
                "injection",
                "record",
                "--db",
                db,
                "--course",
                "1",
                "--dose-ml",
                "0.1",
                "--vial",
                "1",
                "--given-at",
                "2026-03-10T09:05",
                "--json",
            ).code
            == 0
        )
        r = cli(
            "injection",
            "reaction",
            "--db",
            db,
            "--course",
            "1",
            "--kind",
            "systemic",
            "--symptom",
            "nonsense",
            "--json",
        )
    assert r.code == 2 and "nonsense" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert _count(db, m.Reaction) == 0
