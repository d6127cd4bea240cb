"""Issue 12: a test per adjustment rule of the reference data (``scit_adjustment``), driven through the
service (`services.records.injections`: `record_injection`, `next_dose`, `record_reaction_to_last_injection`).

Each test records a course's injections with the doses the engine gives (the clock pinned at each injection),
moves to the day asked about and checks the rule that fires (its id, and its source and status from the
reference data), the dose (worked by hand from the rule's text and the schedule) and, where the rule is about
time, the interval. Missed-dose bands are tested at their edges in days, per the data's ``boundary_note``: a
band's ``max_days`` is in the band, ``max_days + 1`` in the next one.

`test_every_rule_id_in_the_reference_data_has_a_test_here` collects every ``id`` of the data file and fails
when one has no test here (`covers`), so a rule added to the data without a test fails.

Courses: ``alutard-sq-hdm`` (conventional: 20, 40, 80, 200, 400, 800 ... SQ-U; cluster: 10 + 100 + 1000 SQ-U
on day 1 ... 100,000 SQ-U at week 7; Norwegian rules, the product's default and the only rule set the service
uses for it) and ``hdm-tyrosine-ultrarush`` (0.1, 0.2, 0.3, 0.4 mL in one day; AAAAI Table E5 only)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest

from immunoplan import clock, reference
from immunoplan.errors import InvalidInput
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry, open_registry
from immunoplan.services import records as rec
from immunoplan.services.records import injections as inj
from immunoplan.services.records import vials

DATA = reference.load("scit_adjustment")
PRODUCTS = reference.load("scit_products")["products"]
ALUTARD, ULTRA = "alutard-sq-hdm", "hdm-tyrosine-ultrarush"
ALUTARD_P, ULTRA_P = PRODUCTS[ALUTARD], PRODUCTS[ULTRA]
NORWAY_BUILDUP = DATA["missed"]["norway"]["buildup"]
NORWAY_MAINT = DATA["missed"]["norway"]["maintenance"]
RETURN = NORWAY_MAINT["return"]
AAAAI_BUILDUP = DATA["missed"]["aaaai"]["buildup"]
AAAAI_MAINT = DATA["missed"]["aaaai"]["maintenance"]
LOCAL = DATA["local"]
SYSTEMIC = DATA["systemic"]
INTERVALS = DATA["intervals"]
ZONE = "Europe/Oslo"
START = date(2026, 1, 5)  # every walk starts here, well before the suite's clock (2026-12-01)

# ------------------------------------------------------------------------------------ which rules are tested

#: rule ids of ``scit_adjustment`` that a test of this module exercises (filled by `covers`)
COVERED: set[str] = set()
F = TypeVar("F", bound=Callable[..., Any])


def covers(*rule_ids: str) -> Callable[[F], F]:
    """Declare the reference-data rule ids a test exercises (and asserts as fired)."""

    def mark(fn: F) -> F:
        COVERED.update(rule_ids)
        return fn

    return mark


def _ids(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("id"), str):
            yield node["id"]
        for value in node.values():
            yield from _ids(value)
    elif isinstance(node, list):
        for value in node:
            yield from _ids(value)


# ------------------------------------------------------------------------------------------------- registries


@pytest.fixture(scope="module")
def module_zone() -> Iterator[None]:
    """The clinic zone for the module-scoped walks (the suite's autouse clock fixture is per test)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IMMUNOPLAN_TIMEZONE", ZONE)
        yield


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, module_zone: None) -> Path:
    path = tmp_path_factory.mktemp("adjustment-rules") / "template.sqlite"
    open_registry(path).dispose()
    return path


def _copy(src: Path, target: Path) -> Registry:
    shutil.copyfile(src, target)
    return open_registry(target)


@pytest.fixture
def reg(template: Path, tmp_path: Path) -> Iterator[Registry]:
    r = _copy(template, tmp_path / "rules.sqlite")
    yield r
    r.dispose()


def _course(reg: Registry, product_id: str, regimen_id: str, pid: str = "AR-1") -> int:
    with clock.frozen(f"{START.isoformat()}T08:00"):
        rec.register_patient(reg, "dr.a", pseudo_id=pid, sex="female", birth_date="1990-01-01")
        c = rec.plan_course(
            reg,
            "dr.a",
            pseudo_id=pid,
            kind="RIT" if regimen_id == "rush" else "SCIT",
            product=product_id,
            product_id=product_id,
            regimen_id=regimen_id,
            started_on=START.isoformat(),
        )
    return int(c["id"])


def _at(day: date | str, hm: str = "09:00") -> str:
    """Clinic time ``hm`` on ``day`` (a date, or an ISO date as the recorded views give it)."""
    return f"{str(day)[:10]}T{hm}"


