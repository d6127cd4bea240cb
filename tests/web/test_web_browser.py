"""Real-browser flow in Debian's Chromium (Playwright): log in, assess a patient, plan a rush course with
omalizumab pre-treatment, record an injection and a grade-2 systemic reaction, see the next dose change.

Screenshots go to ``$IMMUNOPLAN_SCREENSHOTS`` (default: the test's tmp folder).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from web_helpers import password_for

from immunoplan import clock
from immunoplan.jsonable import to_jsonable
from immunoplan.services.protocols import scit_next_dose

pytestmark = pytest.mark.browser


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("IMMUNOPLAN_SCREENSHOTS", tmp_path / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _login(page: Any, role: str) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(f"{role}1")
    page.get_by_label("Password").fill(password_for(role))
    page.get_by_role("button", name="Log in").click()


def test_clinic_flow_in_chromium(page: Any, shots: Path) -> None:
    _login(page, "clinician")
    page.wait_for_url("**/patients")
    # new patient
    page.get_by_role("link", name="New patient").click()
    page.get_by_label("Pseudonym (patient code)").fill("WEB-001")
    page.get_by_label("Birth date").fill("2012-03-04")
    page.get_by_role("button", name="Create patient").click()
    page.wait_for_url(re.compile(r".*/patients/\d+$"))
    patient_url = page.url
    # assess
    page.get_by_role("link", name="New assessment").click()
    page.get_by_label("Total IgE (IU/mL)").fill("300")
    page.get_by_label("Specific IgE (kUA/L)").fill("40")
    page.get_by_label("Weight (kg)").fill("50")
    page.get_by_label("Severity").select_option("moderate")
    page.get_by_label("Control").select_option("partly-controlled")
    page.get_by_label("Perennial sensitisation").select_option("yes")
    page.get_by_role("button", name="Assess").click()
    page.wait_for_url(re.compile(r".*/assessments/\d+$"))
    assert "risk tier: high" in page.get_by_test_id("risk-tier").inner_text()
    assert page.get_by_test_id("omalizumab-advice").inner_text().strip() == "recommended"
    page.screenshot(path=str(shots / "1-assessment.png"), full_page=True)
    # plan a rush course with omalizumab pre-treatment (weight/IgE prefilled from the assessment)
    page.get_by_role("link", name="Plan immunotherapy from this assessment").click()
    page.get_by_label("Product and schedule").select_option("hdm-tyrosine-ultrarush|rush")
    page.get_by_label("First injection time").fill("08:00")
    page.get_by_label("Omalizumab", exact=True).select_option("pre")
    page.get_by_label("Pre-treatment lead time (weeks)").fill("8")
    page.get_by_role("button", name="Preview calendar").click()  # htmx partial update
    page.get_by_text("One calendar").wait_for()
    assert "300 mg every 4 weeks" in page.locator("#preview").inner_text()
    page.screenshot(path=str(shots / "2-course-preview.png"), full_page=True)
    page.get_by_role("button", name="Save course").click()
    page.wait_for_url(re.compile(r".*/courses/\d+$"))
    # injection day
    page.get_by_role("link", name="Injection day").click()
    assert "schedule-first-injection" in page.get_by_test_id("rule-fired").inner_text()
    page.get_by_role("button", name="Record injection and start timer").click()
    page.locator("[data-timer-start]").wait_for()
    before = page.get_by_test_id("dose-due").inner_text()
    expect(page.locator(".timer")).not_to_have_text("30:00")  # the timer counts down (app.js)
    page.screenshot(path=str(shots / "3-injection-recorded.png"), full_page=True)
    # a grade-2 systemic reaction with guided grading
    page.locator("#sy-urticaria").check()
    page.locator("#sy-wheeze").check()
    page.get_by_label("Bronchospasm response to bronchodilator").select_option("responds")
    page.get_by_role("button", name="Show grade").click()
    page.get_by_test_id("grading").wait_for()
    assert "Grade 2" in page.get_by_test_id("grading").inner_text()
    page.screenshot(path=str(shots / "4-guided-grading.png"), full_page=True)
    page.get_by_role("button", name="Record reaction").click()
    page.get_by_text("Reaction recorded: grade 2").wait_for()
    after = page.get_by_test_id("dose-due").inner_text()
    today = clock.today().isoformat()
    history: dict[str, Any] = {
        "product": "hdm-tyrosine-ultrarush",
        "regimen": "rush",
        "injections": [{"date": today, "dose": "0.1"}],
    }
    expected_before = to_jsonable(scit_next_dose(history, today))
    history["injections"][0]["systemic_reaction"] = {"scale": "wao2010", "grade": "2"}
    expected_after = to_jsonable(scit_next_dose(history, today))
    assert before.startswith(str(expected_before["dose"]["dose"]))
    assert after.startswith(str(expected_after["dose"]["dose"])) and after != before
    assert expected_after["rule"]["id"] in page.get_by_test_id("rule-fired").inner_text()
    page.screenshot(path=str(shots / "5-next-dose-changed.png"), full_page=True)
    # the patient page shows the timeline
    page.goto(patient_url)
    timeline = page.locator(".timeline").inner_text()
    assert "Reaction: systemic, grade 2" in timeline and "Injection" in timeline and "Assessment" in timeline
    page.screenshot(path=str(shots / "6-patient-timeline.png"), full_page=True)


def test_keyboard_only_login_and_tablet_layout(chromium: Any, live_server: str, shots: Path) -> None:
    context = chromium.new_context(
        base_url=live_server, viewport={"width": 820, "height": 1180}, has_touch=True
    )
    page = context.new_page()
    page.goto("/login")
    assert page.evaluate("document.activeElement.id") == "username"  # autofocus
    page.keyboard.type("nurse1")
    page.keyboard.press("Tab")
    page.keyboard.type(password_for("nurse"))
    page.keyboard.press("Enter")
    page.wait_for_url("**/patients")
    page.keyboard.press("Tab")  # the first stop on every page is the skip link
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 820  # no horizontal scrolling on a tablet
    page.screenshot(path=str(shots / "7-tablet-patient-list.png"), full_page=True)
    context.close()


def test_desensitization_flow_in_chromium(page: Any, shots: Path) -> None:
    _login(page, "clinician")
    page.wait_for_url("**/patients")
    page.get_by_role("link", name="New patient").click()
    page.get_by_label("Pseudonym (patient code)").fill("RDD-001")
    page.get_by_role("button", name="Create patient").click()
    page.get_by_role("link", name="Plan desensitization").click()
    page.get_by_label("Drug").fill("carboplatin")
    page.get_by_label("Target dose (mg)").fill("500")
    page.get_by_label("Final infusion rate (mL/h)").fill("80")
    page.get_by_label("Stock concentration (mg/mL)").fill("10")
    page.get_by_role("button", name="Preview").click()  # htmx: the plan appears below the form
    page.locator("#preview table.steps").wait_for()
    assert "12-step" in page.locator("#preview").inner_text()
    page.get_by_role("button", name="Create session").click()
    page.wait_for_url(re.compile(r".*/desensitization/\d+$"))
    for step in (1, 2):
        if step > 1:  # marked before step 1's 15 minutes have passed: the reason is recorded
            page.get_by_label("Reason if started early").fill("browser walk")
        page.get_by_role("button", name=f"Mark step {step} given").click()
        expect(page.locator("table.steps tbody tr").nth(step - 1)).to_have_class("given")
    page.get_by_label("At step").select_option("3")
    page.get_by_label("mild").check()
    page.get_by_label("flushing").check()
    page.get_by_role("button", name="Record reaction and re-plan").click()
    page.get_by_role("heading", name="Re-planned after a mild reaction at step 3").wait_for()
    assert "Resume at step" in page.locator("#replan").inner_text()
    page.get_by_role("button", name="Mark step 2 given").click()  # the continuation, numbered in the session
    expect(page.locator("#protocol-1 tbody tr").first).to_have_class("given")
    page.screenshot(path=str(shots / "8-desensitization-replanned.png"), full_page=True)
