"""Issue 11's Done-when walk in real Chromium: one oxaliplatin patient (160 mg, 250 mL bags, 80 mL/h) through
three desensitization cycles as the clinic runs them.

Cycle 1: 12 steps from the web form, steps marked given at clinic times (an early step refused until a reason
is typed), a breakthrough reaction at the final step with findings, minutes into the step, vitals and a
treatment, the resume steps marked given in their place, finished "completed with reactions". Then the index
reaction on the course page and the drug-allergy alert on the patient page. Cycle 2 on 16 steps (a next-cycle
option of the course page): bronchospasm at SpO2 90 % graded severe, no resumption, session stopped.
Omalizumab 300 mg planned as an off-label adjuvant and recorded twice with lot and expiry; cycle 3 completed
without a reaction; the course page lists the three cycles; the sheets open (HTML and PDF).

Busy-person mistakes on the way: a double click on "Mark given" (one row), the back button after a POST (no
re-post), SpO2 900 (the message next to the field, nothing saved). Screenshots go to /tmp/walk11/."""

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

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/walk11")
C1, C2, C3 = "2026-12-01", "2026-12-22", "2027-01-19"
OMA1, OMA2 = "2027-01-05", "2027-01-18"


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _count(db_path: Path, model: Any, *where: Any) -> int:
    reg = open_registry(str(db_path))
    try:
        with reg.session() as s:
            return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)
    finally:
        reg.dispose()


def _steps(db_path: Path, session_id: int) -> int:
    return _count(db_path, m.DesensitizationStep, m.DesensitizationStep.session_id == session_id)


def _login(page: Any, role: str) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(f"{role}1")
    page.get_by_label("Password").fill(password_for(role))
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/patients")


def _give(page: Any, step: int) -> None:
    page.get_by_role("button", name=f"Mark step {step} given").click()


def _mark(page: Any, url: str, step: int) -> None:
    """Mark ``step`` given now (clinic time) on the session page (opened unless it is shown)."""
    if not page.url.endswith(url):
        page.goto(url)
    _give(page, step)
    page.wait_for_url(re.compile(r"/desensitization/\d+$"))
    page.get_by_role("button", name=f"Mark step {step} given").wait_for(state="detached")


