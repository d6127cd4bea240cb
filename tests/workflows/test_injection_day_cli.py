"""The CLI contract of issue 12: ``injection record --vial V --check NAME=VALUE --reason``, ``injection next``
(``earliest_at``, ``visit_complete``, ``observation_minutes``, ``--vial``), ``reaction record --injection
--finding``; refusals exit 2 with one stderr line naming the rule."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from immunoplan import clock
from immunoplan.registry.db import open_registry
from immunoplan.services import records as rec
from immunoplan.services.records import vials

DAY = "2026-12-01"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A 14-year-old on the 1-day ultra-rush (course 1) with a registered vial (id 1)."""
    monkeypatch.setenv("IMMUNOPLAN_TIMEZONE", "Europe/Oslo")
    path = tmp_path / "day.sqlite"
    reg = open_registry(path)
    p = rec.register_patient(reg, "dr.a", pseudo_id="UR-1", sex="female", birth_date="2012-05-05")
    rec.plan_course(
        reg,
        "dr.a",
        pseudo_id="UR-1",
        kind="RIT",
        product_id="hdm-tyrosine-ultrarush",
        regimen_id="rush",
        started_on=DAY,
    )
    vials.add_vial(
        reg,
        "nurse.kim",
        {
            "patient_id": p["id"],
            "product_id": "hdm-tyrosine-ultrarush",
            "concentration": "1",
            "lot": "TY-1",
            "expiry_on": "2027-03-31",
        },
    )
    reg.dispose()
    yield path


def _record(cli: Any, db: Path, at: str, ml: str, *extra: Any) -> Any:
    args = ("--course", 1, "--dose-ml", ml, "--vial", 1, "--given-at", f"{DAY}T{at}")
    return cli("injection", "record", "--db", db, "--by", "nurse.kim", "--json", *args, *extra)


def test_the_ultra_rush_day_on_the_command_line(cli: Any, db: Path) -> None:
    with clock.frozen(f"{DAY}T08:05"):
        first = _record(
            cli, db, "08:00", "0.1", "--check", "fever_infection=no", "--check", "asthma_worse=no"
        )
        assert first.code == 0, first.stderr
        j = first.json
        assert j["vial_id"] == 1 and j["lot"] == "TY-1" and j["check"]["hold"] is False
        assert j["next"]["earliest_at"] == f"{DAY}T10:00:00+01:00" and j["next"]["visit_complete"] is False
        early = _record(cli, db, "08:00:10", "0.2")
    assert early.code == 2 and early.stdout == ""
    assert early.stderr.count("\n") == 1 and "same-visit-interval" in early.stderr
    with clock.frozen(f"{DAY}T12:20"):
        assert _record(cli, db, "10:00", "0.2").code == 0
        third = _record(cli, db, "12:00", "0.3")
        assert third.code == 0, third.stderr
        react = cli(
            "reaction", "record", "--db", db, "--json", "--injection", third.json["id"], "--kind", "systemic",
            "--finding", "generalized_urticaria", "--finding", "onset-minutes=12",
        )  # fmt: skip
    assert react.code == 0, react.stderr
    n = react.json["next"]
    assert n["rule"]["id"] == "lsu-systemic-tenth" and n["dose_ml"] == 0.03
    assert {"source", "status"} <= set(n["rule"]) and n["visit_complete"] is True
    with clock.frozen(f"{DAY}T14:05"):
        nxt = cli("injection", "next", "--db", db, "--json", "--course", 1)
    assert nxt.code == 0 and nxt.json["visit_complete"] is True
    assert nxt.json["visit"]["id"] == "visit-stops-after-reaction" and nxt.json["observation_minutes"] == 30


def test_a_check_that_holds_the_dose_exits_2_naming_the_rule_and_a_reason_records_it(
    cli: Any, db: Path
) -> None:
    with clock.frozen(f"{DAY}T08:05"):
        held = _record(cli, db, "08:00", "0.1", "--check", "fever_infection=yes")
        assert held.code == 2 and "fever_infection" in held.stderr and "holds the dose" in held.stderr
        ok = _record(
            cli, db, "08:00", "0.1", "--check", "fever_infection=yes", "--reason", "37.6 C, seen by dr.a"
        )
    assert ok.code == 0, ok.stderr
    assert ok.json["override_reason"] == "37.6 C, seen by dr.a"
    assert ok.json["checks"]["overridden"] == [{"kind": "check-holds", "rule": "fever_infection"}]


def test_an_unknown_check_or_vial_exits_2_naming_the_field(cli: Any, db: Path) -> None:
    with clock.frozen(f"{DAY}T08:05"):
        bad_check = _record(cli, db, "08:00", "0.1", "--check", "moon_phase=full")
        bad_vial = cli(
            "injection", "record", "--db", db, "--json", "--course", 1, "--dose-ml", "0.1", "--vial", "x1",
            "--given-at", f"{DAY}T08:00",
        )  # fmt: skip
        other = cli(
            "injection", "record", "--db", db, "--json", "--course", 1, "--dose-ml", "0.1", "--vial", 99,
            "--given-at", f"{DAY}T08:00",
        )  # fmt: skip
    assert bad_check.code == 2 and "check" in bad_check.stderr and "fever_infection" in bad_check.stderr
    assert bad_vial.code == 2 and "vial_id" in bad_vial.stderr
    assert other.code == 2 and "no vial 99" in other.stderr and "TY-1" in other.stderr


def test_questions_list_every_check_with_its_source(cli: Any) -> None:
    r = cli("injection", "questions", "--json")
    assert r.code == 0
    qs = {q["id"]: q for q in r.json["questions"]}
    assert {"fever_infection", "beta_blocker", "fev1_pct_pred"} <= set(qs)
    assert all(q["source"] and q["status"] in ("VERIFIED", "SECONDARY", "UNVERIFIED") for q in qs.values())
