"""A patient's vials through the service layer (`services.records.vials`), a test per rule: registering (the
catalogue's product and vials, an expired vial refused, a printable lot), the list's status, the checks an
injection makes on its vial (another patient's vial, an expired vial on the injection's date, a vial required
once one is registered) and the new-vial rule applied by itself when the vial changes at the same strength
(``scit_adjustment`` ``new_vial``), with a dose above the dose due refused unless a reason is given.

The clinic clock is pinned; every refusal is checked to write nothing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from immunoplan import clock, reference
from immunoplan.errors import InvalidInput
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry, open_registry
from immunoplan.services import records as rec
from immunoplan.services.records import injections as inj
from immunoplan.services.records import vials

NOW = "2026-03-10T08:30"


@pytest.fixture(autouse=True)
def clinic_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("IMMUNOPLAN_TIMEZONE", "Europe/Oslo")
    with clock.frozen(NOW):
        yield


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vials") / "template.sqlite"
    open_registry(path).dispose()
    return path


@pytest.fixture
def reg(template: Path, tmp_path: Path) -> Iterator[Registry]:
    target = tmp_path / "vials.sqlite"
    shutil.copyfile(template, target)
    r = open_registry(target)
    yield r
    r.dispose()


def _patient(reg: Registry, pid: str = "VS-1") -> int:
    p = rec.register_patient(reg, "dr.a", pseudo_id=pid, sex="female", birth_date="1990-01-01")
    return int(p["id"])


def _course(reg: Registry, pid: str = "VS-1") -> tuple[int, int]:
    patient = _patient(reg, pid)
    c = rec.plan_course(
        reg,
        "dr.a",
        pseudo_id=pid,
        kind="cluster",
        product_id="alutard-sq-hdm",
        regimen_id="cluster",
        started_on="2026-03-10",
        dose_unit="SQ-U",
    )
    return patient, int(c["id"])


def _vial(reg: Registry, patient: int, **kw: Any) -> dict[str, Any]:
    data = {
        "patient_id": patient,
        "product_id": "alutard-sq-hdm",
        "concentration": "4",
        "lot": "LOT-A",
        "expiry_on": "2027-01-31",
        **kw,
    }
    return vials.add_vial(reg, "nurse.kim", data)


def _count(reg: Registry, model: type = m.Vial) -> int:
    with reg.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _give(reg: Registry, cid: int, at: str, ml: Any, **kw: Any) -> dict[str, Any]:
    with clock.frozen(at):  # recorded as given now
        return inj.record_injection(reg, "nurse.kim", course_id=cid, given_at=at, dose_ml=str(ml), **kw)


# ----------------------------------------------------------------------------------------------- registering


def test_add_stores_the_catalogues_strength_concentration_and_colour(reg: Registry) -> None:
    patient = _patient(reg)
    for typed in ("4", "100000", "100000 SQ-U/mL", " 100000 sq-u/ml "):
        v = _vial(reg, patient, concentration=typed, lot=f"L-{len(typed)}")
        assert (v["strength"], v["concentration"], v["colour"]) == ("4", "100000 SQ-U/mL", "red"), typed
    v = _vial(reg, patient, concentration="2", opened_on="2026-03-01", volume_ml="5", lot="G")
    assert (v["strength"], v["colour"], v["opened_on"], v["volume_ml"]) == ("2", "green", "2026-03-01", 5)
    assert v["allergens"] == "Alutard SQ house dust mite (ALK)"  # default: the product's name
    assert v["status"] == "in date" and v["days_to_expiry"] == 327 and v["created_by"] == "nurse.kim"
    assert vials.get_vial(reg, v["id"])["lot"] == "G"


def test_an_expired_vial_is_refused_at_registration_and_one_expiring_today_is_not(reg: Registry) -> None:
    patient = _patient(reg)
    with pytest.raises(InvalidInput) as e:
        _vial(reg, patient, expiry_on="2026-03-09")
    rule = reference.load("registry_recording")["vial_rules"]["vial-expired"]
    assert e.value.field == "expiry_on" and rule["id"] in e.value.reason and rule["status"] in e.value.reason
    assert e.value.accepted == "a vial expiring on or after 2026-03-10"
    assert _count(reg) == 0
    assert _vial(reg, patient, expiry_on="2026-03-10")["days_to_expiry"] == 0


def test_unknown_product_and_a_concentration_not_of_the_product_name_the_accepted_values(
    reg: Registry,
) -> None:
    patient = _patient(reg)
    with pytest.raises(InvalidInput) as e:
        _vial(reg, patient, product_id="alutard-sq-grass")
    assert e.value.field == "product_id" and "alutard-sq-hdm" in str(e.value.accepted)
    for typed in ("5", "50000", "100000 SQ-U", "4 mL"):
        with pytest.raises(InvalidInput) as e:
            _vial(reg, patient, concentration=typed)
        assert e.value.field == "concentration", typed
        assert e.value.accepted == "1 = 100 SQ-U/mL; 2 = 1000 SQ-U/mL; 3 = 10000 SQ-U/mL; 4 = 100000 SQ-U/mL"
    with pytest.raises(InvalidInput) as e:  # a vial number of another product's range
        _vial(reg, patient, product_id="hdm-tyrosine-ultrarush", concentration="4")
    assert e.value.field == "concentration" and "1 = 1 mL of maintenance concentration/mL" in str(e.value)
    assert _count(reg) == 0


@pytest.mark.parametrize("lot", ["A\x00B", "LOT\x07", "\x1b[31mRED", "   ", "a\u200bb"])
def test_a_lot_with_control_characters_is_refused(reg: Registry, lot: str) -> None:
    patient = _patient(reg)
    with pytest.raises(InvalidInput) as e:
        _vial(reg, patient, lot=lot)
    assert e.value.field == "lot"
    assert _count(reg) == 0


def test_opened_on_in_the_future_is_refused(reg: Registry) -> None:
    patient = _patient(reg)
    with pytest.raises(InvalidInput) as e:
        _vial(reg, patient, opened_on="2026-03-11")
    assert e.value.field == "opened_on" and e.value.accepted == "today or earlier"
    assert _count(reg) == 0


def test_list_shows_status_and_days_to_expiry_on_the_clinics_today(reg: Registry) -> None:
    patient = _patient(reg)
    other = _patient(reg, "VS-2")
    soon = _vial(reg, patient, expiry_on="2026-03-20", lot="SOON")
    late = _vial(reg, patient, expiry_on="2027-01-31", concentration="3", lot="LATE")
    _vial(reg, other, lot="THEIRS")
    with clock.frozen("2026-03-25T10:00"):
        rows = vials.list_vials(reg, patient)
    assert [r["id"] for r in rows] == [late["id"], soon["id"]]  # newest first, only this patient's
    assert (rows[1]["status"], rows[1]["days_to_expiry"]) == ("expired", -5)
    assert (rows[0]["status"], rows[0]["days_to_expiry"]) == ("in date", 312)
    assert vials.list_vials(reg, patient, product_id="hdm-tyrosine-ultrarush") == []
    with pytest.raises(InvalidInput):
        vials.list_vials(reg, 999)


def test_label_rows_show_the_patient_and_refuse_expired_or_another_patients_vials(reg: Registry) -> None:
    p = rec.register_patient(
        reg,
        "dr.a",
        pseudo_id="VS-L",
        mrn="M-1",
        display_name="Kari Nordmann",
        sex="female",
        birth_date="1990-01-01",
    )
    v = _vial(reg, p["id"], opened_on="2026-03-01")
    soon = _vial(reg, p["id"], expiry_on="2026-03-11", lot="SOON")
    row = vials.label_rows(reg, vial_ids=[v["id"]])[0]
    assert (row["patient_name"], row["mrn"], row["birth_date"]) == ("Kari Nordmann", "M-1", "1990-01-01")
    assert (row["strength"], row["colour"], row["lot"], row["expiry_on"]) == (
        "4",
        "red",
        "LOT-A",
        "2027-01-31",
    )
    assert row["printed_on"] == "2026-03-10" and row["product_name"] == "Alutard SQ house dust mite (ALK)"
    with clock.frozen("2026-03-12T09:00"):
        with pytest.raises(InvalidInput) as e:
            vials.label_rows(reg, vial_ids=[soon["id"]])
        assert e.value.field == "vial_id" and "vial-expired" in e.value.reason
        assert [r["vial_id"] for r in vials.label_rows(reg, patient_id=p["id"])] == [v["id"]]
    other = _patient(reg, "VS-O")
    with pytest.raises(InvalidInput) as e:
        vials.label_rows(reg, vial_ids=[v["id"]], patient_id=other)
    assert e.value.field == "vial_id"
    with pytest.raises(InvalidInput):
        vials.label_rows(reg, patient_id=other)  # no vial in date


# ------------------------------------------------------------------------------------ vials at an injection


def test_an_injection_refuses_another_patients_vial(reg: Registry) -> None:
    _, cid = _course(reg)
    theirs = _vial(reg, _patient(reg, "VS-2"), concentration="1")
    with pytest.raises(InvalidInput) as e:
        _give(reg, cid, "2026-03-10T09:00", "0.1", vial_id=theirs["id"])
    assert e.value.field == "vial_id" and f"no vial {theirs['id']} of this patient" in e.value.reason
    assert _count(reg, m.Injection) == 0


def test_an_injection_refuses_a_vial_expired_on_the_injections_date(reg: Registry) -> None:
    patient, cid = _course(reg)
    v = _vial(reg, patient, concentration="1", expiry_on="2026-03-10")
    first = _give(reg, cid, "2026-03-10T09:00", "0.1", vial_id=v["id"])  # in date on its expiry date
    assert first["vial_id"] == v["id"] and first["lot"] == "LOT-A"
    with pytest.raises(InvalidInput) as e:
        _give(reg, cid, "2026-03-11T09:00", "0.1", vial_id=v["id"])
    assert e.value.field == "vial_id" and "vial-expired" in e.value.reason and "2026-03-10" in e.value.reason
    with clock.frozen("2026-03-11T09:00"), pytest.raises(InvalidInput):
        inj.next_dose(reg, cid, "2026-03-11T09:00", vial_id=v["id"])
    assert _count(reg, m.Injection) == 1


def test_once_a_vial_is_registered_every_injection_names_one(reg: Registry) -> None:
    patient, cid = _course(reg)
    v = _vial(reg, patient, concentration="1")
    with pytest.raises(InvalidInput) as e:
        _give(reg, cid, "2026-03-10T09:00", "0.1", vial="1", lot="LOT-A")
    assert e.value.field == "vial_id" and "vial-required" in e.value.reason and str(v["id"]) in str(e.value)
    assert _count(reg, m.Injection) == 0


def _walk_to_maintenance(reg: Registry, cid: int) -> str:
    """Record the cluster schedule's injections, each at its earliest time (09:00 on a new day), until the
    first maintenance dose is recorded; returns the clinic time of the next maintenance visit."""
    at = "2026-03-10T09:00"
    for _ in range(20):
        with clock.frozen(at):
            n = inj.next_dose(reg, cid, at)
        phase = n["phase"]
        _give(reg, cid, at, n["dose_ml"], vial=str(n["dose"]["vial"]))
        after = inj.next_dose(reg, cid, at)
        day = f"{after['due_date'].isoformat()}T09:00"
        earliest = clock.iso_local(after["earliest_at"]) if after["earliest_at"] else day
        at = max(day, earliest[:16])
        if phase == "maintenance":
            return at
    raise AssertionError("the cluster schedule did not reach maintenance")


def test_a_new_vial_at_the_same_strength_lowers_the_dose_due_by_the_new_vial_rule(reg: Registry) -> None:
    patient, cid = _course(reg)
    at = _walk_to_maintenance(reg, cid)  # no vial registered yet: injections without one are accepted
    a = _vial(reg, patient, lot="LOT-A")
    b = _vial(reg, patient, lot="LOT-B")
    given = _give(reg, cid, at, "1", vial_id=a["id"])  # the maintenance dose from vial A
    assert (given["dose"], given["new_vial"]) == (100000, False)
    at = f"{given['next']['due_date']}T09:00"
    with clock.frozen(at):
        same = inj.next_dose(reg, cid, at, vial_id=a["id"])
        new = inj.next_dose(reg, cid, at, vial_id=b["id"])
    assert same["dose"]["dose"] == 100000 and same["vial"]["new_vial"] is False
    rule = reference.load("scit_adjustment")["new_vial"]
    expected = Decimal(rule["fraction"]) * 100000  # at most this fraction of the previous dose
    assert new["vial"]["new_vial"] is True and Decimal(str(new["dose"]["dose"])) == expected
    assert new["rule"]["id"] == rule["id"] and new["rule"]["status"] == rule["status"]
    before = _count(reg, m.Injection)
    with pytest.raises(InvalidInput) as e:  # the full dose from the new vial without a reason
        _give(reg, cid, at, "1", vial_id=b["id"])
    assert (
        e.value.field == "dose_ml" and "above the dose due" in e.value.reason and rule["id"] in e.value.reason
    )
    assert _count(reg, m.Injection) == before
    ml = expected / 100000
    lowered = _give(reg, cid, at, ml, vial_id=b["id"])
    assert lowered["new_vial"] is True and lowered["dose"] == expected and lowered["lot"] == "LOT-B"
    assert any("New vial or lot" in w for w in lowered["warnings"])


def test_a_dose_above_the_new_vial_dose_is_recorded_with_a_reason(reg: Registry) -> None:
    patient, cid = _course(reg)
    at = _walk_to_maintenance(reg, cid)
    a = _vial(reg, patient, lot="LOT-A")
    b = _vial(reg, patient, lot="LOT-B")
    given = _give(reg, cid, at, "1", vial_id=a["id"])
    at = f"{given['next']['due_date']}T09:00"
    full = _give(reg, cid, at, "1", vial_id=b["id"], override_reason="same manufacturer batch series")
    assert full["new_vial"] is True and full["override_reason"] == "same manufacturer batch series"
    with reg.session() as s:
        stored = s.get(m.Injection, full["id"])
        assert stored is not None and stored.checks is not None
        assert [o["kind"] for o in stored.checks["overridden"]] == ["dose-above-due"]


def test_one_print_has_at_most_the_label_limit(reg: Any) -> None:
    """A list of vial ids longer than ten A4 sheets is refused before any work (``vial_labels_per_print``)."""
    from immunoplan.reference.limits import limit

    most = int(limit("vial_labels_per_print").high or 0)
    with pytest.raises(InvalidInput) as e:
        vials.label_rows(reg, vial_ids=["1"] * (most + 1))
    assert e.value.field == "vial_id" and f"1 to {most}" in e.value.accepted
