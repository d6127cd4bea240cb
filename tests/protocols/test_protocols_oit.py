"""OIT with omalizumab cover: calendars against protocols.md section 3, taper warnings, bad input."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from immunoplan.clinical.oit import plan_oit
from immunoplan.errors import InvalidInput

START = date(2026, 1, 5)


def test_brandstrom_calendar_only_without_doses() -> None:
    """280 -> 2800 mg in 8 weeks, increases every 2 weeks: 5 visits; intermediate doses not published."""
    p = plan_oit("brandstrom-peanut", START, pretreatment_weeks=8)
    assert p.kind == "calendar-only"
    assert [v.dose_mg for v in p.visits] == [Decimal(280), None, None, None, Decimal(2800)]
    assert p.visits[-1].date - p.visits[0].date == timedelta(weeks=8)
    assert any("not published" in w for w in p.warnings)


def test_brandstrom_needs_pretreatment_length() -> None:
    with pytest.raises(InvalidInput) as e:
        plan_oit("brandstrom-peanut", START)
    assert e.value.field == "pretreatment_weeks"


def test_langlois_taper_and_mg_per_month() -> None:
    doses = [Decimal(x) for x in (30, 100, 300, 600, 1000, 1500)]
    p = plan_oit(
        "langlois-multifood", START, doses_mg=doses, weight_kg=Decimal(30), arm_mg_per_kg_month=Decimal(16)
    )
    assert p.oit_start == START + timedelta(weeks=8)  # 8 weeks of pretreatment
    assert [(ph.end - ph.start).days // 7 for ph in p.omalizumab_phases] == [12, 4, 4]  # 20 weeks in all
    assert [ph.mg_per_month for ph in p.omalizumab_phases] == [Decimal(480), Decimal(240), Decimal(120)]
    assert p.omalizumab_stop == START + timedelta(weeks=20)
    assert [v.date for v in p.visits] == [p.oit_start + timedelta(weeks=2 * i) for i in range(6)]  # biweekly
    in_taper = [v for v in p.visits if v.date >= START + timedelta(weeks=12)]
    assert in_taper and all(v.warning and "rebound" in v.warning for v in in_taper)
    assert all(v.warning is None for v in p.visits if v.date < START + timedelta(weeks=12))
    assert p.kind == "schedule" and any(b.id == "clinician-entered-doses" for b in p.basis)


def test_andorf_and_macginnitie_frames() -> None:
    a = plan_oit("andorf-multifood", START, doses_mg=[Decimal(x) for x in (100, 300, 1000, 2000)])
    assert a.oit_start == START + timedelta(weeks=8) and a.omalizumab_stop == START + timedelta(weeks=16)
    m = plan_oit("macginnitie-peanut", START, doses_mg=[Decimal(x) for x in (250, 500, 1000, 2000)])
    assert m.oit_start == START + timedelta(weeks=12)
    assert [v.date for v in m.visits] == [m.oit_start + timedelta(weeks=i) for i in range(4)]  # weekly
    assert m.omalizumab_stop == m.visits[-1].date and m.visits[-1].warning


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"doses_mg": [Decimal(280), Decimal(100), Decimal(2800)]}, "doses_mg"),  # not increasing
        ({"doses_mg": [Decimal(280), Decimal(1000)]}, "doses_mg"),  # does not end at target
        ({"doses_mg": [Decimal(300), Decimal(2800)]}, "doses_mg"),  # does not start at the published 280
        ({"doses_mg": [Decimal(280), Decimal(5000)]}, "doses_mg[1]"),  # above target
    ],
)
def test_bad_doses(kwargs, field) -> None:
    with pytest.raises(InvalidInput) as e:
        plan_oit("brandstrom-peanut", START, pretreatment_weeks=8, **kwargs)
    assert e.value.field == field


def test_langlois_needs_arm_and_doses() -> None:
    with pytest.raises(InvalidInput) as e:
        plan_oit("langlois-multifood", START, doses_mg=[Decimal(1500)])
    assert e.value.field == "arm_mg_per_kg_month"
    with pytest.raises(InvalidInput) as e:
        plan_oit("langlois-multifood", START, arm_mg_per_kg_month=Decimal(8))
    assert e.value.field == "doses_mg"
    with pytest.raises(InvalidInput) as e:
        plan_oit("langlois-multifood", START, arm_mg_per_kg_month=Decimal(10), doses_mg=[Decimal(1500)])
    assert e.value.field == "arm_mg_per_kg_month"


def test_oit_cli(cli) -> None:
    r = cli(
        "oit",
        "schedule",
        "--regimen",
        "brandstrom-peanut",
        "--omalizumab-start",
        "2026-01-05",
        "--pretreatment-weeks",
        "8",
        "--doses",
        "280,560,1120,2000,2800",
        "--json",
    )
    assert r.code == 0, r.stderr
    assert [v["dose_mg"] for v in r.json["visits"]] == [280, 560, 1120, 2000, 2800]
    assert r.json["oit_start"] == "2026-03-02"
    assert (
        cli(
            "oit",
            "schedule",
            "--regimen",
            "brandstrom-peanut",
            "--omalizumab-start",
            "2026-01-05",
            "--pretreatment-weeks",
            "8",
        ).code
        == 0
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--regimen", "nope", "--omalizumab-start", "2026-01-05"],
        ["--regimen", "brandstrom-peanut", "--omalizumab-start", "2026-13-05", "--pretreatment-weeks", "8"],
        ["--regimen", "brandstrom-peanut", "--omalizumab-start", "2026-01-05", "--pretreatment-weeks", "x"],
        [
            "--regimen",
            "brandstrom-peanut",
            "--omalizumab-start",
            "2026-01-05",
            "--pretreatment-weeks",
            "8",
            "--doses",
            "280,abc,2800",
        ],
    ],
)
def test_oit_cli_bad_input(cli, args) -> None:
    r = cli("oit", "schedule", *args, "--json")
    assert r.code == 2 and r.stdout == "" and r.stderr.count("\n") == 1
