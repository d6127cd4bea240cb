"""Injection day in real Chromium, as a busy nurse uses it: a volume a thousand times too big (the message
appears next to the field and nothing is saved), a double click, a reload, the back button and a second tab
(one injection each time), and a void with its reason shown in the record."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from web_helpers import password_for

from immunoplan import clock
from immunoplan.registry import models as m
from immunoplan.registry.db import open_registry
from immunoplan.services import records as rec
from immunoplan.services.records import vials

pytestmark = pytest.mark.browser


@pytest.fixture
def course(db_path: Path) -> tuple[int, int]:
    reg = open_registry(str(db_path))
    try:
        p = rec.register_patient(reg, "dr.a", pseudo_id="BR-1", sex="female", birth_date="1990-01-01")
        c = rec.plan_course(
            reg,
            "dr.a",
            pseudo_id="BR-1",
            kind="cluster",
            product="Alutard SQ house dust mite",
            product_id="alutard-sq-hdm",
            regimen_id="cluster",
            started_on=clock.today().isoformat(),
            dose_unit="SQ-U",
        )
    finally:
        reg.dispose()
    return int(p["id"]), int(c["id"])


def _live_injections(db_path: Path, course_id: int) -> int:
    reg = open_registry(str(db_path))
    try:
        with reg.session() as s:
            q = select(func.count()).where(
                m.Injection.course_id == course_id, m.Injection.voided_at.is_(None)
            )
            return int(s.scalar(q) or 0)
    finally:
        reg.dispose()


def _login(page: Any, role: str) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(f"{role}1")
    page.get_by_label("Password").fill(password_for(role))
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/patients")


def test_busy_nurse_on_injection_day(
    page: Any, course: tuple[int, int], db_path: Path, tmp_path: Path
) -> None:
    pid, cid = course
    url = f"/patients/{pid}/courses/{cid}/injection-day"
    _login(page, "nurse")
    page.goto(url)
    volume = page.get_by_label("Volume injected (mL)")
    due_ml = volume.input_value()
    assert due_ml == "0.1"  # the schedule's first injection, from the engine
    # a value a thousand times too big: refused next to the field (htmx swaps the 422), nothing written
    volume.fill("100")
    page.get_by_role("button", name="Record injection and start timer").click()
    message = page.locator(".field-error", has_text="accepted: (0, 10] mL")
    message.wait_for()
    assert _live_injections(db_path, cid) == 0
    page.screenshot(path=str(tmp_path / "1-too-big.png"), full_page=True)
    # the right volume, double-clicked: one injection
    page.goto(url)
    page.get_by_label("Volume injected (mL)").fill(due_ml)
    page.get_by_role("button", name="Record injection and start timer").dblclick()
    page.get_by_text(re.compile(r"Injection \d+ recorded")).wait_for()
    assert _live_injections(db_path, cid) == 1
    # reload and back button: still one
    page.reload()
    page.go_back()
    page.wait_for_load_state()
    assert _live_injections(db_path, cid) == 1
    page.goto(url)
    page.screenshot(path=str(tmp_path / "2-recorded.png"), full_page=True)
    assert "Europe/Oslo" in page.inner_text("body")  # clinic time, zone shown
    assert "Next dose" in page.inner_text("body")  # no longer "dose due now" for the dose just given


def test_a_second_tab_with_an_old_form_does_not_record_twice(
    page: Any, course: tuple[int, int], db_path: Path
) -> None:
    pid, cid = course
    url = f"/patients/{pid}/courses/{cid}/injection-day"
    _login(page, "nurse")
    tab2 = page.context.new_page()
    page.goto(url)
    tab2.goto(url)  # both tabs show the same dose due, each with its own form
    page.get_by_role("button", name="Record injection and start timer").click()
    page.get_by_text(re.compile(r"Injection \d+ recorded")).wait_for()
    tab2.get_by_role("button", name="Record injection and start timer").click()
    tab2.wait_for_load_state()
    body = tab2.inner_text("body")
    # the same act (same course, dose and minute) is refused naming the first record, or it is too early
    assert re.search(r"injection \d+|earliest time", body, re.I), body[:2000]
    assert _live_injections(db_path, cid) == 1


# ----------------------------------------------------------- issue 12: a cluster day and an ultra-rush day

SHOTS = Path("/tmp/walk12")
DAY = "2026-12-01"


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def clinic_at(page: Any) -> Iterator[Any]:
    """``clinic_at("09:30")`` pins the clinic clock (the server's) and the browser's clock (the countdown) to
    ``DAY`` at that time, until the next call or the end of the test."""
    stack = ExitStack()

    def at(hhmm: str) -> None:
        stack.close()
        now = stack.enter_context(clock.frozen(f"{DAY}T{hhmm}"))
        page.clock.set_fixed_time(now)

    yield at
    stack.close()


def _record(page: Any, name: str = "Record injection and start timer", dbl: bool = False) -> None:
    button = page.get_by_role("button", name=name)
    button.dblclick() if dbl else button.click()
    page.get_by_text(re.compile(r"Injection \d+ recorded")).wait_for()


def _answer_checks(page: Any, **answers: str) -> None:
    for qid, value in answers.items():
        if value in ("yes", "no"):
            page.locator(f"#q-{qid}-{value}").check()
        else:
            page.locator(f"#q-{qid}").fill(value)


@pytest.fixture
def cluster_patient(db_path: Path) -> tuple[int, int]:
    reg = open_registry(str(db_path))
    try:
        with clock.frozen(f"{DAY}T08:00"):
            p = rec.register_patient(reg, "dr.a", pseudo_id="CL-1", sex="female", birth_date="1985-05-01")
            c = rec.plan_course(
                reg,
                "dr.a",
                pseudo_id="CL-1",
                kind="cluster",
                product="Alutard SQ house dust mite",
                product_id="alutard-sq-hdm",
                regimen_id="cluster",
                started_on=DAY,
                dose_unit="SQ-U",
            )
            rec.record_measurement(
                reg, "dr.a", pseudo_id="CL-1", kind="weight_kg", value="68", measured_on=DAY
            )
            for strength, lot in (("1", "AL1-2211"), ("2", "AL2-2212"), ("3", "AL3-2213")):
                data = {"patient_id": p["id"], "product_id": "alutard-sq-hdm", "concentration": strength}
                vials.add_vial(reg, "nurse.kim", {**data, "lot": lot, "expiry_on": "2027-05-31"})
    finally:
        reg.dispose()
    return int(p["id"]), int(c["id"])


def test_cluster_day_in_chromium(
    page: Any, clinic_at: Any, cluster_patient: tuple[int, int], db_path: Path
) -> None:
    pid, cid = cluster_patient
    url = f"/patients/{pid}/courses/{cid}/injection-day"
    clinic_at("09:00")
    _login(page, "nurse")
    page.goto(url)
    body = page.inner_text("body")
    assert "Dose due now" in body and "lot AL1-2211" in body and "0.5 mg IM" in body
    assert page.locator("#f-vial_id").input_value() != ""  # the proposed vial is preselected
    _shot(page, "c1-cluster-due")
    _answer_checks(page, asthma_worse="no", fever_infection="no", beta_blocker="no", pef_pct_best="96")
    _record(page)
    assert _live_injections(db_path, cid) == 1
    _shot(page, "c2-cluster-first-recorded")

    clinic_at("09:31")
    page.goto(url)
    assert "Dose due now" in page.inner_text("body")
    _answer_checks(page, fever_infection="yes")
    page.get_by_role("button", name="Record injection and start timer").click()
    message = page.locator("#e-q-fever_infection")
    message.wait_for()
    assert "holds the dose" in message.inner_text() and _live_injections(db_path, cid) == 1
    _shot(page, "c3-cluster-check-holds")
    page.get_by_label("Reason (recorded)").fill("37.6 at triage, afebrile on recheck; Dr A agrees")
    _record(page, dbl=True)  # a double click: one row
    assert _live_injections(db_path, cid) == 2
    page.go_back()  # the back button: no re-post
    page.wait_for_load_state()
    assert _live_injections(db_path, cid) == 2

    clinic_at("10:02")
    page.goto(url)
    _record(page)
    assert _live_injections(db_path, cid) == 3
    page.goto(url)
    body = page.inner_text("body")
    assert "Visit complete" in body and "Dose due now" not in body and "Next visit: 2026-12-08" in body
    assert "Observe until 10:32" in body and "Europe/Oslo" in body
    assert "held: fever_infection; overridden: 37.6 at triage" in body
    _shot(page, "c4-cluster-visit-complete")


@pytest.fixture
def ultra_rush_patient(db_path: Path) -> tuple[int, int]:
    from immunoplan.jsonable import to_jsonable
    from immunoplan.services.protocols import plan_scit_schedule
    from immunoplan.services.records import omalizumab

    reg = open_registry(str(db_path))
    try:
        with clock.frozen(f"{DAY}T07:30"):
            p = rec.register_patient(reg, "dr.a", pseudo_id="UR-14", sex="male", birth_date="2012-03-01")
            plan = plan_scit_schedule(
                product="hdm-tyrosine-ultrarush",
                regimen="rush",
                start=DAY,
                start_time="08:00",
                omalizumab="pre",
                omalizumab_lead_weeks=8,
                age_years=14,
                weight_kg=50,
                total_ige_iu_ml=300,
            )
            c = rec.plan_course(
                reg,
                "dr.a",
                pseudo_id="UR-14",
                kind="RIT",
                product="hdm-tyrosine-ultrarush",
                product_id="hdm-tyrosine-ultrarush",
                regimen_id="rush",
                started_on=DAY,
                with_omalizumab=True,
                omalizumab_timing="pre",
                plan={"result": to_jsonable(plan)},
            )
            rec.record_measurement(
                reg, "dr.a", pseudo_id="UR-14", kind="weight_kg", value="50", measured_on=DAY
            )
            for on in ("2026-10-06T09:00", "2026-11-03T09:00"):  # the pre-treatment doses already given
                dose = {"course_id": c["id"], "dose_mg": "300", "given_at": on, "lot": "XOL-1"}
                omalizumab.record_dose(reg, "nurse.kim", dose, patient_id=int(p["id"]))
    finally:
        reg.dispose()
    return int(p["id"]), int(c["id"])


def test_ultra_rush_day_with_omalizumab_in_chromium(
    page: Any, clinic_at: Any, ultra_rush_patient: tuple[int, int], db_path: Path
) -> None:
    pid, cid = ultra_rush_patient
    url = f"/patients/{pid}/courses/{cid}/injection-day"
    clinic_at("08:00")
    _login(page, "nurse")
    page.goto(url)
    body = page.inner_text("body")
    assert "Omalizumab due today: dose 3, 300 mg" in body and "Observe 120 min after dose 3" in body
    assert "the lot and expiry are not checked" in body and "0.5 mg IM" in body
    page.get_by_label("Syringe lot").fill("XOL-2")
    page.get_by_label("Syringe expiry date").fill("2027-02-28")
    page.get_by_role("button", name="Record omalizumab dose").click()
    page.get_by_text("Omalizumab 300 mg recorded.").wait_for()
    page.get_by_label("Volume injected (mL)").fill("0.1")
    _record(page, dbl=True)
    assert _live_injections(db_path, cid) == 1
    page.goto(url)
    body = page.inner_text("body")
    assert (
        "After omalizumab dose 3" in body and "Observe until 10:00" in body and "Observe until 08:30" in body
    )
    _shot(page, "u1-ultrarush-first-with-omalizumab")

    for at, ml in (("10:00", "0.2"), ("12:00", "0.3")):
        clinic_at(at)
        page.goto(url)
        assert "Dose due now" in page.inner_text("body")
        assert page.get_by_label("Volume injected (mL)").input_value() == ml
        _record(page)
    assert _live_injections(db_path, cid) == 3

    clinic_at("12:20")
    page.goto(url)
    page.locator("#kind-systemic").check()
    page.locator("#sy-generalized_urticaria").check()
    page.get_by_role("button", name="Record reaction").click()
    page.get_by_text("Reaction recorded").wait_for()
    body = page.inner_text("body")
    assert "Visit stopped after a reaction" in body and "0.03 mL of maintenance concentration" in body
    assert "Dose due now" not in body and "Record anyway (reason required)" in body
    _shot(page, "u2-ultrarush-visit-stopped")
    page.go_back()
    page.wait_for_load_state()
    assert _live_injections(db_path, cid) == 3
