"""Injection day in real Chromium, as a busy nurse uses it: a volume a thousand times too big (the message
appears next to the field and nothing is saved), a double click, a reload, the back button and a second tab
(one injection each time), and a void with its reason shown in the record."""

from __future__ import annotations

import re
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