def _api_step(page: Any, session_id: int, step: int) -> None:
    """Mark a step given now through the JSON API with the page's login (the same use case as the button)."""
    csrf = page.request.get("/api/me").json()["csrf_token"]
    r = page.request.post(
        f"/api/desensitization/{session_id}/steps", data={"step_no": step}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status == 201, r.text()


def _planned_starts(page: Any, url: str) -> list[str]:
    """The planned clinic start (HH:MM) of each step of the original protocol, read from the session page."""
    page.goto(url)
    cells = page.locator("#protocol-0 tbody tr td:nth-child(7)").all_inner_texts()
    return [c.strip()[:5] for c in cells]


@pytest.fixture
def patient(db_path: Path) -> int:
    reg = open_registry(str(db_path))
    try:
        with clock.frozen(f"{C1}T08:00"):
            p = rec.register_patient(
                reg,
                "dr.a",
                pseudo_id="OX-1",
                sex="female",
                birth_date="1961-04-12",
                height_cm=165,
                weight_kg=70,
            )
    finally:
        reg.dispose()
    return int(p["id"])


@pytest.fixture
def at(chromium: Any, live_server: str) -> Iterator[Any]:
    """``at(day, "09:30", *pages)`` pins the clinic clock (the server's) and the pages' clocks there."""
    stack = ExitStack()

    def move(day: str, hhmm: str, *pages: Any) -> None:
        stack.close()
        now = stack.enter_context(clock.frozen(f"{day}T{hhmm}"))
        for pg in pages:
            pg.clock.set_fixed_time(now)

    yield move
    stack.close()


def test_oxaliplatin_course_of_three_cycles_in_chromium(
    page: Any, chromium: Any, live_server: str, at: Any, patient: int, db_path: Path
) -> None:
    doc = page  # the clinician plans; the nurse (own browser context) runs the session
    nurse_ctx = chromium.new_context(base_url=live_server, viewport={"width": 1180, "height": 900})
    nurse = nurse_ctx.new_page()
    at(C1, "08:30", doc, nurse)
    _login(doc, "clinician")
    _login(nurse, "nurse")

    # ---- cycle 1: 12 steps from the web form
    doc.goto(f"/patients/{patient}/desensitization/new")
    doc.get_by_label("Drug").fill("oxaliplatin")
    doc.get_by_label("Target dose (mg)").fill("160")
    doc.get_by_label("Final infusion rate (mL/h)").fill("80")
    doc.get_by_role("button", name="Preview").click()
    doc.locator("#preview table.steps").wait_for()
    _shot(doc, "01-plan-preview")
    doc.get_by_role("button", name="Create session").click()
    doc.wait_for_url(re.compile(r"/desensitization/\d+$"))
    s1 = int(doc.url.rsplit("/", 1)[1])
    _shot(doc, "02-session-1-new")
    url1 = f"/desensitization/{s1}"
    nurse.goto(url1)
    body = nurse.inner_text("body")
    assert "12 steps" in body or re.search(r"\b12\s+3\s+80\b", body), body[:1500]
    assert "Europe/Oslo" in body

    # steps 1-11 at their planned clinic times; step 2 ten minutes early needs a reason
    at(C1, "09:00", doc, nurse)
    _mark(nurse, url1, 1)
    at(C1, "09:10", doc, nurse)
    nurse.goto(url1)
    _give(nurse, 2)
    refusal = nurse.locator("#refusal")
    refusal.wait_for()
    assert "earliest 2026-12-01 09:15" in refusal.inner_text() and "give the reason" in refusal.inner_text()
    assert _steps(db_path, s1) == 1
    _shot(nurse, "03-early-step-refused")
    nurse.goto(url1)
    nurse.locator("#er-0-2").fill("patient must leave by 15:00; Dr A agrees")
    _give(nurse, 2)
    nurse.wait_for_url(re.compile(r"/desensitization/\d+$"))
    assert "early: patient must leave" in nurse.inner_text("body")
    assert _steps(db_path, s1) == 2
    at(C1, "09:30", doc, nurse)
    nurse.goto(url1)
    nurse.get_by_role("button", name="Mark step 3 given").dblclick()  # a double click: one row
    nurse.locator("#protocol-0 tr.given").nth(2).wait_for()
    assert _steps(db_path, s1) == 3
    nurse.go_back()  # the back button after the POST: no re-post
    nurse.wait_for_load_state()
    assert _steps(db_path, s1) == 3
    nurse.goto(url1)
    for k in range(4, 12):
        at(C1, f"{9 + (k - 1) // 4:02d}:{15 * ((k - 1) % 4):02d}", doc, nurse)
        _mark(nurse, url1, k)
    assert _steps(db_path, s1) == 11
    at(C1, "11:45", doc, nurse)
    _mark(nurse, url1, 12)

    # breakthrough reaction 20 minutes into step 12 (the final step)
    at(C1, "12:05", doc, nurse)
    nurse.goto(url1)
    nurse.locator("#bt-step").select_option("12")
    for finding in ("flushing", "urticaria"):
        nurse.locator(f"#fi-{finding}").check()
    nurse.locator("#bt-min").fill("20")
    nurse.locator("#bt-systolic_bp_mmhg").fill("128")
    nurse.locator("#bt-heart_rate_bpm").fill("96")
    nurse.locator("#bt-spo2_pct").fill("98")
    nurse.locator("#tr-drug-0").fill("dexchlorpheniramine")
    nurse.locator("#tr-dose-0").fill("5")
    nurse.locator("#tr-unit-0").select_option("mg")
    nurse.locator("#tr-route-0").select_option("IV")
    nurse.locator("#tr-given_at-0").fill("12:07")
    nurse.get_by_role("button", name="Record reaction and re-plan").click()
    nurse.wait_for_url(re.compile(r"/desensitization/\d+$"))
    nurse.locator("#replan .card").first.wait_for()
    body = nurse.inner_text("body")
    _shot(nurse, "04-session-1-reaction-replan")
    assert "mild reaction at 12:05 (urticaria, flushing)" in body
    assert "Grade: mild (brown2004, computed from the findings)" in body
    assert "dexchlorpheniramine" in body and "2026-12-01 12:07 CET (Europe/Oslo)" in body
    assert "SpO2 98 %" in body
    resume = nurse.locator("#protocol-1")
    assert resume.locator("tbody tr td:first-child").all_inner_texts() == ["11", "12"]  # their place

    # the resume steps, marked one by one; then finished
    at(C1, "12:35", doc, nurse)
    _mark(nurse, url1, 11)
    at(C1, "12:50", doc, nurse)
    _mark(nurse, url1, 12)
    assert _steps(db_path, s1) == 14
    at(C1, "15:30", doc, nurse)
    nurse.goto(url1)
    nurse.locator("#fin-outcome").select_option("completed-with-reactions")
    nurse.get_by_role("button", name="Finish session").click()
    nurse.locator("#session-status", has_text="completed-with-reactions").wait_for()
    _shot(nurse, "05-session-1-finished")

    # ---- the index reaction on the course page; the alert on the patient page
    doc.goto(url1)
    doc.get_by_role("link", name=re.compile(r"^course \d+$")).click()
    doc.wait_for_url(re.compile(r"/courses/\d+$"))
    course_url = doc.url
    doc.get_by_text("Record the index reaction").click()
    doc.locator("#f-reaction_on").fill("2026-10-20")
    doc.locator("#f-grade").select_option("2")
    doc.locator("#f-skin_test").select_option("positive")
    doc.locator("#f-skin_test_detail").fill("ID 0.5 mg/mL positive")
    doc.locator("#f-context").fill("FOLFOX cycle 8")
    doc.get_by_role("button", name="Save index reaction").click()
    doc.get_by_text("Drug-allergy alert:").wait_for()
    _shot(doc, "06-course-index-reaction")
    doc.goto(f"/patients/{patient}")
    alert = doc.locator("section.alert")
    assert "oxaliplatin" in alert.inner_text().lower()
    _shot(doc, "07-patient-alert")
    assert "brown2004 grade 2 (moderate), 2026-10-20, skin test positive" in alert.inner_text()

    # ---- cycle 2: 16 steps (4 bags) from the course page's options, with the override the product asks for
    at(C2, "08:30", doc, nurse)
    doc.goto(course_url)
    assert "next-add-bag" in doc.inner_text("#cycles-h + *, body")
    doc.get_by_role("link", name="Plan cycle 2 with next-add-bag").click()
    doc.wait_for_url(re.compile(r"/desensitization/new\?"))
    assert doc.locator("#f-cycle_choice").input_value() == "next-add-bag"
    assert doc.locator("#f-bags").input_value() == "4"
    assert doc.locator("#f-drug").input_value() == "oxaliplatin"
    assert doc.locator("#f-session_on").input_value() == C2
    doc.get_by_label("Final infusion rate (mL/h)").fill("80")
    doc.get_by_role("button", name="Preview").click()
    doc.locator("#preview table.steps").wait_for()
    preview = doc.inner_text("#preview")
    assert "not for administration without a recorded override" in preview and "16-step" in preview
    override = "16-step reconstruction accepted by Dr A after the cycle-1 reaction"
    doc.locator("#f-override_reason").fill(override)
    doc.get_by_role("button", name="Create session").click()
    doc.wait_for_url(re.compile(r"/desensitization/\d+$"))
    s2 = int(doc.url.rsplit("/", 1)[1])
    url2 = f"/desensitization/{s2}"
    body = doc.inner_text("body")
    assert "can be given" in body and "override: 16-step reconstruction" in body
    assert "next-add-bag after cycle 1" in body
    starts = _planned_starts(nurse, url2)
    assert len(starts) == 16 and starts[0] == "09:00"
    at(C2, starts[0], doc, nurse)
    _mark(nurse, url2, 1)
    for k in range(2, 13):  # the middle steps through the JSON API, in the nurse's browser session
        at(C2, starts[k - 1], doc, nurse)
        _api_step(nurse, s2, k)
    nurse.goto(url2)
    for k in (13, 14):
        at(C2, starts[k - 1], doc, nurse)
        _mark(nurse, url2, k)
    assert _steps(db_path, s2) == 14

    # bronchospasm 10 minutes into step 14; SpO2 typed 900 first: refused next to the field, nothing saved
    at(C2, f"{starts[13][:3]}{int(starts[13][3:]) + 10:02d}", doc, nurse)
    nurse.goto(url2)

    def reaction(spo2: str) -> None:
        nurse.locator("#bt-step").select_option("14")
        nurse.locator("#fi-wheeze").check()
        nurse.locator("#fi-chest_tightness").check()
        nurse.locator("#bt-min").fill("10")
        nurse.locator("#bt-spo2_pct").fill(spo2)
        nurse.locator("#bt-systolic_bp_mmhg").fill("118")
        nurse.locator("#tr-drug-0").fill("salbutamol")
        nurse.locator("#tr-dose-0").fill("8")
        nurse.locator("#tr-unit-0").select_option("puffs")
        nurse.locator("#tr-route-0").select_option("inhaled")
        nurse.get_by_role("button", name="Record reaction and re-plan").click()

    breakthroughs = (m.Reaction.patient_id == patient, m.Reaction.desensitization_step_id.is_not(None))
    reaction("900")
    error = nurse.locator("#e-bt-spo2_pct")
    error.wait_for()
    assert "%" in error.inner_text(), error.inner_text()
    assert _count(db_path, m.Reaction, *breakthroughs) == 1
    _shot(nurse, "08-spo2-900-refused")
    # the refused form is shown as typed: correct the one field and send it again
    assert nurse.locator("#fi-wheeze").is_checked() and nurse.locator("#fi-chest_tightness").is_checked()
    assert nurse.locator("#bt-step").input_value() == "14" and nurse.locator("#bt-min").input_value() == "10"
    assert nurse.locator("#bt-spo2_pct").input_value() == "900"
    assert nurse.locator("#tr-drug-0").input_value() == "salbutamol"
    assert nurse.locator("#tr-unit-0").input_value() == "puffs"
    nurse.locator("#bt-spo2_pct").fill("90")
    nurse.get_by_role("button", name="Record reaction and re-plan").click()
    nurse.wait_for_url(re.compile(r"/desensitization/\d+$"))
    card = nurse.locator("#replan .card").first
    card.wait_for()
    text = card.inner_text()
    _shot(nurse, "09-session-2-severe-replan")
    assert "Re-planned after a severe reaction at step 14" in text
    assert "Grade: severe (brown2004, computed from the findings)" in text
    assert "No resumption today" in text and "SpO2 90 %" in text
    assert _count(db_path, m.Reaction, *breakthroughs) == 2
    assert nurse.get_by_role("button", name=re.compile(r"Mark step \d+ given")).count() == 0
    assert nurse.locator("#fin-outcome").input_value() == "stopped"
    nurse.get_by_role("button", name="Finish session").click()
    nurse.locator("#session-status", has_text="stopped").wait_for()

    # the sheets of cycle 2 open from the session page (HTML), and their PDFs are PDFs
    for name, pdf in (("Pharmacy preparation sheet", "pharmacy-c2"), ("Nursing sheet", "nursing-c2")):
        with nurse.context.expect_page() as tab:
            nurse.get_by_role("link", name=name).click()
        sheet = tab.value
        sheet.wait_for_load_state()
        text = sheet.inner_text("body")
        assert "OX-1" in text and "drug allergy: oxaliplatin" in text and "Cycle: 2 of course" in text
        if name == "Nursing sheet":  # the session's reaction with its findings and the dose's unit
            assert "wheeze, chest tightness" in text and "salbutamol 8 puffs inhaled" in text
        _shot(sheet, f"10-{pdf}-html")
        sheet.close()
        pdf_link = nurse.get_by_role("link", name=name).locator("xpath=following-sibling::a[1]")
        href = pdf_link.get_attribute("href")
        assert href and href.endswith("?format=pdf")
        r = nurse.request.get(href)
        assert r.status == 200 and r.headers["content-type"] == "application/pdf"
        assert r.body()[:5] == b"%PDF-"
        (SHOTS / f"{pdf}.pdf").write_bytes(r.body())

    # ---- omalizumab 300 mg as adjuvant (off-label), two doses recorded with lot and expiry
    doc.goto(course_url)
    doc.get_by_text("Plan omalizumab as adjuvant (off-label)").click()
    doc.locator("#f-start_on").fill(C3)
    doc.get_by_role("button", name="Plan adjuvant omalizumab").click()
    doc.wait_for_url(re.compile(r"/courses/\d+$"))
    adj = doc.locator("#adj-h").locator("xpath=..").inner_text()
    assert "off-label" in adj.lower() and "300 mg" in adj
    for day, lot in ((OMA1, "XOL-7781"), (OMA2, "XOL-7790")):
        at(day, "10:00", doc, nurse)
        nurse.goto(course_url)
        assert nurse.locator("#f-dose_mg").input_value() == "300"  # the adjuvant plan's dose
        nurse.locator("#f-lot").fill(lot)
        nurse.locator("#f-expiry_on").fill("2027-06-30")
        nurse.get_by_role("button", name="Record dose").click()
        nurse.get_by_text("Omalizumab dose recorded").wait_for()
    doses = (m.OmalizumabAdministration.patient_id == patient, m.OmalizumabAdministration.voided_at.is_(None))
    assert _count(db_path, m.OmalizumabAdministration, *doses) == 2
    assert _count(db_path, m.OmalizumabAdministration, m.OmalizumabAdministration.lot == "XOL-7790") == 1
    _shot(nurse, "11-course-omalizumab")

    # ---- cycle 3 under omalizumab, completed without a reaction
    at(C3, "08:30", doc, nurse)
    doc.goto(course_url)
    doc.get_by_role("link", name="Plan cycle 3 with next-omalizumab").click()
    doc.wait_for_url(re.compile(r"/desensitization/new\?"))
    doc.get_by_label("Final infusion rate (mL/h)").fill("80")
    if doc.locator("#f-bags").input_value() == "4":
        doc.locator("#f-override_reason").fill("16-step reconstruction, as cycle 2; Dr A")
    doc.get_by_role("button", name="Create session").click()
    doc.wait_for_url(re.compile(r"/desensitization/\d+$"))
    s3 = int(doc.url.rsplit("/", 1)[1])
    url3 = f"/desensitization/{s3}"
    starts = _planned_starts(nurse, url3)
    n3 = len(starts)
    at(C3, starts[0], doc, nurse)
    _mark(nurse, url3, 1)
    for k in range(2, n3):  # the middle steps through the JSON API, in the nurse's browser session
        at(C3, starts[k - 1], doc, nurse)
        _api_step(nurse, s3, k)
    at(C3, starts[-1], doc, nurse)
    nurse.goto(url3)
    _mark(nurse, url3, n3)
    at(C3, "16:00", doc, nurse)
    nurse.goto(url3)
    assert nurse.locator("#fin-outcome").input_value() == "completed"
    nurse.get_by_role("button", name="Finish session").click()
    nurse.locator("#session-status", has_text="completed").wait_for()
    _shot(nurse, "12-session-3-completed")

    # ---- the course page lists the 3 cycles
    doc.goto(course_url)
    rows = doc.locator("#cycles-h + table tbody tr")
    assert rows.count() == 3
    outcomes = [rows.nth(i).locator("td").nth(3).inner_text() for i in range(3)]
    assert outcomes == ["completed-with-reactions", "stopped", "completed"], outcomes
    _shot(doc, "13-course-three-cycles")
    nurse_ctx.close()