def _give(reg: Registry, cid: int, at: str, **kw: Any) -> dict[str, Any]:
    """Record, with the clock at ``at``, exactly the dose the engine gives at ``at`` (``dose_ml`` and vial
    from `next_dose`; ``vial_id`` given: the vial is that registered vial)."""
    with clock.frozen(at):
        n = inj.next_dose(reg, cid, at, vial_id=kw.get("vial_id"))
        assert n["kind"] == "dose", n
        if "vial_id" not in kw:
            kw["vial"] = str(n["dose"]["vial"])
        out = inj.record_injection(
            reg, "nurse.kim", course_id=cid, given_at=at, dose_ml=str(n["dose_ml"]), **kw
        )
    assert out["dose"] == n["dose"]["dose"]
    assert not any("differs from the dose due" in w for w in out["warnings"]), out["warnings"]
    return out


def _next_time(out: dict[str, Any]) -> str:
    """The clinic time of the next injection after a recording: its earliest time, else 09:00 on its due
    date."""
    n = out["next"]
    day = _at(n["due_date"])
    earliest = n["earliest_at"]
    if earliest is None:
        return day
    return max(day, (earliest if isinstance(earliest, str) else clock.iso_local(earliest) or "")[:16])


def _next(reg: Registry, cid: int, at: str, **kw: Any) -> dict[str, Any]:
    with clock.frozen(at):
        return inj.next_dose(reg, cid, at, **kw)


def _reaction(
    reg: Registry, cid: int, at: str, kind: str, *, size: str | None = None, symptoms: tuple[str, ...] = ()
) -> dict[str, Any]:
    data = inj.InjectionReactionIn(kind=kind, local_size=size, scale="wao2010", symptoms=list(symptoms))
    with clock.frozen(at):
        return inj.record_reaction_to_last_injection(reg, "nurse.kim", None, cid, data)


MILD = ("generalized_urticaria",)  # WAO 2010 grade below 3: not severe
SEVERE = ("hypotension", "collapse")  # WAO 2010 grade 3-5: severe (severe_definition)


def _assert_rule(rule: dict[str, Any] | None, rule_id: str, status: str | None, source: str) -> None:
    assert rule is not None
    assert rule["id"] == rule_id, f"fired {rule['id']!r}, expected {rule_id!r}"
    assert rule["source"] == source
    if status is not None:
        assert rule["status"] == status


def _units(value: Any) -> Decimal:
    return Decimal(str(value))


@dataclass(frozen=True)
class Walked:
    """A registry file with one course walked through its schedule: ``last`` is the clinic date of its last
    injection, ``doses`` the doses given (product units)."""

    path: Path
    course_id: int
    last: date
    doses: list[Decimal]


def _walk(reg: Registry, cid: int, *, stop: Callable[[list[Decimal]], bool]) -> tuple[date, list[Decimal]]:
    at, doses = _at(START), []
    for _ in range(30):
        out = _give(reg, cid, at)
        doses.append(_units(out["dose"]))
        if stop(doses):
            return date.fromisoformat(at[:10]), doses
        at = _next_time(out)
    raise AssertionError(f"the schedule did not reach the stop: {doses}")


def _walked(template: Path, folder: Path, regimen_id: str, stop: Callable[[list[Decimal]], bool]) -> Walked:
    path = folder / "walked.sqlite"
    r = _copy(template, path)
    try:
        cid = _course(r, ALUTARD, regimen_id)
        last, doses = _walk(r, cid, stop=stop)
    finally:
        r.dispose()
    return Walked(path, cid, last, doses)


