"""SCIT schedules and next-dose decisions against the tables of protocols.md section 2, rule by rule."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest

from immunoplan.clinical.immunotherapy import GivenInjection, build_schedule, dose_steps, next_dose
from immunoplan.errors import InvalidInput

P = "alutard-sq-hdm"
START = date(2026, 1, 5)

# protocols.md 2.2 Table I (7-week cluster): week, vial, mL, SQ-U per injection
TABLE_I = [
    (1, 1, "0.1", 10),
    (1, 2, "0.1", 100),
    (1, 3, "0.1", 1000),
    (2, 3, "0.2", 2000),
    (2, 3, "0.2", 2000),
    (3, 3, "0.5", 5000),
    (3, 3, "0.5", 5000),
    (4, 4, "0.2", 20000),
    (5, 4, "0.4", 40000),
    (6, 4, "0.6", 60000),
    (7, 4, "1.0", 100000),
]
# protocols.md 2.2 15-week weekly schedule (SECONDARY), COMPUTED SQ-U
WEEKLY_SQU = [20, 40, 80, 200, 400, 800, 2000, 4000, 8000, 10000, 20000, 40000, 60000, 80000, 100000]


def test_cluster_schedule_matches_table_i() -> None:
    s = build_schedule(P, "cluster", START, maintenance_visits=0)
    got = [(v.week, i.dose.vial, i.dose.volume_ml, i.dose.units) for v in s.visits for i in v.injections]
    assert got == [(w, vial, Decimal(ml), Decimal(u)) for w, vial, ml, u in TABLE_I]
    assert [v.date for v in s.visits] == [START + timedelta(weeks=k) for k in range(7)]
    # several injections on one day at least 30 min apart (Norwegian guide)
    assert [i.offset_minutes for i in s.visits[0].injections] == [0, 30, 60]
    assert s.visits[-1].injections[0].status == "SECONDARY"  # week 7 row
    assert s.observation_minutes == 30 and s.kind == "schedule"


def test_conventional_schedule_is_weekly_and_secondary() -> None:
    s = build_schedule(P, "conventional", START, maintenance_visits=2)
    build = [v for v in s.visits if v.phase == "build-up"]
    assert [i.dose.units for v in build for i in v.injections] == [Decimal(x) for x in WEEKLY_SQU]
    assert build[-1].date == START + timedelta(weeks=14)
    maint = [v for v in s.visits if v.phase == "maintenance"]
    assert [v.date for v in maint] == [build[-1].date + timedelta(weeks=6 * k) for k in (1, 2)]
    assert any("SECONDARY" in w for w in s.warnings)


def test_maintenance_interval_choice_and_range() -> None:
    s = build_schedule(P, "cluster", START, maintenance_interval_weeks=8, maintenance_visits=1)
    assert s.visits[-1].date == START + timedelta(weeks=6 + 8)
    with pytest.raises(InvalidInput) as e:
        build_schedule(P, "cluster", START, maintenance_interval_weeks=12)
    assert e.value.field == "maintenance_interval_weeks"


def test_alutard_rush_cannot_answer_and_ultrarush_is_lee_2019() -> None:
    assert build_schedule(P, "rush", START).kind == "cannot-answer"
    s = build_schedule(
        "hdm-tyrosine-ultrarush", "rush", START, maintenance_interval_weeks=4, maintenance_visits=1
    )
    day1 = s.visits[0].injections
    assert [i.dose.volume_ml for i in day1] == [Decimal(x) for x in ("0.1", "0.2", "0.3", "0.4")]
    assert [i.offset_minutes for i in day1] == [0, 120, 240, 360]  # 2-h intervals over 8 h
    assert sum(i.dose.volume_ml for i in day1) == Decimal(1)


def G(day: int, dose: int | str, **kw) -> GivenInjection:  # noqa: N802
    return GivenInjection(START + timedelta(days=day), Decimal(str(dose)), **kw)


WEEKLY_HISTORY = [G(0, 20), G(7, 40), G(14, 80), G(21, 200), G(28, 400)]  # last dose 400 SQ-U on day 28


@pytest.mark.parametrize(
    ("days_since_last", "expected", "rule"),
    [
        (7, 800, "norway-buildup-on-time"),  # up to 2 weeks: increase per schedule
        (14, 800, "norway-buildup-on-time"),
        (15, 400, "norway-buildup-repeat"),  # 2-4 weeks: repeat last dose
        (27, 400, "norway-buildup-repeat"),
        (28, 200, "norway-buildup-back-1"),  # 4-6 weeks: one dose step back
        (42, 80, "norway-buildup-back-2"),  # 6-8 weeks: two steps back
        (60, 40, "norway-buildup-back-3"),  # 8-12 weeks: three steps back
        (84, 40, "norway-buildup-back-3"),
        (85, 20, "norway-buildup-restart"),  # > 12 weeks: start again
    ],
)
def test_norwegian_buildup_table(days_since_last, expected, rule) -> None:
    n = next_dose(
        P, "conventional", WEEKLY_HISTORY, WEEKLY_HISTORY[-1].date + timedelta(days=days_since_last)
    )
    assert n.kind == "dose" and n.dose.units == Decimal(expected) and n.rule.id == rule
    assert n.rule.basis.status == "VERIFIED" and "helsebiblioteket" in n.rule.basis.source


@pytest.mark.parametrize(
    ("days_since_last", "expected", "rule"),
    [
        (14, 800, "aaaai-e5-continue"),  # up to 7 days after the missed (day-7) injection
        (15, 400, "aaaai-e5-repeat"),  # 8-13 days: repeat previous dose
        (20, 400, "aaaai-e5-repeat"),
        (21, 300, "aaaai-e5-minus-25"),  # 14-21 days: reduce 25%
        (28, 200, "aaaai-e5-minus-50"),  # 21-28 days: reduce 50% (day 21 edge -> cautious band)
        (35, 200, "aaaai-e5-minus-50"),
    ],
)
def test_aaaai_table_e5(days_since_last, expected, rule) -> None:
    n = next_dose(
        P,
        "conventional",
        WEEKLY_HISTORY,
        WEEKLY_HISTORY[-1].date + timedelta(days=days_since_last),
        ruleset="aaaai",
    )
    assert n.dose.units == Decimal(expected) and n.rule.id == rule


def test_aaaai_beyond_table_is_outside_table() -> None:
    n = next_dose(
        P, "conventional", WEEKLY_HISTORY, WEEKLY_HISTORY[-1].date + timedelta(days=36), ruleset="aaaai"
    )
    assert n.kind == "outside-table" and n.dose is None
    m = next_dose(P, "conventional", [G(0, 100000)], START + timedelta(days=30), ruleset="aaaai")
    assert m.kind == "outside-table" and m.rule.id == "aaaai-maint-none"


@pytest.mark.parametrize(
    ("days", "ml", "rule"),
    [
        (42, "1.0", "norway-maint-unchanged"),
        (69, "1.0", "norway-maint-unchanged"),  # < 10 weeks
        (70, "0.6", "norway-maint-0.6"),  # 10-12 weeks
        (84, "0.4", "norway-maint-0.4"),  # 12-16 weeks
        (112, "0.2", "norway-maint-0.2"),  # 16-26 weeks
        (183, "0.2", "norway-maint-restart"),  # > 26 weeks: start again (first weekly dose: vial 1, 0.2 mL)
    ],
)
def test_norwegian_maintenance_table(days, ml, rule) -> None:
    n = next_dose(P, "conventional", [G(0, 100000)], START + timedelta(days=days))
    assert n.rule.id == rule and n.dose.volume_ml == Decimal(ml)
    if rule == "norway-maint-restart":
        assert n.dose.vial == 1 and n.phase == "build-up"
    else:
        assert n.dose.vial == 4


def test_return_to_full_dose_after_maintenance_reduction() -> None:
    # after 0.6 mL: full dose 4 weeks later
    after06 = [G(0, 100000), G(75, 60000)]
    n = next_dose(P, "conventional", after06, START + timedelta(days=75 + 28))
    assert n.dose.units == Decimal(100000)
    # below 0.6 mL: step up the vial-4 steps (0.2 -> 0.4 -> 0.6 -> 0.8 -> 1.0 in the weekly schedule)
    below = [G(0, 100000), G(120, 20000)]
    n = next_dose(P, "conventional", below, START + timedelta(days=127))
    assert n.dose.units == Decimal(40000) and n.next_due == START + timedelta(days=127 + 7)
    reduced = next_dose(P, "conventional", [G(0, 100000)], START + timedelta(days=75))
    assert reduced.next_due == START + timedelta(days=75 + 28)  # full dose 4 weeks later


def test_local_reaction_rules() -> None:
    hold = next_dose(
        P,
        "conventional",
        WEEKLY_HISTORY[:-1] + [G(28, 400, local_reaction="up-to-quarter")],
        START + timedelta(days=35),
    )
    assert hold.dose.units == Decimal(400) and hold.rule.id in ("lsu-local-hold",)
    half = next_dose(
        P,
        "conventional",
        WEEKLY_HISTORY[:-1] + [G(28, 400, local_reaction="larger-than-quarter")],
        START + timedelta(days=35),
    )
    assert half.dose.units == Decimal(200) and half.rule.id == "lsu-local-half"
    assert half.rule.basis.status == "SECONDARY"


def test_systemic_reaction_rules() -> None:
    mild = WEEKLY_HISTORY[:-1] + [G(28, 400, systemic_scale="wao2017", systemic_grade="2")]
    n = next_dose(P, "conventional", mild, START + timedelta(days=35))
    assert n.dose.units == Decimal(40) and n.rule.id == "lsu-systemic-tenth"
    for scale, grade in (("wao2017", "3"), ("seed001", "severe"), ("brown2004", "severe"), ("wao2010", "4b")):
        sev = WEEKLY_HISTORY[:-1] + [G(28, 400, systemic_scale=scale, systemic_grade=grade)]
        n = next_dose(P, "conventional", sev, START + timedelta(days=35))
        assert n.kind == "do-not-dose" and n.dose is None and n.rule.id == "seed001-severe-stop"


def test_repeated_systemic_reactions_cap_below_reaction_dose() -> None:
    h = [
        G(0, 20),
        G(7, 40),
        G(14, 80, systemic_scale="seed001", systemic_grade="mild"),
        G(21, 20),
        G(28, 40),
        G(35, 80, systemic_scale="seed001", systemic_grade="mild"),
        G(42, 8),
    ]
    n = next_dose(P, "conventional", h, START + timedelta(days=49))
    capped = [r for r in n.rules if r.id == "canada-repeated-sr"]
    assert capped and capped[0].dose == Decimal(40)
    assert n.dose.units <= Decimal(40)


def test_new_vial_at_most_half_previous_dose() -> None:
    n = next_dose(P, "conventional", [G(0, 100000)], START + timedelta(days=42), new_vial=True)
    assert (
        n.dose.units == Decimal(50000)
        and n.rule.id == "canada-new-vial"
        and n.dose.volume_ml == Decimal("0.5")
    )


def test_reduced_doses_use_a_measurable_vial() -> None:
    assert dose_steps(P, "cluster")[0].units == Decimal(10)
    n = next_dose(
        P, "cluster", [G(0, 2000, systemic_scale="wao2010", systemic_grade="1")], START + timedelta(7)
    )
    assert (n.dose.units, n.dose.vial, n.dose.volume_ml) == (Decimal(200), 2, Decimal("0.2"))


def test_next_dose_bad_input() -> None:
    with pytest.raises(InvalidInput) as e:
        next_dose(P, "conventional", [G(10, 20)], START)
    assert e.value.field == "date"
    with pytest.raises(InvalidInput) as e:
        next_dose(P, "rush", [G(0, 20)], START)
    assert e.value.field == "regimen"
    with pytest.raises(InvalidInput) as e:
        next_dose(P, "conventional", [G(0, 20, local_reaction="huge")], START)
    assert e.value.field == "local_reaction"
    with pytest.raises(InvalidInput):
        next_dose(P, "conventional", [], START)


def test_scit_cli(cli, tmp_path) -> None:
    r = cli("scit", "schedule", "--product", P, "--regimen", "cluster", "--start", "2026-01-05", "--json")
    assert r.code == 0 and len(r.json["visits"]) == 10
    assert r.json["visits"][0]["injections"][2] == {
        "injection": 3,
        "dose": 1000,
        "unit": "SQ-U",
        "vial": 3,
        "volume_ml": 0.1,
        "offset_minutes": 60,
        "clock": None,
    }
    assert cli("scit", "schedule", "--regimen", "conventional", "--start", "2026-01-05").code == 0
    h = tmp_path / "h.json"
    h.write_text(
        json.dumps(
            {
                "product": P,
                "regimen": "conventional",
                "injections": [
                    {"date": "2026-01-05", "vial": 1, "volume_ml": 0.2},
                    {"date": "2026-01-12", "dose": 40},
                ],
            }
        )
    )
    r = cli("scit", "next-dose", "--history", str(h), "--date", "2026-02-09", "--json")
    assert r.code == 0, r.stderr
    assert r.json["dose"] == {"dose": 20, "unit": "SQ-U", "vial": 1, "volume_ml": 0.2}
    assert r.json["rule"]["id"] == "norway-buildup-back-1" and r.json["rule"]["basis"]["source"]
    assert cli("scit", "next-dose", "--history", str(h), "--date", "2026-02-09").code == 0


def test_scit_with_omalizumab_calendar(cli) -> None:
    r = cli(
        "scit",
        "schedule",
        "--regimen",
        "cluster",
        "--start",
        "2026-01-05",
        "--omalizumab",
        "concurrent",
        "--age-years",
        "30",
        "--weight-kg",
        "70",
        "--total-ige-iu-ml",
        "200",
        "--json",
    )
    assert r.code == 0, r.stderr
    om = r.json["omalizumab"]
    if om["label_dose"]["status"] == "dose":
        first = om["administrations"][0]
        assert first["date"] == "2026-01-05" and first["same_day_as_scit"]
    r = cli(
        "scit",
        "schedule",
        "--regimen",
        "cluster",
        "--start",
        "2026-01-05",
        "--omalizumab",
        "pre",
        "--age-years",
        "30",
        "--weight-kg",
        "70",
        "--total-ige-iu-ml",
        "200",
        "--json",
    )
    assert r.code == 2 and "omalizumab_lead_weeks" in r.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["scit", "schedule", "--regimen", "weekly", "--start", "2026-01-05"],
        ["scit", "schedule", "--product", "nope", "--regimen", "cluster", "--start", "2026-01-05"],
        ["scit", "schedule", "--regimen", "cluster", "--start", "05/01/2026"],
        [
            "scit",
            "schedule",
            "--regimen",
            "cluster",
            "--start",
            "2026-01-05",
            "--maintenance-interval-weeks",
            "2",
        ],
        ["scit", "schedule", "--regimen", "cluster", "--start", "2026-01-05", "--maintenance-visits", "1.5"],
        ["scit", "schedule", "--regimen", "cluster", "--start", "2026-01-05", "--omalizumab", "sometimes"],
        ["scit", "next-dose", "--history", "/nonexistent.json", "--date", "2026-01-05"],
        ["scit", "next-dose", "--history", "BAD", "--date", "2026-01-05"],
        ["scit", "next-dose", "--history", "EMPTY", "--date", "2026-01-05"],
    ],
)
def test_scit_cli_bad_input(cli, tmp_path, args) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"product": P, "regimen": "conventional", "injections": []}))
    args = [str(bad) if a == "BAD" else str(empty) if a == "EMPTY" else a for a in args]
    r = cli(*args, "--json")
    assert r.code == 2 and r.stdout == "" and r.stderr.count("\n") == 1, (r.stdout, r.stderr)


def test_cluster_next_visit_has_the_scheduled_injections() -> None:
    week1 = [G(0, 10), G(0, 100), G(0, 1000)]
    n = next_dose(P, "cluster", week1, START + timedelta(days=7))
    assert [d.units for d in n.visit_injections] == [Decimal(2000), Decimal(2000)]
    week2 = week1 + [G(7, 2000), G(7, 2000)]
    n = next_dose(P, "cluster", week2, START + timedelta(days=14))
    assert [d.units for d in n.visit_injections] == [Decimal(5000), Decimal(5000)]
    n = next_dose(P, "cluster", week2 + [G(14, 5000), G(14, 5000)], START + timedelta(days=21))
    assert [(d.units, d.vial, d.volume_ml) for d in n.visit_injections] == [
        (Decimal(20000), 4, Decimal("0.2"))
    ]
    late = next_dose(P, "cluster", week2, START + timedelta(days=7 + 20))  # 2-4 weeks: repeat one dose
    assert [d.units for d in late.visit_injections] == [Decimal(2000)]


def test_ultrarush_day_counts_as_one_maintenance_dose_and_uses_generic_rules() -> None:
    u = "hdm-tyrosine-ultrarush"
    day = [GivenInjection(START, Decimal(x)) for x in ("0.1", "0.2", "0.3", "0.4")]
    n = next_dose(u, "rush", day, START + timedelta(days=28))
    assert (
        n.kind == "outside-table" and n.rule.id == "aaaai-maint-none"
    )  # no maintenance table for this product
    with pytest.raises(InvalidInput) as e:
        next_dose(u, "rush", day, START + timedelta(days=28), ruleset="norway")  # Alutard-specific rules
    assert e.value.field == "ruleset"
