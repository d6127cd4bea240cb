"""Issue 12 safety rules of injection day, through the service (`services.records.injections`): the
same-visit interval, the reaction rule applied to the dose that caused the reaction, a visit stopped or
complete, a dose above the dose due or on a do-not-dose answer, vials (expired, required, new vial or lot)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from immunoplan import clock
from immunoplan.errors import InvalidInput
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry, open_registry
from immunoplan.services import records as rec
from immunoplan.services.records import injections as inj
from immunoplan.services.records import vials

DAY = "2026-12-01"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("injection-day") / "template.sqlite"
    open_registry(path).dispose()
    return path


@pytest.fixture
def reg(template: Path, tmp_path: Path) -> Iterator[Registry]:
    target = tmp_path / "day.sqlite"
    shutil.copyfile(template, target)
    r = open_registry(target)
    yield r
    r.dispose()


def _course(reg: Registry, product_id: str, regimen: str, pid: str = "D-1", birth: str = "2012-03-01") -> int:
    rec.register_patient(reg, "dr.a", pseudo_id=pid, sex="male", birth_date=birth)
    c = rec.plan_course(
        reg,
        "dr.a",
        pseudo_id=pid,
        kind="RIT" if regimen == "rush" else "SCIT",
        product=product_id,
        product_id=product_id,
        regimen_id=regimen,
        started_on=DAY,
    )
    return int(c["id"])


def _patient_id(reg: Registry, cid: int) -> int:
    with reg.session() as s:
        c = s.get(m.Course, cid)
        assert c is not None
        return c.patient_id


def _give(reg: Registry, cid: int, at: str, ml: str, **kw: Any) -> dict[str, Any]:
    return inj.record_injection(reg, "nurse.kim", course_id=cid, given_at=f"{DAY}T{at}", dose_ml=ml, **kw)


def _systemic(reg: Registry, cid: int) -> dict[str, Any]:
    data = inj.InjectionReactionIn(kind="systemic", scale="wao2010", symptoms=["generalized_urticaria"])
    return inj.record_reaction_to_last_injection(reg, "nurse.kim", None, cid, data)


def _count(reg: Registry) -> int:
    with reg.session() as s:
        return int(s.scalar(select(func.count()).select_from(m.Injection)) or 0)


@pytest.fixture
def ultra_rush(reg: Registry) -> int:
    return _course(reg, "hdm-tyrosine-ultrarush", "rush")


def test_the_second_ultra_rush_injection_ten_seconds_after_the_first_is_refused_naming_the_interval(
    reg: Registry, ultra_rush: int
) -> None:
    with clock.frozen(f"{DAY}T08:05"):
        _give(reg, ultra_rush, "08:00", "0.1")
        with pytest.raises(InvalidInput) as e:
            _give(reg, ultra_rush, "08:00:10", "0.2")
    assert e.value.field == "given_at" and "same-visit-interval" in str(e.value) and "120 min" in str(e.value)
    assert _count(reg) == 1


def test_a_mild_systemic_reaction_to_0_3_ml_applies_the_rule_to_0_3_ml_and_stops_the_visit(
    reg: Registry, ultra_rush: int
) -> None:
    with clock.frozen(f"{DAY}T12:30"):
        for at, ml in (("08:00", "0.1"), ("10:00", "0.2"), ("12:00", "0.3")):
            _give(reg, ultra_rush, at, ml)
        after = _systemic(reg, ultra_rush)["next"]
    # lsu-systemic-tenth: one tenth of the 0.3 mL that caused it (not of the day's 0.6 mL)
    assert after["rule"]["id"] == "lsu-systemic-tenth" and after["rule"]["status"] == "SECONDARY"
    assert after["dose"]["dose"] == 0.03 and after["dose_ml"] == 0.03
    assert after["visit_complete"] is True
    assert after["visit"]["id"] == "visit-stops-after-reaction" and "1 injection(s)" in after["visit"]["text"]
    assert str(after["due_date"]) > DAY
    with clock.frozen(f"{DAY}T14:05"):
        day = inj.injection_day(reg, _patient_id(reg, ultra_rush), ultra_rush)
        assert day["due_now"] is False
        with pytest.raises(InvalidInput) as e:  # the 4th injection of the day is not offered nor accepted
            _give(reg, ultra_rush, "14:00", "0.4")
    assert e.value.field == "given_at" and "earliest" in str(e.value)
    assert _count(reg) == 3


def test_after_the_visits_last_injection_the_visit_is_complete_and_nothing_is_due_today(
    reg: Registry, ultra_rush: int
) -> None:
    with clock.frozen(f"{DAY}T14:10"):
        for at, ml in (("08:00", "0.1"), ("10:00", "0.2"), ("12:00", "0.3"), ("14:00", "0.4")):
            out = _give(reg, ultra_rush, at, ml)
        assert out["next"]["visit_complete"] is True and out["next"]["visit"]["id"] == "visit-complete"
        day = inj.injection_day(reg, _patient_id(reg, ultra_rush), ultra_rush)
    assert day["due_now"] is False and day["next"]["visit_complete"] is True


def test_before_the_visits_last_injection_the_visit_is_not_complete(reg: Registry, ultra_rush: int) -> None:
    with clock.frozen(f"{DAY}T08:10"):
        out = _give(reg, ultra_rush, "08:00", "0.1")
    assert out["next"]["visit_complete"] is False and out["next"]["same_visit"] is True


def test_a_dose_above_the_dose_due_is_refused_without_a_reason_and_recorded_with_one(
    reg: Registry, ultra_rush: int
) -> None:
    with clock.frozen(f"{DAY}T08:05"):
        with pytest.raises(InvalidInput) as e:
            _give(reg, ultra_rush, "08:00", "0.4")
        assert (
            e.value.field == "dose_ml"
            and "dose-above-due" in str(e.value)
            and "<= 0.1 mL" in e.value.accepted
        )
        assert _count(reg) == 0
        out = _give(reg, ultra_rush, "08:00", "0.2", override_reason="physician: known tolerance")
    assert out["override_reason"] == "physician: known tolerance"
    assert out["checks"]["overridden"][0]["kind"] == "dose-above-due"


def test_after_a_severe_reaction_no_dose_is_accepted_without_a_reason(reg: Registry) -> None:
    cid = _course(reg, "alutard-sq-hdm", "conventional")
    with clock.frozen(f"{DAY}T09:40"):
        _give(reg, cid, "09:00", "0.2", vial="1")
        data = inj.InjectionReactionIn(kind="systemic", scale="wao2010", symptoms=["hypotension", "collapse"])
        out = inj.record_reaction_to_last_injection(reg, "nurse.kim", None, cid, data)
    assert out["next"]["kind"] == "do-not-dose"
    with clock.frozen("2026-12-08T09:05"), pytest.raises(InvalidInput) as e:
        inj.record_injection(reg, "n", course_id=cid, given_at="2026-12-08T09:00", dose_ml="0.1", vial="1")
    assert e.value.field == "dose_ml" and "seed001-severe-stop" in str(e.value)


def _vial(reg: Registry, cid: int, lot: str, expiry: str, concentration: str = "1") -> int:
    v = vials.add_vial(
        reg,
        "nurse.kim",
        {
            "patient_id": _patient_id(reg, cid),
            "product_id": "alutard-sq-hdm",
            "concentration": concentration,
            "lot": lot,
            "expiry_on": expiry,
        },
    )
    return int(v["id"])


def test_an_expired_vial_is_refused_at_the_injection(reg: Registry) -> None:
    cid = _course(reg, "alutard-sq-hdm", "conventional")
    with clock.frozen("2026-11-20T09:00"):
        old = _vial(reg, cid, "L-OLD", "2026-11-30")
    with clock.frozen(f"{DAY}T09:05"), pytest.raises(InvalidInput) as e:
        _give(reg, cid, "09:00", "0.2", vial_id=old)
    assert e.value.field == "vial_id" and "vial-expired" in str(e.value) and "2026-11-30" in str(e.value)
    assert _count(reg) == 0


def test_an_expired_vial_cannot_be_registered(reg: Registry) -> None:
    cid = _course(reg, "alutard-sq-hdm", "conventional")
    with pytest.raises(InvalidInput) as e:
        _vial(reg, cid, "L-OLD", "2026-11-30")
    assert e.value.field == "expiry_on"


def test_once_vials_are_registered_every_injection_names_one(reg: Registry) -> None:
    cid = _course(reg, "alutard-sq-hdm", "conventional")
    vid = _vial(reg, cid, "L-1", "2027-06-30")
    with clock.frozen(f"{DAY}T09:05"):
        with pytest.raises(InvalidInput) as e:
            _give(reg, cid, "09:00", "0.2", vial="1")
        assert e.value.field == "vial_id" and f"{vid} (strength 1, lot L-1" in e.value.accepted
        out = _give(reg, cid, "09:00", "0.2", vial_id=vid)
    assert out["vial_id"] == vid and out["lot"] == "L-1" and out["vial"] == "1" and out["dose"] == 20


def test_a_new_lot_at_the_same_strength_lowers_the_next_dose_by_the_new_vial_rule(reg: Registry) -> None:
    cid = _course(reg, "alutard-sq-hdm", "conventional")
    first = _vial(reg, cid, "L-1", "2027-06-30")
    with clock.frozen(f"{DAY}T09:05"):
        _give(reg, cid, "09:00", "0.2", vial_id=first)
    second = _vial(reg, cid, "L-2", "2027-08-31")
    with clock.frozen("2026-12-08T09:05"):
        same = inj.next_dose(reg, cid, vial_id=first)
        new = inj.next_dose(reg, cid, vial_id=second)
        assert same["dose"]["dose"] == 40 and same["vial"]["new_vial"] is False
        assert new["rule"]["id"] == "canada-new-vial" and new["dose"]["dose"] == 10
        assert new["vial"]["new_vial"] is True and new["vial"]["lot"] == "L-2"
        with pytest.raises(InvalidInput) as e:  # the scheduled 0.4 mL from the new lot: above the dose due
            inj.record_injection(
                reg, "n", course_id=cid, given_at="2026-12-08T09:00", dose_ml="0.4", vial_id=second
            )
        assert e.value.field == "dose_ml" and "canada-new-vial" in str(e.value)
        out = inj.record_injection(
            reg, "n", course_id=cid, given_at="2026-12-08T09:00", dose_ml="0.1", vial_id=second
        )
    assert out["new_vial"] is True and any("New vial or lot" in w for w in out["warnings"])


def test_a_new_strength_is_the_schedules_step_not_a_new_vial(reg: Registry) -> None:
    cid = _course(reg, "alutard-sq-hdm", "conventional")
    one = _vial(reg, cid, "L-1", "2027-06-30")
    two = _vial(reg, cid, "L-9", "2027-06-30", concentration="1000 SQ-U/mL")
    assert vials.get_vial(reg, two)["strength"] == "2"
    with clock.frozen(f"{DAY}T09:05"):
        _give(reg, cid, "09:00", "0.2", vial_id=one)
    with clock.frozen("2026-12-08T09:05"):
        n = inj.next_dose(reg, cid, vial_id=two)
    assert n["vial"]["new_vial"] is False and n["rule"]["id"] != "canada-new-vial"


def test_another_patients_vial_is_refused(reg: Registry) -> None:
    cid = _course(reg, "alutard-sq-hdm", "conventional")
    other = _course(reg, "alutard-sq-hdm", "conventional", pid="D-2")
    theirs = _vial(reg, other, "L-X", "2027-06-30")
    with clock.frozen(f"{DAY}T09:05"), pytest.raises(InvalidInput) as e:
        _give(reg, cid, "09:00", "0.2", vial_id=theirs)
    assert e.value.field == "vial_id" and _count(reg) == 0


def test_the_lot_typed_must_be_the_vials(reg: Registry) -> None:
    cid = _course(reg, "alutard-sq-hdm", "conventional")
    vid = _vial(reg, cid, "L-1", "2027-06-30")
    with clock.frozen(f"{DAY}T09:05"), pytest.raises(InvalidInput) as e:
        _give(reg, cid, "09:00", "0.2", vial_id=vid, lot="L-7")
    assert e.value.field == "lot"


def test_after_the_visit_is_complete_another_injection_that_day_needs_a_reason(
    reg: Registry, ultra_rush: int
) -> None:
    with clock.frozen(f"{DAY}T16:10"):
        for at, ml in (("08:00", "0.1"), ("10:00", "0.2"), ("12:00", "0.3"), ("14:00", "0.4")):
            _give(reg, ultra_rush, at, ml)
        # after the Lee 2019 day no maintenance rule answers (outside-table): no dose without a reason
        with pytest.raises(InvalidInput) as e:
            _give(reg, ultra_rush, "16:00", "0.1")
        assert e.value.field == "dose_ml" and "no rule gives a dose" in str(e.value)
        assert _count(reg) == 4
        out = _give(reg, ultra_rush, "16:00", "0.1", override_reason="physician: repeat, first vial leaked")
    assert out["checks"]["overridden"][0]["kind"] == "outside-table"


def test_a_cluster_visit_complete_refuses_a_fourth_injection_the_same_day(reg: Registry) -> None:
    cid = _course(reg, "alutard-sq-hdm", "cluster")
    with clock.frozen(f"{DAY}T10:35"):
        for at, ml, vial in (("09:00", "0.1", "1"), ("09:30", "0.1", "2"), ("10:00", "0.1", "3")):
            _give(reg, cid, at, ml, vial=vial)
        with pytest.raises(InvalidInput) as e:
            _give(reg, cid, "10:30", "0.1", vial="1")
    assert e.value.field == "given_at" and "visit-complete" in str(e.value) and _count(reg) == 3


def test_a_pre_injection_answer_longer_than_a_word_is_refused_by_the_input_model() -> None:
    from immunoplan.services.inputs import validate

    with pytest.raises(InvalidInput) as e:
        validate(
            inj.InjectionIn, {"course_id": 1, "dose_ml": "0.1", "checks": {"fever_infection": "y" * 10**5}}
        )
    assert e.value.field == "checks.fever_infection" and str(inj.CHECK_ANSWER_MAX_CHARS) in e.value.accepted