@pytest.fixture(scope="module")
def buildup(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Walked:
    """Alutard conventional build-up, five weekly visits: 20, 40, 80, 200, 400 SQ-U (the last on
    2026-02-02)."""
    w = _walked(template, tmp_path_factory.mktemp("buildup"), "conventional", lambda d: len(d) == 5)
    assert w.doses == [20, 40, 80, 200, 400] and w.last == START + timedelta(weeks=4)
    return w


TOP = Decimal(ALUTARD_P["maintenance_dose_units"])  # 100,000 SQ-U = 1.0 mL of vial 4


@pytest.fixture(scope="module")
def maintenance(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Walked:
    """Alutard cluster schedule walked to its first maintenance dose, 100,000 SQ-U (1.0 mL of vial 4), at
    week 7 (2026-02-16): 10+100+1000, 2000+2000, 5000+5000, 20000, 40000, 60000, 100000 SQ-U."""
    w = _walked(template, tmp_path_factory.mktemp("maintenance"), "cluster", lambda d: d[-1] >= TOP)
    assert w.doses == [10, 100, 1000, 2000, 2000, 5000, 5000, 20000, 40000, 60000, 100000]
    assert w.last == START + timedelta(weeks=6)
    return w


@pytest.fixture
def buildup_reg(buildup: Walked, tmp_path: Path) -> Iterator[Registry]:
    r = _copy(buildup.path, tmp_path / "buildup.sqlite")
    yield r
    r.dispose()


@pytest.fixture
def maintenance_reg(maintenance: Walked, tmp_path: Path) -> Iterator[Registry]:
    r = _copy(maintenance.path, tmp_path / "maintenance.sqlite")
    yield r
    r.dispose()


def _edges(bands: list[dict[str, Any]], offset: int = 0) -> list[tuple[int, str]]:
    """(days, band id) at every band edge, per ``boundary_note``: ``max_days`` is the band's, ``max_days + 1``
    the next band's; ``offset``: days between the last dose and the day the band's measure counts from."""
    out = []
    for i, b in enumerate(bands):
        if b["max_days"] is not None:
            out.append((int(b["max_days"]) + offset, b["id"]))
            out.append((int(b["max_days"]) + 1 + offset, bands[i + 1]["id"]))
    return out


def _edge_id(case: tuple[int, str]) -> str:
    return f"{case[0]}d-{case[1]}"


# ------------------------------------------------------------------------- missed doses: Norway, build-up

#: the dose (SQ-U) each band gives after the walked 20, 40, 80, 200, 400 SQ-U (conventional steps 20, 40, 80,
#: 200, 400, 800 ...), worked from the band's text
NORWAY_BUILDUP_DOSE = {
    "norway-buildup-on-time": 800,  # increase per schedule: the next step
    "norway-buildup-repeat": 400,  # repeat the last dose
    "norway-buildup-back-1": 200,  # one dose step back from 400
    "norway-buildup-back-2": 80,
    "norway-buildup-back-3": 40,
    "norway-buildup-restart": 20,  # start again: the schedule's first dose
}
BUILDUP_DUE = int(ALUTARD_P["buildup_interval_days"])  # 7: the day the next visit is due
NORWAY_BUILDUP_CASES = [(BUILDUP_DUE, NORWAY_BUILDUP["bands"][0]["id"]), *_edges(NORWAY_BUILDUP["bands"])]


@covers(*NORWAY_BUILDUP_DOSE)
@pytest.mark.parametrize(("days", "band_id"), NORWAY_BUILDUP_CASES, ids=map(_edge_id, NORWAY_BUILDUP_CASES))
def test_norway_buildup_band_at_its_edges(
    buildup_reg: Registry, buildup: Walked, days: int, band_id: str
) -> None:
    at = _at(buildup.last + timedelta(days=days))
    n = _next(buildup_reg, buildup.course_id, at)
    _assert_rule(n["rule"], band_id, NORWAY_BUILDUP["status"], NORWAY_BUILDUP["source"])
    assert n["kind"] == "dose" and n["phase"] == "build-up"
    assert n["dose"]["dose"] == NORWAY_BUILDUP_DOSE[band_id]
    out = _give(buildup_reg, buildup.course_id, at)  # the service records exactly that dose
    assert out["dose"] == NORWAY_BUILDUP_DOSE[band_id]


def test_a_norway_buildup_dose_above_the_band_is_refused_without_a_reason(
    buildup_reg: Registry, buildup: Walked
) -> None:
    at = _at(buildup.last + timedelta(days=28))  # back one step: 200 SQ-U = 0.2 mL of vial 3
    with clock.frozen(at), pytest.raises(InvalidInput) as e:  # the 400 SQ-U last given
        inj.record_injection(
            buildup_reg, "n", course_id=buildup.course_id, given_at=at, dose_ml="0.4", vial="3"
        )
    assert e.value.field == "dose_ml" and "norway-buildup-back-1" in str(e.value)


# ---------------------------------------------------------------------- missed doses: Norway, maintenance

#: (SQ-U, vial, mL) each band gives after the first maintenance dose (100,000 SQ-U = 1.0 mL of vial 4)
NORWAY_MAINT_DOSE = {
    "norway-maint-unchanged": (100000, 4, 1),
    "norway-maint-0.6": (60000, 4, 0.6),
    "norway-maint-0.4": (40000, 4, 0.4),
    "norway-maint-0.2": (20000, 4, 0.2),
    "norway-maint-restart": (10, 1, 0.1),  # start again: the cluster schedule's first injection
}
MAINT_WEEKS = int(ALUTARD_P["maintenance_interval_weeks"]["default"])
NORWAY_MAINT_CASES = [(7 * MAINT_WEEKS, NORWAY_MAINT["bands"][0]["id"]), *_edges(NORWAY_MAINT["bands"])]


@covers(*NORWAY_MAINT_DOSE)
@pytest.mark.parametrize(("days", "band_id"), NORWAY_MAINT_CASES, ids=map(_edge_id, NORWAY_MAINT_CASES))
def test_norway_maintenance_band_at_its_edges(
    maintenance_reg: Registry, maintenance: Walked, days: int, band_id: str
) -> None:
    at = _at(maintenance.last + timedelta(days=days))
    n = _next(maintenance_reg, maintenance.course_id, at)
    _assert_rule(n["rule"], band_id, NORWAY_MAINT["status"], NORWAY_MAINT["source"])
    assert n["kind"] == "dose"
    units, vial, ml = NORWAY_MAINT_DOSE[band_id]
    assert (n["dose"]["dose"], n["dose"]["vial"], n["dose_ml"]) == (units, vial, ml)
    assert n["phase"] == ("build-up" if band_id == "norway-maint-restart" else "maintenance")
    out = _give(maintenance_reg, maintenance.course_id, at)
    assert out["dose"] == units and out["vial"] == str(vial)


# -------------------------------------------------- the way back to the full dose after a reduction (Norway)


def _return_rule(key: str) -> dict[str, Any]:
    return {**RETURN[key], "status": RETURN["status"], "source": RETURN["source"]}


def _assert_interval(
    out: dict[str, Any], rule_id: str, status: str | None, source: str, weeks: list[int]
) -> None:
    """The next visit after the injection recorded in ``out``: its interval rule and a due date ``weeks``
    (one of them) after that injection."""
    n = out["next"]
    given = date.fromisoformat(str(out["given_at"])[:10])
    days = (date.fromisoformat(str(n["due_date"])[:10]) - given).days
    after = f"after {out['dose']} {out['dose_unit']} on {given}"
    got = n["earliest"]["rule"]["id"]
    assert got == rule_id, (
        f"{after}: interval rule {got!r} ({days} days), expected {rule_id!r} ({weeks} weeks)"
    )
    _assert_rule(n["earliest"]["rule"], rule_id, status, source)
    assert days in [7 * w for w in weeks], f"{after}: next visit {days} days later, expected {weeks} weeks"


@covers(RETURN["after_0_6_ml"]["id"])
def test_after_a_reduction_to_0_6_ml_the_full_dose_4_weeks_later_then_after_8_weeks(
    maintenance_reg: Registry, maintenance: Walked
) -> None:
    cid, r = maintenance.course_id, _return_rule("after_0_6_ml")
    out = _give(maintenance_reg, cid, _at(maintenance.last + timedelta(days=70)))  # norway-maint-0.6
    assert out["dose"] == 60000 and out["volume_ml"] == 0.6
    _assert_interval(out, r["id"], r["status"], r["source"], [r["next_full_after_weeks"]])
    assert out["next"]["dose"]["dose"] == TOP and out["next"]["rule"]["text"] == r["text"]
    out = _give(maintenance_reg, cid, _next_time(out))  # the full dose again
    assert out["dose"] == TOP
    _assert_interval(out, r["id"], r["status"], r["source"], [r["then_weeks"][0]])
    out = _give(maintenance_reg, cid, _next_time(out))  # then every 8 +/- 2 weeks: the product's interval
    mi = ALUTARD_P["maintenance_interval_weeks"]
    _assert_interval(out, INTERVALS["maintenance"]["id"], mi["status"], mi["source"], [MAINT_WEEKS])


@covers(RETURN["below_0_6_ml"]["id"])
@pytest.mark.parametrize(("days", "reduced", "step"), [(84, 40000, 60000), (112, 20000, 40000)])
def test_after_a_reduction_below_0_6_ml_the_next_step_up_is_1_to_2_weeks_later(
    maintenance_reg: Registry, maintenance: Walked, days: int, reduced: int, step: int
) -> None:
    cid, r = maintenance.course_id, _return_rule("below_0_6_ml")
    out = _give(maintenance_reg, cid, _at(maintenance.last + timedelta(days=days)))  # 0.4 or 0.2 mL
    assert out["dose"] == reduced
    _assert_interval(out, r["id"], r["status"], r["source"], r["step_interval_weeks"])
    n = out["next"]  # one step up the schedule (cluster steps ... 20000, 40000, 60000, 100000 SQ-U)
    _assert_rule(n["rule"], NORWAY_MAINT["bands"][0]["id"], NORWAY_MAINT["status"], NORWAY_MAINT["source"])
    assert n["rule"]["text"] == r["text"] and n["dose"]["dose"] == step


def test_after_a_reduction_below_0_6_ml_every_step_to_the_full_dose_then_2_4_and_8_weeks(
    maintenance_reg: Registry, maintenance: Walked
) -> None:
    """Reduced to 0.4 mL: 0.6 mL 1-2 weeks later, the full dose 1-2 weeks after that (still stepping up from
    below 0.6 mL), then the full dose after 2, 4 and 8 weeks, then every 8 +/- 2 weeks (the product's)."""
    cid, r = maintenance.course_id, _return_rule("below_0_6_ml")
    out = _give(maintenance_reg, cid, _at(maintenance.last + timedelta(days=84)))  # 0.4 mL
    expected = [(60000, r["step_interval_weeks"]), (TOP, r["step_interval_weeks"])]  # 0.4 -> 0.6 -> full
    for units, weeks in expected:
        _assert_interval(out, r["id"], r["status"], r["source"], weeks)
        out = _give(maintenance_reg, cid, _next_time(out))
        assert out["dose"] == units
    for weeks in r["then_weeks"]:  # the full dose after 2, 4 and 8 weeks
        _assert_interval(out, r["id"], r["status"], r["source"], [weeks])
        out = _give(maintenance_reg, cid, _next_time(out))
        assert out["dose"] == TOP
    mi = ALUTARD_P["maintenance_interval_weeks"]
    _assert_interval(out, INTERVALS["maintenance"]["id"], mi["status"], mi["source"], [MAINT_WEEKS])


# ------------------------------------------------------- missed doses: AAAAI Table E5 (ultra-rush only)

#: the dose (mL of maintenance concentration) each band gives after an ultra-rush day stopped after its first
#: injection (0.1 mL); the measure counts from the missed visit, a build-up interval after the last dose
AAAAI_DOSE = {
    "aaaai-e5-continue": 0.2,  # continue as scheduled: the next step
    "aaaai-e5-repeat": 0.1,
    "aaaai-e5-minus-25": 0.075,
    "aaaai-e5-minus-50": 0.05,
    "aaaai-e5-outside": None,  # not covered by Table E5: no dose
}
ULTRA_INTERVAL = int(ULTRA_P["buildup_interval_days"])
AAAAI_CASES = [
    (ULTRA_INTERVAL, AAAAI_BUILDUP["bands"][0]["id"]),
    *_edges(AAAAI_BUILDUP["bands"], ULTRA_INTERVAL),
]


@pytest.fixture
def ultra_rush(reg: Registry) -> int:
    return _course(reg, ULTRA, "rush")


@covers(*AAAAI_DOSE)
@pytest.mark.parametrize(("days", "band_id"), AAAAI_CASES, ids=map(_edge_id, AAAAI_CASES))
def test_aaaai_buildup_band_at_its_edges(reg: Registry, ultra_rush: int, days: int, band_id: str) -> None:
    out = _give(reg, ultra_rush, _at(START, "08:00"))  # 0.1 mL, and the day goes no further
    assert out["dose"] == 0.1 and out["next"]["same_visit"] is True
    n = _next(reg, ultra_rush, _at(START + timedelta(days=days)))
    # Table E5 counts from the missed visit, here the product's UNVERIFIED build-up interval: the band is
    # UNVERIFIED and names both sources, and a dose from it needs a recorded reason
    assert ULTRA_P["buildup_interval_status"] == "UNVERIFIED"
    rule = n["rule"]
    assert rule["id"] == band_id and rule["status"] == "UNVERIFIED"
    assert (
        rule["source"].startswith(AAAAI_BUILDUP["source"])
        and ULTRA_P["buildup_interval_source"] in rule["source"]
    )
    if AAAAI_DOSE[band_id] is None:
        assert n["kind"] == "outside-table" and n["dose"] is None
        _refused_without_a_reason(reg, ultra_rush, _at(START + timedelta(days=days)), band_id)
    else:
        assert n["kind"] == "dose" and n["dose"]["dose"] == AAAAI_DOSE[band_id]
        _refused_without_a_reason(reg, ultra_rush, _at(START + timedelta(days=days)), band_id)


@covers(AAAAI_MAINT["bands"][0]["id"], INTERVALS["none"]["id"])
def test_after_a_completed_ultra_rush_day_aaaai_has_no_maintenance_table_and_no_interval(
    reg: Registry, ultra_rush: int
) -> None:
    for hm in ("08:00", "10:00", "12:00", "14:00"):  # 0.1 + 0.2 + 0.3 + 0.4 mL = the 1 mL maintenance dose
        out = _give(reg, ultra_rush, _at(START, hm))
    n = out["next"]
    assert n["visit_complete"] is True and n["due_date"] is None and n["earliest_at"] is None
    mi = ULTRA_P["maintenance_interval_weeks"]
    _assert_rule(n["earliest"]["rule"], INTERVALS["none"]["id"], mi["status"], mi["source"])
    assert mi["source"] in n["earliest"]["rule"]["text"]
    later = _next(reg, ultra_rush, _at(START + timedelta(weeks=4)))
    _assert_rule(later["rule"], AAAAI_MAINT["bands"][0]["id"], AAAAI_MAINT["status"], AAAAI_MAINT["source"])
    assert later["kind"] == "outside-table" and later["dose"] is None and later["phase"] == "maintenance"
    _refused_without_a_reason(reg, ultra_rush, _at(START + timedelta(weeks=4)), AAAAI_MAINT["bands"][0]["id"])


def _refused_without_a_reason(reg: Registry, cid: int, at: str, rule_id: str) -> None:
    """No rule gives a dose, or the rule rests on UNVERIFIED data: the service records none without a reason
    (here 0.05 mL, at or below every band's dose)."""
    with clock.frozen(at), pytest.raises(InvalidInput) as e:
        inj.record_injection(reg, "n", course_id=cid, given_at=at, dose_ml="0.05", vial="1")
    assert e.value.field == "dose_ml" and rule_id in str(e.value)


# ------------------------------------------------------------------------------------------ local reactions


@covers(LOCAL["rules"]["up-to-quarter"]["id"], LOCAL["rules"]["larger-than-quarter"]["id"])
@pytest.mark.parametrize(("size", "dose"), [("up-to-quarter", 400), ("larger-than-quarter", 200)])
def test_a_local_reaction_to_400_sq_u_holds_or_halves_the_next_dose(
    buildup_reg: Registry, buildup: Walked, size: str, dose: int
) -> None:
    cid = buildup.course_id
    after = _reaction(buildup_reg, cid, _at(buildup.last, "09:30"), "local", size=size)["next"]
    _assert_rule(after["rule"], LOCAL["rules"][size]["id"], LOCAL["status"], LOCAL["source"])
    assert after["dose"]["dose"] == dose  # on time the schedule would give 800 SQ-U
    on_time = [x for x in after["rules"] if x["id"] == "norway-buildup-on-time"]
    assert on_time and on_time[0]["dose"] == 800
    n = _next(buildup_reg, cid, _at(buildup.last + timedelta(days=7)))
    assert n["rule"]["id"] == LOCAL["rules"][size]["id"] and n["dose"]["dose"] == dose
    _give(buildup_reg, cid, _at(buildup.last + timedelta(days=7)))


# --------------------------------------------------------------------------------------- systemic reactions


@covers(SYSTEMIC["any"]["id"])
def test_a_mild_systemic_reaction_to_400_sq_u_gives_a_tenth_of_it_next(
    buildup_reg: Registry, buildup: Walked
) -> None:
    r = SYSTEMIC["any"]
    after = _reaction(buildup_reg, buildup.course_id, _at(buildup.last, "09:20"), "systemic", symptoms=MILD)
    assert after["next"]["kind"] == "dose"
    _assert_rule(after["next"]["rule"], r["id"], r["status"], r["source"])
    assert after["next"]["dose"]["dose"] == 40 and after["next"]["dose_ml"] == 0.4  # 0.4 mL of vial 1
    out = _give(buildup_reg, buildup.course_id, _at(buildup.last + timedelta(days=7)))
    assert out["dose"] == 40


@covers(SYSTEMIC["severe"]["id"])
def test_a_severe_systemic_reaction_answers_do_not_dose_and_the_service_refuses_a_dose(
    buildup_reg: Registry, buildup: Walked
) -> None:
    r, cid = SYSTEMIC["severe"], buildup.course_id
    after = _reaction(buildup_reg, cid, _at(buildup.last, "09:20"), "systemic", symptoms=SEVERE)["next"]
    assert after["kind"] == "do-not-dose" and after["dose"] is None and after["dose_ml"] is None
    _assert_rule(after["rule"], r["id"], r["status"], r["source"])
    assert SYSTEMIC["severe_definition"]["text"] in after["warnings"]
    at = _at(buildup.last + timedelta(days=7))
    assert _next(buildup_reg, cid, at)["rule"]["id"] == r["id"]
    with clock.frozen(at), pytest.raises(InvalidInput) as e:
        inj.record_injection(buildup_reg, "n", course_id=cid, given_at=at, dose_ml="0.1", vial="1")
    assert e.value.field == "dose_ml" and r["id"] in str(e.value)


@covers(SYSTEMIC["repeated"]["id"])
def test_repeated_systemic_reactions_cap_the_dose_below_the_lowest_that_caused_one(
    buildup_reg: Registry, buildup: Walked
) -> None:
    """Mild systemic reactions to 40 SQ-U (delayed, recorded later) and to 400 SQ-U: a tenth of 400 is 40, but
    the dose stays below the 40 SQ-U that caused one: the step under it, 20 SQ-U."""
    r, cid = SYSTEMIC["repeated"], buildup.course_id
    _reaction(buildup_reg, cid, _at(buildup.last, "09:20"), "systemic", symptoms=MILD)
    second = _next(buildup_reg, cid, _at(buildup.last, "10:00"))["history"][1]
    assert second["dose"] == 40
    data = inj.InjectionReactionIn(kind="systemic", scale="wao2010", symptoms=list(MILD))
    with clock.frozen(_at(buildup.last, "10:00")):
        after = inj.record_reaction_to_injection(buildup_reg, "nurse.kim", second["injection_id"], data)[
            "next"
        ]
    _assert_rule(after["rule"], r["id"], r["status"], r["source"])
    assert after["dose"]["dose"] == 20
    tenth = [x for x in after["rules"] if x["id"] == SYSTEMIC["any"]["id"]]
    assert tenth and tenth[0]["fired"] is True and tenth[0]["dose"] == 40
    out = _give(buildup_reg, cid, _at(buildup.last + timedelta(days=7)))
    assert out["dose"] == 20


# ----------------------------------------------------------------------------------------- new vial or lot


@covers(DATA["new_vial"]["id"])
def test_the_first_dose_from_a_new_lot_is_half_the_previous_dose(reg: Registry) -> None:
    r = DATA["new_vial"]
    cid = _course(reg, ALUTARD, "conventional")
    pid = _patient_of(reg, cid)

    def vial(lot: str) -> int:
        with clock.frozen(_at(START, "08:30")):
            v = vials.add_vial(
                reg,
                "nurse.kim",
                {
                    "patient_id": pid,
                    "product_id": ALUTARD,
                    "concentration": "1",
                    "lot": lot,
                    "expiry_on": "2026-12-31",
                },
            )
        return int(v["id"])

    first = vial("L-1")
    out = _give(reg, cid, _at(START), vial_id=first)
    assert out["dose"] == 20 and out["new_vial"] is False
    second = vial("L-2")
    at = _at(START + timedelta(days=7))
    assert _next(reg, cid, at, vial_id=first)["dose"]["dose"] == 40  # the same vial: the schedule's step
    n = _next(reg, cid, at, vial_id=second)
    assert n["vial"]["new_vial"] is True
    _assert_rule(n["rule"], r["id"], r["status"], r["source"])
    assert n["dose"]["dose"] == 10 and n["dose_ml"] == 0.1  # half of the previous 20 SQ-U
    out = _give(reg, cid, at, vial_id=second)
    assert out["dose"] == 10 and out["new_vial"] is True


def _patient_of(reg: Registry, cid: int) -> int:
    with reg.session() as s:
        c = s.get(m.Course, cid)
        assert c is not None
        return int(c.patient_id)


# ---------------------------------------------------------------------------------------------- first dose


@covers(DATA["first_dose"]["id"])
@pytest.mark.parametrize(
    ("regimen_id", "visit"),
    [("conventional", [(20, 1, 0.2)]), ("cluster", [(10, 1, 0.1), (100, 2, 0.1), (1000, 3, 0.1)])],
)
def test_with_no_injection_yet_the_first_visit_of_the_schedule(
    reg: Registry, regimen_id: str, visit: list[tuple[int, int, float]]
) -> None:
    r, sched = DATA["first_dose"], ALUTARD_P["regimens"][regimen_id]
    cid = _course(reg, ALUTARD, regimen_id)
    n = _next(reg, cid, _at(START))
    _assert_rule(n["rule"], r["id"], sched["status"], sched["source"])  # the schedule's own source and status
    assert n["earliest"]["rule"]["id"] == r["id"] and n["earliest"]["rule"]["source"] == r["source"]
    assert [(d["dose"], d["vial"], d["volume_ml"]) for d in n["visit_injections"]] == visit
    assert (n["dose"]["dose"], n["dose"]["vial"], n["dose_ml"]) == visit[0]
    out = _give(reg, cid, _at(START))
    assert out["dose"] == visit[0][0]


# ------------------------------------------------------------------------------------------------ intervals


@covers(INTERVALS["same_visit"]["id"])
@pytest.mark.parametrize(("product_id", "regimen_id"), [(ALUTARD, "cluster"), (ULTRA, "rush")])
def test_the_next_injection_of_a_visit_under_way_waits_the_same_day_interval(
    reg: Registry, product_id: str, regimen_id: str
) -> None:
    p = PRODUCTS[product_id]
    sched = p["regimens"][regimen_id]
    if "interval_minutes" in sched:
        minutes, status, source = int(sched["interval_minutes"]), sched["status"], sched["source"]
    else:
        minutes, status, source = int(p["same_day_min_interval_minutes"]), None, p["same_day_source"]
    cid = _course(reg, product_id, regimen_id)
    out = _give(reg, cid, _at(START, "08:00"))
    n = out["next"]
    assert n["same_visit"] is True and n["visit_complete"] is False
    _assert_rule(n["earliest"]["rule"], INTERVALS["same_visit"]["id"], status, source)
    assert f"{minutes} min" in n["earliest"]["rule"]["text"]
    first = datetime.fromisoformat(_at(START, "08:00"))  # clinic wall time
    earliest = (first + timedelta(minutes=minutes)).strftime("%H:%M")
    assert str(n["earliest_at"])[11:16] == earliest and str(n["earliest_at"])[:10] == START.isoformat()
    too_early = (first + timedelta(minutes=minutes - 1)).strftime("%H:%M")
    second = sched["rows"][1]  # the schedule's next injection, offered one minute too early
    with clock.frozen(_at(START, too_early)), pytest.raises(InvalidInput) as e:
        inj.record_injection(
            reg,
            "n",
            course_id=cid,
            given_at=_at(START, too_early),
            dose_ml=second["ml"],
            vial=str(second["vial"]),
        )
    assert e.value.field == "given_at" and INTERVALS["same_visit"]["id"] in str(e.value)
    assert _give(reg, cid, _at(START, earliest))["dose"] == n["dose"]["dose"]


@covers(INTERVALS["buildup"]["id"], INTERVALS["visit_complete"]["id"])
def test_after_a_build_up_visit_it_is_complete_and_the_next_is_the_build_up_interval_later(
    reg: Registry,
) -> None:
    sched = ALUTARD_P["regimens"]["conventional"]
    cid = _course(reg, ALUTARD, "conventional")
    out = _give(reg, cid, _at(START))
    n = out["next"]
    assert n["visit_complete"] is True and n["same_visit"] is False
    _assert_rule(n["visit"], INTERVALS["visit_complete"]["id"], sched["status"], sched["source"])
    _assert_rule(
        n["earliest"]["rule"],
        INTERVALS["buildup"]["id"],
        ALUTARD_P["buildup_interval_status"],
        ALUTARD_P["buildup_interval_source"],
    )
    assert str(n["due_date"])[:10] == (START + timedelta(days=BUILDUP_DUE)).isoformat()
    assert str(n["earliest_at"])[:16] == _at(START + timedelta(days=BUILDUP_DUE), "00:00")
    day_before = _at(START + timedelta(days=BUILDUP_DUE - 1))
    with clock.frozen(day_before), pytest.raises(InvalidInput) as e:
        inj.record_injection(reg, "n", course_id=cid, given_at=day_before, dose_ml="0.4", vial="1")
    assert e.value.field == "given_at" and INTERVALS["buildup"]["id"] in str(e.value)


@covers(INTERVALS["maintenance"]["id"])
def test_after_the_first_maintenance_dose_the_next_is_the_maintenance_interval_later(
    maintenance_reg: Registry, maintenance: Walked
) -> None:
    mi = ALUTARD_P["maintenance_interval_weeks"]
    n = _next(maintenance_reg, maintenance.course_id, _at(maintenance.last, "10:00"))
    assert n["visit_complete"] is True and n["phase"] == "maintenance"
    _assert_rule(n["earliest"]["rule"], INTERVALS["maintenance"]["id"], mi["status"], mi["source"])
    assert f"{MAINT_WEEKS} weeks" in n["earliest"]["rule"]["text"]
    assert n["due_date"] == maintenance.last + timedelta(weeks=MAINT_WEEKS)
    assert n["dose"]["dose"] == TOP


@covers(INTERVALS["visit_stopped"]["id"])
def test_a_local_reaction_at_the_first_cluster_injection_stops_the_visit(reg: Registry) -> None:
    r = INTERVALS["visit_stopped"]
    cid = _course(reg, ALUTARD, "cluster")
    _give(reg, cid, _at(START))  # 10 SQ-U, injection 1 of the 3 of week 1
    after = _reaction(reg, cid, _at(START, "09:20"), "local", size="up-to-quarter")["next"]
    assert after["visit_complete"] is True and after["same_visit"] is False
    _assert_rule(after["visit"], r["id"], r["status"], r["source"])
    assert "injection 1 of 3" in after["visit"]["text"] and "2 injection(s)" in after["visit"]["text"]
    assert str(after["due_date"])[:10] == (START + timedelta(days=BUILDUP_DUE)).isoformat()
    assert after["rule"]["id"] == LOCAL["rules"]["up-to-quarter"]["id"] and after["dose"]["dose"] == 10
    with clock.frozen(_at(START, "09:35")), pytest.raises(InvalidInput) as e:  # injection 2: not today
        inj.record_injection(reg, "n", course_id=cid, given_at=_at(START, "09:35"), dose_ml="0.1", vial="2")
    assert e.value.field == "given_at"


# ------------------------------------------------------------------------------------------------- coverage


def test_every_rule_id_in_the_reference_data_has_a_test_here() -> None:
    ids = set(_ids({k: v for k, v in DATA.items() if k != "id"}))  # the file's own id is not a rule
    assert len(ids) == len(list(_ids({k: v for k, v in DATA.items() if k != "id"}))), "duplicate rule ids"
    assert sorted(ids - COVERED) == [], "rules in scit_adjustment.json without a service test here"
    assert sorted(COVERED - ids) == [], "tests here name rules that are not in scit_adjustment.json"
