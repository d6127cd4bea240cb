"""Injection day on the web: POST/redirect/GET, idempotency keys (reload, double submit, two tabs), the same
act from another form (409 with the message on the page), clinic time, and the JSON API (201/409/422)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from web_helpers import WebClient, html_text

from immunoplan import clock
from immunoplan.registry import models as m
from immunoplan.services import records as rec
from immunoplan.services.records import vials as vials_svc

NOW = "2026-03-10T09:05"
DAY = "2026-03-10"


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


# ------------------------------------------------------------------------------ issue 12: injection day


def _vial(registry: Any, pid: int, lot: str, expiry: str, concentration: str = "1") -> int:
    row = vials_svc.add_vial(
        registry,
        "nurse.kim",
        {
            "patient_id": pid,
            "product_id": "alutard-sq-hdm",
            "concentration": concentration,
            "lot": lot,
            "expiry_on": expiry,
        },
    )
    return int(row["id"])


def _select_options(html: str, name: str) -> list[tuple[str, str, bool]]:
    """(value, label, selected) of the options of select ``name``."""
    block = html.split(f'name="{name}"', 1)[1].split("</select>", 1)[0]
    found = re.findall(r'<option value="([^"]*)"\s*(selected)?\s*>([^<]*)</option>', block)
    return [(v, html_text(label).strip(), bool(sel)) for v, sel, label in found]


def test_a_registered_vial_is_chosen_in_the_form_and_its_lot_shown(
    nurse: WebClient, registry: Any, course: Any
) -> None:
    pid, cid = course
    vid = _vial(registry, pid, "VL-1", "2026-06-30")
    action = f"/patients/{pid}/courses/{cid}/injections"
    page = nurse.get(_page(pid, cid)).text
    options = _select_options(page, "vial_id")
    label = f"#{vid} · strength 1 (100 SQ-U/mL, grey) · lot VL-1 · expires 2026-06-30"
    assert (str(vid), label, True) in options  # the proposed vial, preselected
    assert 'name="lot"' not in page and f'href="/patients/{pid}/vials"' in page  # lot from the vial
    assert "lot and expiry are not checked" not in page
    r = nurse.post(action, {"dose_ml": "0.1", "given_at": "2026-03-10T09:00"})  # no vial chosen: refused
    assert r.status_code == 422 and 'id="e-vial_id"' in r.text and "VL-1" in r.text
    assert _rows(registry) == 0
    r = nurse.post(action, {"dose_ml": "0.1", "vial_id": str(vid), "given_at": "2026-03-10T09:00"})
    assert r.status_code == 303
    row = html.unescape(nurse.get(r.headers["location"]).text)
    with registry.session() as s:
        inj = s.scalars(select(m.Injection)).one()
        assert (inj.vial_id, inj.lot, inj.vial, inj.new_vial) == (vid, "VL-1", "1", False)
    cells = html_text(row.split(f'data-testid="injection-{inj.id}"', 1)[1].split("</tr>", 1)[0])
    assert f"#{vid} · strength 1 / 0.1 mL" in cells and "VL-1" in cells and "new vial" not in cells


def test_without_a_vial_the_strength_field_stays_and_the_page_warns(nurse: WebClient, course: Any) -> None:
    pid, cid = course
    page = nurse.get(_page(pid, cid)).text
    assert 'name="vial"' in page and 'name="lot"' in page and 'name="vial_id"' not in page
    assert "the lot and expiry are not checked" in html_text(page)


def test_an_expired_vial_is_not_offered_and_is_refused_by_the_api(
    nurse: WebClient, registry: Any, course: Any
) -> None:
    pid, cid = course
    with clock.frozen("2026-03-01T09:00"):
        old = _vial(registry, pid, "OLD-1", "2026-03-05")
    good = _vial(registry, pid, "NEW-1", "2026-09-30")
    page = nurse.get(_page(pid, cid)).text
    values = [v for v, _, _ in _select_options(page, "vial_id")]
    assert str(good) in values and str(old) not in values and "OLD-1" not in page
    api = f"/api/patients/{pid}/courses/{cid}"
    body = {"dose_ml": 0.1, "vial_id": old, "given_at": "2026-03-10T09:00"}
    r = nurse.post(f"{api}/injections", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["field"] == "vial_id" and "2026-03-05" in r.text and "vial-expired" in r.text
    assert _rows(registry) == 0
    assert nurse.get(f"{api}/next-dose", params={"vial_id": old}).status_code == 422
    nxt = nurse.get(f"{api}/next-dose", params={"vial_id": good})
    assert nxt.status_code == 200 and nxt.json()["vial"]["id"] == good
    assert nxt.json()["vial"]["new_vial"] is False
    assert nurse.get(f"{api}/next-dose", params={"vial_id": "x" * 50}).status_code == 422
    r = nurse.post(f"{api}/injections", json={**body, "vial_id": good})
    assert r.status_code == 201 and r.json()["lot"] == "NEW-1"


def test_a_new_lot_says_so_beside_the_dose_due_with_the_rule(nurse: WebClient, registry: Any) -> None:
    p = rec.register_patient(registry, "dr.a", pseudo_id="NV-1", sex="male", birth_date="1980-01-01")
    c = rec.plan_course(
        registry,
        "dr.a",
        pseudo_id="NV-1",
        kind="SCIT",
        product="Alutard SQ house dust mite",
        product_id="alutard-sq-hdm",
        regimen_id="conventional",
        started_on=DAY,
    )
    pid, cid = int(p["id"]), int(c["id"])
    first = _vial(registry, pid, "A-1", "2026-03-12")
    action = f"/patients/{pid}/courses/{cid}/injections"
    r = nurse.post(action, {"dose_ml": "0.2", "vial_id": str(first), "given_at": "2026-03-10T09:00"})
    assert r.status_code == 303
    with clock.frozen("2026-03-17T09:00"):  # the first vial has expired: the proposed one is a new lot
        second = _vial(registry, pid, "B-2", "2026-12-31")
        api = f"/api/patients/{pid}/courses/{cid}"
        nxt = nurse.get(f"{api}/next-dose", params={"vial_id": second}).json()
        assert nxt["vial"]["new_vial"] is True and nxt["rule"]["id"] == "canada-new-vial"
        page = nurse.get(_page(pid, cid)).text
    card = html_text(page.split('data-testid="due-card"', 1)[1].split("</section>", 1)[0])
    assert f"{nxt['dose']['dose']} SQ-U" in card and f"#{second}" in card and "lot B-2" in card
    assert "New vial/lot: the new-vial rule applied — canada-new-vial" in card
    assert "basis: scit_adjustment" in card


def test_a_check_that_holds_the_dose_is_refused_next_to_the_question_then_recorded_with_a_reason(
    nurse: WebClient, registry: Any, course: Any
) -> None:
    pid, cid = course
    action = f"/patients/{pid}/courses/{cid}/injections"
    page = nurse.get(_page(pid, cid)).text
    assert 'name="check.fever_infection"' in page and 'name="check.pef_pct_best"' in page
    answers = {"check.fever_infection": "yes", "check.beta_blocker": "no", "check.pef_pct_best": "95"}
    form = {**FIRST, **answers, "check.asthma_worse": ""}  # an unanswered question is left out
    r = nurse.post(action, form)
    assert r.status_code == 422
    item = r.text.split('data-testid="q-fever_infection"', 1)[1].split('data-testid="q-', 1)[0]
    assert 'id="e-q-fever_infection"' in item and "holds the dose" in item and "fever_infection" in item
    assert 'value="yes" checked' in item  # the answer kept
    assert _rows(registry) == 0
    r = nurse.post(action, {**form, "override_reason": "afebrile now, doctor saw the patient"})
    assert r.status_code == 303 and _rows(registry) == 1
    with registry.session() as s:
        inj = s.scalars(select(m.Injection)).one()
        assert inj.checks["pre_injection"]["answers"] == {
            "fever_infection": True,
            "beta_blocker": False,
            "pef_pct_best": "95",
        }
        assert {"kind": "check-holds", "rule": "fever_infection"} in inj.checks["overridden"]
    cells = html_text(nurse.get(r.headers["location"]).text).split("Injections in this course", 1)[1]
    assert "held: fever_infection; overridden: afebrile now, doctor saw the patient" in cells


def test_hostile_input_is_a_422_next_to_the_field_never_a_500(
    nurse: WebClient, registry: Any, course: Any
) -> None:
    pid, cid = course
    action = f"/patients/{pid}/courses/{cid}/injections"
    r = nurse.post(action, {**FIRST, "dose_ml": "1e1000000"})
    assert r.status_code == 422 and 'id="e-dose_ml"' in r.text
    r = nurse.post(action, {**FIRST, "override_reason": "x" * 5000})
    assert r.status_code == 422 and 'id="e-override_reason"' in r.text
    r = nurse.post(action, {**FIRST, "check.fever_infection": "maybe"})
    assert r.status_code == 422 and 'id="e-q-fever_infection"' in r.text and "yes or no" in r.text
    r = nurse.post(action, {**FIRST, "check.pef_pct_best": "9" * 5000})
    assert r.status_code == 422 and "not an answer (5000 characters)" in r.text  # not echoed in the message
    r = nurse.post(action, {**FIRST, "check.pef_pct_best": "1e1000000"})
    assert r.status_code == 422 and 'id="e-q-pef_pct_best"' in r.text
    r = nurse.post(action, {**FIRST, "check.bogus": "yes"})
    assert r.status_code == 422 and "not a question of the pre-injection check" in r.text
    r = nurse.post(action, {**FIRST, "vial_id": "<script>"})
    assert r.status_code == 422 and 'data-testid="error-vial_id"' in r.text and "<script>" not in r.text
    api = f"/api/patients/{pid}/courses/{cid}/injections"
    r = nurse.post(api, json={**FIRST, "checks": {"fever_infection": "maybe"}})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "fever_infection"
    assert _rows(registry) == 0


@pytest.fixture
def ultra_rush(registry: Any) -> tuple[int, int]:
    p = rec.register_patient(registry, "dr.a", pseudo_id="UR-1", sex="male", birth_date="2012-03-01")
    c = rec.plan_course(
        registry,
        "dr.a",
        pseudo_id="UR-1",
        kind="RIT",
        product="hdm-tyrosine-ultrarush",
        product_id="hdm-tyrosine-ultrarush",
        regimen_id="rush",
        started_on=DAY,
    )
    return int(p["id"]), int(c["id"])


def _give_at(nurse: WebClient, pid: int, cid: int, at: str, ml: str) -> Any:
    """At clinic time ``at`` the nurse opens the page (it says the dose is due) and records ``ml`` now."""
    with clock.frozen(f"{DAY}T{at}"):
        page = nurse.get(_page(pid, cid)).text
        assert "Dose due now" in page, (at, html_text(page)[:600])
        assert f'name="dose_ml" type="text" value="{ml}"' in page
        action = f"/patients/{pid}/courses/{cid}/injections"
        r = nurse.post(action, {"dose_ml": ml, "idempotency_key": _form_key(page, action)})
        assert r.status_code == 303, html_text(r.text)[:800]
        return r


def test_after_the_last_ultra_rush_injection_the_page_says_the_visit_is_complete(
    nurse: WebClient, registry: Any, ultra_rush: Any
) -> None:
    pid, cid = ultra_rush
    for at, ml in (("08:00", "0.1"), ("10:00", "0.2"), ("12:00", "0.3"), ("14:00", "0.4")):
        _give_at(nurse, pid, cid, at, ml)
    with clock.frozen(f"{DAY}T14:05"):
        page = nurse.get(_page(pid, cid)).text
    text = html_text(page)
    assert "Visit complete" in text and "visit-complete" in text and "4 injection(s) given today" in text
    assert "Dose due now" not in text and "Next visit:" in text
    assert 'data-testid="record-anyway"' in page and "Record anyway (reason required)" in text
    assert "Record injection and start timer" not in text  # the form is behind "record anyway"
    assert "Observe until 14:30" in text and "Europe/Oslo" in text  # the timer of the last injection
    assert _rows(registry) == 4


def test_after_a_mild_systemic_reaction_at_0_3_ml_the_page_shows_a_tenth_and_the_visit_stopped(
    nurse: WebClient, registry: Any, ultra_rush: Any
) -> None:
    pid, cid = ultra_rush
    for at, ml in (("08:00", "0.1"), ("10:00", "0.2"), ("12:00", "0.3")):
        _give_at(nurse, pid, cid, at, ml)
    base = f"/patients/{pid}/courses/{cid}"
    with clock.frozen(f"{DAY}T12:20"):
        page = nurse.get(_page(pid, cid)).text
        reaction = {"kind": "systemic", "scale": "wao2010", "symptoms": ["generalized_urticaria"]}
        reaction["idempotency_key"] = _form_key(page, f"{base}/reactions")
        r = nurse.post(f"{base}/reactions", reaction)
        assert r.status_code == 303, html_text(r.text)[:600]
        text = html_text(nurse.get(_page(pid, cid)).text)
    assert "Visit stopped after a reaction" in text and "visit-stops-after-reaction" in text
    assert "0.03 mL of maintenance concentration" in text and "lsu-systemic-tenth" in text
    assert "Dose due now" not in text and "Next visit: 2026-03-17" in text
    with clock.frozen(f"{DAY}T14:05"):
        r = nurse.post(f"{base}/injections", {"dose_ml": "0.4"})  # the 4th is not accepted today
    assert r.status_code == 422 and 'id="e-given_at"' in r.text and _rows(registry) == 3


def test_the_adrenaline_card_shows_the_dose_for_the_weight_or_why_not(
    nurse: WebClient, registry: Any, course: Any
) -> None:
    pid, cid = course
    text = html_text(nurse.get(_page(pid, cid)).text)
    assert "no weight recorded" in text
    rec.record_measurement(
        registry, "dr.a", pseudo_id="W-1", kind="weight_kg", value="25", measured_on="2026-03-09"
    )
    card = nurse.get(_page(pid, cid)).text.split('data-testid="adrenaline"', 1)[1].split("</section>", 1)[0]
    card = html_text(card)
    assert "0.25 mg IM" in card and "0.25 mL" in card and "1 mg/mL" in card and "25 kg" in card
    assert "Auto-injector: 0.15 mg" in card and "basis: anaphylaxis_adrenaline" in card


RUSH_WITH_OMALIZUMAB = {
    "product_regimen": "hdm-tyrosine-ultrarush|rush",
    "start": DAY,
    "start_time": "08:00",
    "omalizumab": "pre",
    "omalizumab_lead_weeks": "8",
    "age_years": "14",
    "weight_kg": "50",
    "total_ige_iu_ml": "300",
    "region": "us",
    "action": "save",
}


def test_the_due_omalizumab_dose_records_its_lot_expiry_and_observation(
    clinician: WebClient, nurse: WebClient, registry: Any
) -> None:
    pid = clinician.post("/api/patients", json={"pseudo_id": "OM-1", "birth_date": "2012-01-01"}).json()["id"]
    r = clinician.post(f"/patients/{pid}/courses", RUSH_WITH_OMALIZUMAB)
    assert r.status_code == 303, r.text[:600]
    cid = int(r.headers["location"].rsplit("/", 1)[1])
    page = nurse.get(_page(pid, cid)).text
    card = html_text(page.split('data-testid="omalizumab"', 1)[1].split("</section>", 1)[0])
    assert "dose 1" in card and "Observe 120 min after dose 1" in card and "ojtf-first-3-doses" in card
    action = f"/patients/{pid}/courses/{cid}/omalizumab"
    form = {
        "omalizumab_dose_mg": "300",
        "omalizumab_lot": "XOL-77",
        "omalizumab_expiry_on": "2026-03-01",
        "omalizumab_given_at": "2026-03-10T08:30",
        "omalizumab_observed_minutes": "120",
    }
    r = nurse.post(action, form)  # an expired syringe: refused next to its field
    assert r.status_code == 422 and 'id="e-omalizumab_expiry_on"' in r.text
    assert _rows(registry, m.OmalizumabAdministration) == 0
    r = nurse.post(action, {**form, "omalizumab_expiry_on": "2027-01-31"})
    assert r.status_code == 303, html_text(r.text)[:600]
    with registry.session() as s:
        o = s.scalars(select(m.OmalizumabAdministration)).one()
        assert (o.lot, o.expiry_on.isoformat(), o.observed_minutes) == ("XOL-77", "2027-01-31", 120)
    text = html_text(nurse.get(r.headers["location"]).text)
    assert "lot XOL-77" in text and "After omalizumab dose 1" in text and "Observe until 10:30" in text
