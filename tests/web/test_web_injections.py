"""Injection day on the web: POST/redirect/GET, idempotency keys (reload, double submit, two tabs), the same
act from another form (409 with the message on the page), clinic time, and the JSON API (201/409/422)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from web_helpers import WebClient, html_text

from immunoplan import clock
from immunoplan.registry import models as m
from immunoplan.services import records as rec

NOW = "2026-03-10T09:05"


@pytest.fixture(autouse=True)
def clinic(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("IMMUNOPLAN_TIMEZONE", "Europe/Oslo")
    with clock.frozen(NOW):
        yield


@pytest.fixture
def course(registry: Any) -> tuple[int, int]:
    p = rec.register_patient(registry, "dr.a", pseudo_id="W-1", sex="female", birth_date="1990-01-01")
    c = rec.plan_course(
        registry,
        "dr.a",
        pseudo_id="W-1",
        kind="cluster",
        product="Alutard SQ house dust mite",
        product_id="alutard-sq-hdm",
        regimen_id="cluster",
        started_on="2026-03-10",
        dose_unit="SQ-U",
    )
    return int(p["id"]), int(c["id"])


def _rows(registry: Any, model: type = m.Injection) -> int:
    with registry.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _form_key(html: str, action: str) -> str:
    """The idempotency key of the form posting to ``action`` (each rendered form has its own)."""
    form = html.split(f'action="{action}"', 1)[1].split("</form>", 1)[0]
    found = re.search(r'name="idempotency_key" value="([^"]+)"', form)
    assert found, "no idempotency key in the form"
    return found.group(1)


def _page(pid: int, cid: int) -> str:
    return f"/patients/{pid}/courses/{cid}/injection-day"


FIRST = {"dose_ml": "0.1", "vial": "1", "site": "left arm", "lot": "LOT-A1", "given_at": "2026-03-10T09:00"}


def test_post_redirects_and_a_reload_makes_no_second_row(
    nurse: WebClient, registry: Any, course: Any
) -> None:
    pid, cid = course
    action = f"/patients/{pid}/courses/{cid}/injections"
    page = nurse.get(_page(pid, cid))
    assert page.status_code == 200 and "Dose due now" in page.text
    form = {**FIRST, "idempotency_key": _form_key(page.text, action)}
    r = nurse.post(action, form)
    assert r.status_code == 303 and r.headers["location"].startswith(_page(pid, cid))
    shown = nurse.get(r.headers["location"])  # the GET after the redirect; a reload repeats only this GET
    again = nurse.get(r.headers["location"])
    assert shown.status_code == again.status_code == 200
    assert _rows(registry) == 1
    text = html_text(shown.text)
    assert "recorded" in text and "Dose due now" not in text  # the dose just given is no longer due
    assert (
        "Next dose" in text and "100 SQ-U" in text and "not before 2026-03-10 09:30 CET (Europe/Oslo)" in text
    )
    assert "2026-03-10 09:00 CET (Europe/Oslo)" in text and "LOT-A1" in text  # clinic time, the lot entered
    resent = nurse.post(action, form)  # the browser's "resend the form?" after all: the same key
    assert resent.status_code == 303 and _rows(registry) == 1


def test_the_same_form_posted_twice_or_from_two_tabs_writes_one_row(
    nurse: WebClient, as_role: Any, registry: Any, course: Any
) -> None:
    pid, cid = course
    action = f"/patients/{pid}/courses/{cid}/injections"
    form = {**FIRST, "idempotency_key": _form_key(nurse.get(_page(pid, cid)).text, action)}
    first, double = nurse.post(action, form), nurse.post(action, form)  # a double click
    assert first.status_code == double.status_code == 303
    other_tab = as_role("nurse")  # a duplicated tab holds the same rendered form (same key)
    assert other_tab.post(action, form).status_code == 303
    assert _rows(registry) == 1


def test_the_same_act_from_another_form_is_a_409_with_the_message_on_the_page(
    nurse: WebClient, as_role: Any, registry: Any, course: Any
) -> None:
    pid, cid = course
    action = f"/patients/{pid}/courses/{cid}/injections"
    r = nurse.post(action, {**FIRST, "idempotency_key": _form_key(nurse.get(_page(pid, cid)).text, action)})
    assert r.status_code == 303
    with registry.session() as s:
        first = s.scalars(select(m.Injection)).one()
    colleague = as_role("nurse")
    key = _form_key(colleague.get(_page(pid, cid)).text, action)
    r = colleague.post(action, {**FIRST, "given_at": "2026-03-10T09:00", "idempotency_key": key})
    assert r.status_code == 409
    text = html_text(r.text)
    assert f"injection {first.id} given 09:00 by nurse1" in text and "Injection day" in text  # the page
    assert _rows(registry) == 1


def test_bad_input_is_shown_next_to_the_field_and_nothing_is_written(
    nurse: WebClient, registry: Any, course: Any
) -> None:
    pid, cid = course
    action = f"/patients/{pid}/courses/{cid}/injections"
    r = nurse.post(action, {**FIRST, "dose_ml": "lots"})
    assert r.status_code == 422 and 'id="e-dose_ml"' in r.text
    r = nurse.post(action, {**FIRST, "given_at": "2026-03-10T09:30"})  # in the future of the clinic clock
    assert r.status_code == 422 and 'id="e-given_at"' in r.text and "future" in r.text
    assert _rows(registry) == 0


def test_too_early_needs_a_reason_on_the_page(nurse: WebClient, registry: Any, course: Any) -> None:
    pid, cid = course
    action = f"/patients/{pid}/courses/{cid}/injections"
    assert nurse.post(action, FIRST).status_code == 303
    second = {"dose_ml": "0.1", "vial": "2", "given_at": "2026-03-10T09:04"}
    r = nurse.post(action, second)
    assert r.status_code == 422 and "same-visit-interval" in r.text and 'id="e-given_at"' in r.text
    r = nurse.post(action, {**second, "override_reason": "doctor's decision"})
    assert r.status_code == 303 and _rows(registry) == 2
    assert "given early: doctor&#39;s decision" in nurse.get(r.headers["location"]).text


def test_htmx_post_gets_the_updated_fragment(nurse: WebClient, registry: Any, course: Any) -> None:
    pid, cid = course
    r = nurse.post(f"/patients/{pid}/courses/{cid}/injections", FIRST, headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<html" not in r.text and 'id="day"' in r.text
    assert _rows(registry) == 1


def test_reaction_form_records_and_the_next_dose_follows_the_rule(
    nurse: WebClient, registry: Any, course: Any
) -> None:
    pid, cid = course
    base = f"/patients/{pid}/courses/{cid}"
    assert nurse.post(f"{base}/injections", FIRST).status_code == 303
    reaction = {"kind": "systemic", "scale": "wao2010", "symptoms": ["urticaria", "wheeze"]}
    reaction["bronchodilator_response"] = "responds"
    page = nurse.get(_page(pid, cid)).text
    r = nurse.post(f"{base}/reactions", {**reaction, "idempotency_key": _form_key(page, f"{base}/reactions")})
    assert r.status_code == 303, r.text[:400]
    text = html_text(nurse.get(r.headers["location"]).text)
    assert "Reaction recorded" in text and "lsu-systemic-tenth" in text
    with registry.session() as s:
        rx = s.scalars(select(m.Reaction)).one()
        assert (rx.kind, rx.grade, rx.scale) == ("systemic", "2", "wao2010")


def test_api_answers_201_409_422_and_404(nurse: WebClient, registry: Any, course: Any) -> None:
    pid, cid = course
    api = f"/api/patients/{pid}/courses/{cid}"
    nxt = nurse.get(f"{api}/next-dose")
    assert nxt.status_code == 200 and nxt.json()["rule"]["id"] == "schedule-first-injection"
    body = {"dose_ml": 0.1, "vial": "1", "given_at": "2026-03-10T09:00", "lot": "API-1"}
    r = nurse.post(f"{api}/injections", json=body, headers={"Idempotency-Key": "api-key-0001"})
    assert r.status_code == 201 and r.json()["lot"] == "API-1" and r.json()["next"]["dose"]["dose"] == 100
    replay = nurse.post(f"{api}/injections", json=body, headers={"Idempotency-Key": "api-key-0001"})
    assert replay.status_code == 201 and replay.json()["replayed"] is True
    dup = nurse.post(f"{api}/injections", json={**body, "given_at": "2026-03-10T09:00:20"})
    assert dup.status_code == 409 and dup.json()["detail"][0]["record"] == f"injection {r.json()['id']}"
    for bad in ({**body, "dose_ml": 25}, {**body, "site": "leg"}, {**body, "bogus": 1}, [1, 2]):
        assert nurse.post(f"{api}/injections", json=bad).status_code == 422, bad
    assert nurse.post(f"{api}/injections", json=body, headers={"Idempotency-Key": "!"}).status_code == 422
    assert _rows(registry) == 1
    react = {"kind": "local", "local_size": "up-to-quarter"}
    rr = nurse.post(f"{api}/reactions", json=react)
    assert rr.status_code == 201 and rr.json()["reaction"]["grade"] == "up-to-quarter"
    assert nurse.post(f"{api}/reactions", json={"kind": "local"}).status_code == 422
    assert nurse.get(f"/api/patients/{pid}/courses/{cid + 99}/next-dose").status_code == 404
    assert nurse.post(f"/api/patients/{pid + 99}/courses/{cid}/injections", json=body).status_code == 404
