"""Immunotherapy injections through the service layer, a test per safety rule: each refusal is raised by
`services.records.injections` itself (not a page) and writes nothing.

Rules and their sources: the first dose and the intervals come from ``scit_products`` / ``scit_adjustment``
(the engine in `clinical.immunotherapy.next_injection`), the future tolerance and the same-act rule from
``registry_recording`` (project rules). The clinic clock is pinned and the clinic zone set.
"""

from __future__ import annotations

import importlib.util
import shutil
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from immunoplan import clock, reference
from immunoplan.clinical.immunotherapy import due_status
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry, open_registry
from immunoplan.services import records as rec
from immunoplan.services.records import injections as inj

# The PostgreSQL server fixtures of tests/registry/conftest.py (the same throw-away PostgreSQL 15 server).
_spec = importlib.util.spec_from_file_location(
    "registry_pg_fixtures", Path(__file__).resolve().parents[1] / "registry" / "conftest.py"
)
assert _spec and _spec.loader
_pg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_pg)
pg_server = _pg.pg_server
pg_url = _pg.pg_url

ZONE = "Europe/Oslo"
NOW = "2026-03-10T09:00"  # clinic time, the first cluster visit


@pytest.fixture(autouse=True)
def clinic_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("IMMUNOPLAN_TIMEZONE", ZONE)
    with clock.frozen(NOW):
        yield


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated registry, copied for each test (migrating is the slow part)."""
    path = tmp_path_factory.mktemp("injections") / "template.sqlite"
    open_registry(path).dispose()
    return path


@pytest.fixture
def reg(template: Path, tmp_path: Path) -> Iterator[Registry]:
    target = tmp_path / "injections.sqlite"
    shutil.copyfile(template, target)
    r = open_registry(target)
    yield r
    r.dispose()


def _course(reg: Registry, regimen: str = "cluster", kind: str = "cluster", pid: str = "I-1") -> int:
    rec.register_patient(reg, "dr.a", pseudo_id=pid, sex="female", birth_date="1990-01-01")
    c = rec.plan_course(
        reg,
        "dr.a",
        pseudo_id=pid,
        kind=kind,
        product="Alutard SQ house dust mite",
        product_id="alutard-sq-hdm",
        regimen_id=regimen,
        started_on="2026-03-10",
        dose_unit="SQ-U",
    )
    return int(c["id"])


def _give(reg: Registry, cid: int, at: str, ml: str, vial: str, by: str = "nurse.kim", **kw: Any) -> Any:
    return inj.record_injection(reg, by, course_id=cid, given_at=at, dose_ml=ml, vial=vial, **kw)


def _count(reg: Registry) -> int:
    with reg.session() as s:
        return int(s.scalar(select(func.count()).select_from(m.Injection)) or 0)


def _local(text: str) -> datetime:
    return clock.local(clock.parse_local("t", text))


def test_first_dose_comes_from_the_schedule_with_its_reference_basis(reg: Registry) -> None:
    cid = _course(reg)
    n = inj.next_dose(reg, cid)
    assert n["kind"] == "dose" and n["history"] == []
    assert (n["dose"]["dose"], n["dose"]["vial"], n["dose_ml"]) == (10, 1, 0.1)
    rule = n["rule"]
    assert rule["id"] == reference.load("scit_adjustment")["first_dose"]["id"] == "schedule-first-injection"
    regimen = reference.load("scit_products")["products"]["alutard-sq-hdm"]["regimens"]["cluster"]
    assert rule["basis"]["id"] == "scit_products"
    assert (rule["source"], rule["status"]) == (regimen["source"], regimen["status"])
    assert [d["dose"] for d in n["visit_injections"]] == [10, 100, 1000]  # the first cluster visit
    assert n["due_date"] == date(2026, 3, 10) and n["earliest_at"] is None  # the planned start, no interval
    assert "schedule-first-dose" not in str(n)  # the old web-invented rule is gone
    weekly = inj.next_dose(reg, _course(reg, "conventional", "SCIT", "I-2"))
    assert weekly["rule"]["status"] == "SECONDARY"  # the weekly schedule's own status


def test_record_computes_the_next_dose_and_due_date_in_the_same_transaction(reg: Registry) -> None:
    cid = _course(reg)
    r = _give(reg, cid, "2026-03-10T09:00", "0.1", "1")
    assert (r["dose"], r["dose_unit"], r["sequence"]) == (10, "SQ-U", 1)
    nxt = r["next"]
    assert nxt["dose"]["dose"] == 100 and nxt["rule"]["id"] == "same-day-continuation"
    assert nxt["due_date"] == "2026-03-10" and nxt["earliest_at"] == "2026-03-10T09:30:00+01:00"
    assert nxt["earliest"]["rule"]["id"] == "same-visit-interval"
    with clock.frozen("2026-03-10T10:05"):
        _give(reg, cid, "2026-03-10T09:30", "0.1", "2")
        last = _give(reg, cid, "2026-03-10T10:00", "0.1", "3")
    assert last["next"]["due_date"] == "2026-03-17"  # build-up: the next weekly visit
    assert last["next"]["earliest"]["rule"]["id"] == "buildup-visit-interval"
    assert [d["dose"] for d in last["next"]["visit_injections"]] == [2000, 2000]
    with reg.session() as s:
        c = s.get(m.Course, cid)
        assert c.next_due_on == date(2026, 3, 17) and c.status == "active"


def test_the_same_act_twice_is_a_conflict_naming_the_first(reg: Registry) -> None:
    cid = _course(reg)
    first = _give(reg, cid, "2026-03-10T09:00", "0.1", "1", by="nurse.kim")
    with pytest.raises(Conflict) as e:
        _give(reg, cid, "2026-03-10T09:00:40", "0.1", "1", by="nurse.lee")  # 40 s later, same minute
    assert f"injection {first['id']} given 09:00 by nurse.kim" in str(e.value)
    assert e.value.record == f"injection {first['id']}"
    assert _count(reg) == 1


def test_the_same_idempotency_key_twice_writes_one_row_and_replays(reg: Registry) -> None:
    cid = _course(reg)
    a = _give(reg, cid, "2026-03-10T09:00", "0.1", "1", idempotency_key="form-key-0001")
    b = _give(reg, cid, "2026-03-10T09:00", "0.1", "1", idempotency_key="form-key-0001")
    assert b["replayed"] is True and b["id"] == a["id"] and "replayed" not in a
    assert _count(reg) == 1


def test_too_early_is_refused_without_an_override_and_accepted_with_a_recorded_reason(reg: Registry) -> None:
    cid = _course(reg)
    _give(reg, cid, "2026-03-10T09:00", "0.1", "1")
    with clock.frozen("2026-03-10T09:12"), pytest.raises(InvalidInput) as e:
        _give(reg, cid, "2026-03-10T09:10", "0.1", "2")
    assert e.value.field == "given_at" and "same-visit-interval" in str(e.value)
    assert "09:30" in str(e.value) and "override_reason" in (e.value.accepted or "")
    assert _count(reg) == 1
    with clock.frozen("2026-03-10T09:12"):
        ok = _give(reg, cid, "2026-03-10T09:10", "0.1", "2", override_reason="physician: leaves early today")
    assert ok["override"]["reason"] == "physician: leaves early today"
    assert ok["override"]["rule"]["id"] == "same-visit-interval"
    with reg.session() as s:
        assert s.get(m.Injection, ok["id"]).override_reason == "physician: leaves early today"


def test_the_next_visit_is_not_before_its_date(reg: Registry) -> None:
    cid = _course(reg)
    with clock.frozen("2026-03-10T10:05"):
        for at, vial in (("09:00", "1"), ("09:30", "2"), ("10:00", "3")):
            _give(reg, cid, f"2026-03-10T{at}", "0.1", vial)
    with clock.frozen("2026-03-13T09:00"), pytest.raises(InvalidInput) as e:
        _give(reg, cid, "2026-03-13T09:00", "0.2", "3")  # 3 days later: the next visit is on 03-17
    assert "buildup-visit-interval" in str(e.value) and "2026-03-17" in str(e.value)
    assert _count(reg) == 3


def test_a_given_at_in_the_future_is_refused(reg: Registry) -> None:
    cid = _course(reg)
    tol = inj.future_tolerance_minutes()
    assert tol == reference.load("registry_recording")["future_tolerance_minutes"]["value"]
    later = (_local(NOW) + timedelta(minutes=tol + 1)).strftime("%Y-%m-%dT%H:%M")
    with pytest.raises(InvalidInput) as e:
        _give(reg, cid, later, "0.1", "1")
    assert e.value.field == "given_at" and "future" in str(e.value) and "registry_recording" in str(e.value)
    assert _count(reg) == 0


def test_a_course_that_is_not_immunotherapy_is_refused(reg: Registry) -> None:
    rec.register_patient(reg, "dr.a", pseudo_id="D-1", sex="male")
    c = rec.plan_course(reg, "dr.a", pseudo_id="D-1", kind="drug_desensitization", drug="ceftriaxone")
    with pytest.raises(InvalidInput) as e:
        inj.record_injection(reg, "n", course_id=c["id"], given_at=NOW, dose="10", dose_unit="mg")
    assert e.value.field == "course_id" and "not an immunotherapy course" in str(e.value)
    assert _count(reg) == 0


def test_a_voided_injection_is_ignored_by_the_next_dose_and_the_same_act_rule(reg: Registry) -> None:
    from immunoplan.services.records import corrections

    cid = _course(reg)
    wrong = _give(reg, cid, "2026-03-10T09:00", "0.1", "1")
    corrections.void(reg, "dr.a", "injection", wrong["id"], "entered on the wrong patient")
    n = inj.next_dose(reg, cid)
    assert n["history"] == [] and n["rule"]["id"] == "schedule-first-injection"
    again = _give(reg, cid, "2026-03-10T09:00", "0.1", "1")  # not a duplicate of the voided one
    assert again["sequence"] == 1 and again["next"]["dose"]["dose"] == 100


def test_dose_is_vial_strength_times_volume_and_a_mismatch_is_refused(reg: Registry) -> None:
    cid = _course(reg)
    with pytest.raises(InvalidInput) as e:
        _give(reg, cid, NOW, "0.1", "1", dose="100")
    assert e.value.field == "dose" and "vial 1 x 0.1 mL" in str(e.value)
    with pytest.raises(InvalidInput) as e:
        _give(reg, cid, NOW, "0.1", "9")
    assert e.value.field == "vial"
    with pytest.raises(InvalidInput) as e:
        _give(reg, cid, NOW, "25", "1")
    assert e.value.field == "dose_ml" and "mL" in (e.value.accepted or "")
    assert _count(reg) == 0


def test_keyword_style_without_a_catalogue_product_uses_the_planned_interval(reg: Registry) -> None:
    rec.register_patient(reg, "dr.a", pseudo_id="L-1", sex="male")
    c = rec.plan_course(
        reg, "dr.a", pseudo_id="L-1", kind="SCIT", product="imported extract", interval_days=7
    )
    r = inj.record_injection(
        reg, "n", course_id=c["id"], given_at="2026-03-09T10:00", dose="20", dose_unit="SQ-U", volume_ml="0.2"
    )
    assert r["next"]["kind"] == "cannot-answer" and r["next"]["due_date"] == "2026-03-16"
    assert "product_id/regimen_id" in r["next"]["warnings"][0]


def test_due_and_late_come_from_the_one_definition_with_the_clinic_date(reg: Registry) -> None:
    cid = _course(reg)
    with clock.frozen("2026-03-10T10:05"):
        for at, vial in (("09:00", "1"), ("09:30", "2"), ("10:00", "3")):
            _give(reg, cid, f"2026-03-10T{at}", "0.1", vial)
    for day, grace, expected in (
        ("2026-03-16", 0, []),
        ("2026-03-17", 0, ["due"]),
        ("2026-03-18", 0, ["late"]),
    ):
        with clock.frozen(f"{day}T08:00"):
            got = [r["status"] for r in rec.list_due_injections(reg, grace_days=grace)]
        assert got == expected == [x for x in [due_status(date(2026, 3, 17), date.fromisoformat(day))] if x]
    late = rec.list_due_injections(reg, as_of="2026-03-19", grace_days=2)
    assert [r["status"] for r in late] == ["due"]  # within the clinic's grace days


def _record_concurrently(reg: Registry, cid: int) -> tuple[list[Any], list[BaseException]]:
    barrier = threading.Barrier(2)
    results: list[Any] = []
    errors: list[BaseException] = []

    def work(nurse: str, at: str) -> None:
        barrier.wait()
        try:
            results.append(_give(reg, cid, at, "0.1", "1", by=nurse))
        except BaseException as exc:  # noqa: BLE001 - every exception is inspected below
            errors.append(exc)

    # 30 s apart: not the same instant (no unique index catches it), the same act (same minute, same dose)
    pairs = (("nurse.kim", "2026-03-10T09:00:00"), ("nurse.lee", "2026-03-10T09:00:30"))
    threads = [threading.Thread(target=work, args=p) for p in pairs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results, errors


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_users_recording_the_same_injection_at_once_get_one_row_and_one_conflict(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if backend == "sqlite":
        shutil.copyfile(request.getfixturevalue("template"), tmp_path / "race.sqlite")
        reg = open_registry(tmp_path / "race.sqlite")
    else:
        reg = open_registry(request.getfixturevalue("pg_url"))
    try:
        cid = _course(reg)
        results, errors = _record_concurrently(reg, cid)
        assert len(results) == 1 and len(errors) == 1, (results, errors)
        assert isinstance(errors[0], Conflict), repr(errors[0])
        assert f"injection {results[0]['id']}" in str(errors[0])  # names the first record
        assert _count(reg) == 1
    finally:
        reg.dispose()


def test_a_systemic_reaction_recomputes_the_next_dose_and_due_date_in_its_transaction(reg: Registry) -> None:
    cid = _course(reg)
    r = _give(reg, cid, "2026-03-10T09:00", "0.1", "1")
    assert r["next"]["due_date"] == "2026-03-10"  # the cluster visit continues today
    with reg.session() as s:
        pid = s.get(m.Course, cid).patient_id
    data = inj.InjectionReactionIn(kind="systemic", scale="wao2010", symptoms=["urticaria", "wheeze"])
    out = inj.record_reaction_to_last_injection(
        reg, "dr.a", pid, cid, data, idempotency_key="reaction-key-01"
    )
    assert out["reaction"]["injection_id"] == r["id"] and out["grading"]["grade"] == "2"
    assert out["next"]["rule"]["id"] == "lsu-systemic-tenth"  # 1/10 of the dose that caused it
    assert out["next"]["due_date"] == "2026-03-17"  # no same-day continuation after a reaction
    with reg.session() as s:
        assert s.get(m.Course, cid).next_due_on == date(2026, 3, 17)
    again = inj.record_reaction_to_last_injection(
        reg, "dr.a", pid, cid, data, idempotency_key="reaction-key-01"
    )
    assert again["replayed"] is True
    with reg.session() as s:
        assert s.scalar(select(func.count()).select_from(m.Reaction)) == 1
