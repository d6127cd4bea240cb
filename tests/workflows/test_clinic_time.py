"""Clinic time on injection day: the history the engine sees uses each injection's clinic-local date, and the
page shows recorded times in the clinic's zone and names it (issue 10, "Done when")."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from immunoplan import clock
from immunoplan.registry.db import Registry, open_registry
from immunoplan.services import records as rec
from immunoplan.services.records import injections as inj


def _web_helpers() -> Any:
    path = Path(__file__).resolve().parents[1] / "web" / "web_helpers.py"
    spec = importlib.util.spec_from_file_location("clinic_time_web_helpers", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``zone("America/Los_Angeles", server=True)`` sets the clinic zone (and the server's TZ)."""

    def set_zone(name: str, server: bool = False) -> None:
        monkeypatch.setenv("IMMUNOPLAN_TIMEZONE", name)
        if server:
            monkeypatch.setenv("TZ", name)
            time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


def _course(reg: Registry) -> int:
    rec.register_patient(reg, "dr.a", pseudo_id="TZ-1", sex="female", birth_date="1990-01-01")
    c = rec.plan_course(
        reg,
        "dr.a",
        pseudo_id="TZ-1",
        kind="SCIT",
        product_id="alutard-sq-hdm",
        regimen_id="conventional",
        started_on="2026-03-10",
        dose_unit="SQ-U",
    )
    return int(c["id"])


def test_an_evening_injection_in_los_angeles_is_in_the_history_on_its_local_date(
    zone: Any, tmp_path: Path, cli: Any
) -> None:
    zone("America/Los_Angeles", server=True)
    reg = open_registry(tmp_path / "la.sqlite")
    try:
        with clock.frozen("2026-03-10T18:00"):
            cid = _course(reg)
            r = inj.record_injection(
                reg, "nurse.kim", course_id=cid, given_at="2026-03-10T17:30", dose_ml="0.2", vial="1"
            )
            n = inj.next_dose(reg, cid)
        assert r["given_at"] == "2026-03-10T17:30:00-07:00"  # 2026-03-11 00:30 UTC
        assert [h["date"] for h in n["history"]] == [date(2026, 3, 10)]
        assert n["due_date"] == date(2026, 3, 17)  # a week after the clinic-local date, not after 03-11
        with clock.frozen("2026-03-10T18:00"):
            out = cli("injection", "next", "--course", cid, "--db", tmp_path / "la.sqlite", "--json")
        assert out.code == 0, out.stderr
        assert [h["date"] for h in out.json["history"]] == ["2026-03-10"]
        assert out.json["history"][0]["given_at"] == "2026-03-10T17:30:00-07:00"
    finally:
        reg.dispose()


def test_the_injection_day_page_shows_tokyo_time_and_says_so(zone: Any, tmp_path: Path) -> None:
    from immunoplan.registry.users import open_storage
    from immunoplan.services.auth import Passwords, add_user
    from immunoplan.web.app import create_app
    from immunoplan.web.settings import WebSettings

    zone("Asia/Tokyo")
    helpers = _web_helpers()
    db = tmp_path / "tokyo.sqlite"
    reg, users = open_storage(str(db))
    add_user(users, Passwords(fast=True), "nurse1", helpers.password_for("nurse"), "nurse", "test-setup")
    with clock.frozen("2026-03-10T09:00"):
        cid = _course(reg)
        inj.record_injection(
            reg,
            "nurse.kim",
            course_id=cid,
            given_at="2026-03-10T08:30",
            dose_ml="0.2",
            vial="1",
            lot="LOT-77",
        )
        with reg.session() as s:
            from immunoplan.registry import models as m

            pid = s.get(m.Course, cid).patient_id
    reg.dispose()
    app = create_app(WebSettings(db=str(db), secret_key="tz-secret-" + "k" * 32, fast_password_hashing=True))
    try:
        with clock.frozen("2026-03-10T09:00"):
            nurse = helpers.WebClient(app).login_as("nurse")
            page = nurse.get(f"/patients/{pid}/courses/{cid}/injection-day")
        assert page.status_code == 200
        text = helpers.html_text(page.text)
        assert "2026-03-10 08:30 JST (Asia/Tokyo)" in text  # 2026-03-09 23:30 UTC, shown in clinic time
        assert "Asia/Tokyo" in page.text.split("Injection day", 2)[-1]
        assert "LOT-77" in text  # the lot entered
        assert "23:30" not in text  # never the UTC clock time
    finally:
        app.state.ctx.registry.dispose()
