"""Dated plans: label maintenance, pre-treatment (Casale 2006 defaults), concurrent SCIT (seed 001),
desensitization adjuvant (seed 004), off-label OIT (Langlois 2020); .ics export; CLI schedule."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from icalendar import Calendar

from immunoplan.errors import InvalidInput
from immunoplan.services import omalizumab as svc

PATIENT = {"age_years": 30, "weight_kg": 65, "total_ige_iu_ml": 250}  # US cell: 225 mg every 2 weeks


def test_maintenance_every_label_interval() -> None:
    s = svc.build_schedule("maintenance", date(2026, 12, 1), weeks=8, **PATIENT)
    assert [a.date for a in s.administrations] == [
        date(2026, 12, 1) + timedelta(weeks=2 * k) for k in range(4)
    ]
    assert all(a.dose_mg == 225 and a.injections == [150, 75] for a in s.administrations)
    assert not s.off_label and s.status == "planned"


def test_maintenance_without_label_dose_has_no_administrations() -> None:
    s = svc.build_schedule("maintenance", date(2026, 12, 1), age_years=30, weight_kg=95, total_ige_iu_ml=350)
    assert s.status == "do-not-dose" and s.administrations == []


def test_rush_pretreatment_defaults_follow_casale_2006() -> None:
    first = date(2027, 3, 1)
    s = svc.build_schedule("pretreatment", first, protocol="rush", **PATIENT)
    assert s.administrations[0].date == first - timedelta(weeks=9)
    assert s.administrations[-1].date < first + timedelta(weeks=12)
    pre = [a for a in s.administrations if a.date < first]
    assert all(a.phase == "pre-treatment" for a in pre) and len(pre) == 5
    assert s.milestones[0].date == first
    cluster = svc.build_schedule("pretreatment", first, protocol="cluster", weeks_before=16, **PATIENT)
    assert cluster.administrations[0].date == first - timedelta(weeks=16)


def test_concurrent_scit_starts_the_same_day_with_seed_001_visits() -> None:
    s = svc.build_schedule("concurrent-scit", date(2027, 1, 4), **PATIENT)
    assert s.administrations[0].date == date(2027, 1, 4)
    assert s.administrations[-1].date < date(2027, 1, 4) + timedelta(weeks=48)
    assert [m.label for m in s.milestones][1:] == [
        f"assessment visit week {w} (seed 001)" for w in (0, 12, 24, 48)
    ]


def test_desensitization_seed_004_regimen() -> None:
    first = date(2027, 1, 10)
    s = svc.build_schedule("desensitization", first, cycles=6, cycle_weeks=3, tolerated_from_cycle=3)
    dates = [a.date for a in s.administrations]
    assert dates[:2] == [first - timedelta(days=14), first - timedelta(days=1)]
    assert all(a.dose_mg == 300 and a.off_label for a in s.administrations)
    # breakthrough in cycles 1 and 2 -> a dose the day before cycles 2 and 3 (every 3 weeks) ...
    assert dates[2:4] == [first + timedelta(weeks=3, days=-1), first + timedelta(weeks=6, days=-1)]
    # ... then every 4 weeks once tolerated, up to the last desensitization
    assert all((b - a).days == 28 for a, b in zip(dates[3:], dates[4:], strict=False))
    assert dates[-1] <= first + timedelta(weeks=15)
    persisting = svc.build_schedule("desensitization", first, cycles=4, cycle_weeks=2)
    assert len(persisting.administrations) == 2 + 3
    assert any("re-plan" in w for w in persisting.warnings)


@pytest.mark.parametrize(
    ("mpk", "weight", "doses"),
    [
        (16, 30, [450, 450, 450, 225, 150]),  # 480 -> 450, 240 -> 225, 120 -> 150
        (8, 60, [480 // 75 * 75, 450, 450, 225, 150]),  # 480 -> 450, 240 -> 225, 120 -> 150
    ],
)
def test_oit_weight_based_off_label_with_taper(mpk, weight, doses) -> None:
    s = svc.build_schedule("oit", date(2027, 1, 4), weight_kg=weight, mg_per_kg=mpk)
    assert s.off_label and any("OFF-LABEL" in w for w in s.warnings)
    assert [a.dose_mg for a in s.administrations] == [Decimal(d) for d in doses]
    assert [a.date for a in s.administrations] == [
        date(2027, 1, 4) + timedelta(weeks=w) for w in (0, 4, 8, 12, 16)
    ]
    assert s.milestones[0].date == date(2027, 1, 4) + timedelta(weeks=8)


def test_oit_large_dose_warns_above_600_mg() -> None:
    s = svc.build_schedule("oit", date(2027, 1, 4), weight_kg=70, mg_per_kg=16)
    assert s.administrations[0].dose_mg == 1125  # 16 x 70 = 1120 -> 1125
    assert any("exceeds 600" in w for w in s.warnings)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "weekly"}, "kind"),
        ({"kind": "oit", "weight_kg": 30, "mg_per_kg": 10}, "mg_per_kg"),
        ({"kind": "maintenance"}, "age_years"),
        ({"kind": "desensitization", "cycles": 0}, "cycles"),
        ({"kind": "desensitization", "days_before": [14]}, "days_before"),
        ({"kind": "pretreatment", "protocol": "ultra", **PATIENT}, "protocol"),
    ],
)
def test_schedule_bad_input(kwargs, field) -> None:
    kind = kwargs.pop("kind")
    with pytest.raises(InvalidInput) as exc:
        svc.build_schedule(kind, date(2027, 1, 1), **kwargs)
    assert exc.value.field == field


def test_ics_export_round_trips() -> None:
    s = svc.build_schedule("desensitization", date(2027, 1, 10), cycles=3, cycle_weeks=3)
    cal = Calendar.from_ical(svc.schedule_to_ics(s))
    events = [c for c in cal.walk("VEVENT")]
    assert len(events) == len(s.administrations) + len(s.milestones)
    starts = sorted(e.decoded("dtstart") for e in events if "omalizumab" in str(e.get("summary")))
    assert starts == [a.date for a in s.administrations]
    assert all(
        str(e.get("summary")).startswith("OFF-LABEL") for e in events if "omalizumab" in str(e["summary"])
    )


def test_cli_schedule_json_and_ics(cli, tmp_path) -> None:
    out = tmp_path / "plan.ics"
    r = cli(
        "omalizumab",
        "schedule",
        "--kind",
        "concurrent-scit",
        "--start",
        "2027-01-04",
        "--age",
        "30",
        "--weight-kg",
        "65",
        "--total-ige",
        "250",
        "--weeks",
        "12",
        "--ics",
        str(out),
        "--json",
    )
    assert r.code == 0, r.stderr
    d = r.json
    assert d["kind"] == "concurrent-scit" and d["administrations"][0] == {
        "date": "2027-01-04",
        "dose_mg": 225,
        "injections": [150, 75],
        "injection_sites": 2,
        "phase": "with SCIT",
        "rationale": "omalizumab from the first SCIT injection (seed 001)",
        "off_label": False,
    }
    assert out.read_bytes().startswith(b"BEGIN:VCALENDAR")


@pytest.mark.parametrize(
    "bad",
    [
        ["--kind", "oit", "--start", "2027-13-01", "--weight-kg", "30", "--mg-per-kg", "8"],
        ["--kind", "desensitization", "--start", "2027-01-01", "--days-before", "x,1"],
        ["--kind", "maintenance", "--start", "2027-01-01"],
    ],
)
def test_cli_schedule_bad_input(cli, bad) -> None:
    r = cli("omalizumab", "schedule", *bad, "--json")
    assert r.code == 2 and r.stdout == "" and "Traceback" not in r.stderr
