"""Course planning (SCIT + omalizumab on one calendar) and injection day (dose due with the rule that fired,
record injection, observation timer, reaction with guided grading, next dose updates)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from web_helpers import WebClient, html_text

from immunoplan import clock
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import models as m
from immunoplan.services.protocols import grade_reaction, plan_scit_schedule, scit_next_dose

RUSH = {
    "product_regimen": "hdm-tyrosine-ultrarush|rush",
    "start": clock.today().isoformat(),
    "start_time": "08:00",
    "omalizumab": "pre",
    "omalizumab_lead_weeks": "8",
    "age_years": "14",
    "weight_kg": "50",
    "total_ige_iu_ml": "300",
    "region": "us",
}


def _patient(c: WebClient) -> int:
    return c.post("/api/patients", json={"pseudo_id": "C-1", "birth_date": "2012-01-01"}).json()["id"]


def _course(c: WebClient, **over: str) -> tuple[int, int]:
    pid = _patient(c)
    r = c.post(f"/patients/{pid}/courses", {**RUSH, **over, "action": "save"})
    assert r.status_code == 303, r.text[:800]
    return pid, int(r.headers["location"].rsplit("/", 1)[1])


def test_rush_with_omalizumab_pretreatment_on_one_calendar(clinician: WebClient) -> None:
    pid, cid = _course(clinician)
    text = html_text(clinician.get(f"/patients/{pid}/courses/{cid}").text)
    expected = to_jsonable(
        plan_scit_schedule(
            product="hdm-tyrosine-ultrarush",
            regimen="rush",
            start=RUSH["start"],
            start_time="08:00",
            omalizumab="pre",
            omalizumab_lead_weeks=8,
            age_years=14,
            weight_kg=50,
            total_ige_iu_ml=300,
        )
    )
    om = expected["omalizumab"]
    assert f"{om['label_dose']['dose_mg']} mg every {om['label_dose']['interval_weeks']} weeks" in text
    for a in om["administrations"]:  # every omalizumab date and the SCIT day are on the one calendar
        assert a["date"] in text
    assert "14:00" in text  # last ultra-rush injection clock time
    assert "One calendar" in text


def test_preview_stores_nothing_and_unverified_regimen_cannot_be_saved(
    clinician: WebClient, registry: Any
) -> None:
    pid = _patient(clinician)
    r = clinician.post(
        f"/patients/{pid}/courses", {**RUSH, "action": "preview"}, headers={"HX-Request": "true"}
    )
    assert r.status_code == 200 and "<html" not in r.text and "One calendar" in r.text
    bad = {**RUSH, "product_regimen": "alutard-sq-hdm|rush", "omalizumab": "none", "action": "save"}
    r = clinician.post(f"/patients/{pid}/courses", bad)
    assert r.status_code == 422 and 'id="e-product_regimen"' in r.text
    with registry.session() as s:
        assert s.scalar(select(func.count()).select_from(m.Course)) == 0


def test_course_bad_input_next_to_fields(clinician: WebClient, registry: Any) -> None:
    pid = _patient(clinician)
    r = clinician.post(f"/patients/{pid}/courses", {**RUSH, "start": "tomorrow", "action": "save"})
    assert r.status_code == 422 and 'id="e-start"' in r.text
    r = clinician.post(f"/patients/{pid}/courses", {**RUSH, "omalizumab_lead_weeks": "", "action": "save"})
    assert r.status_code == 422 and 'id="e-omalizumab_lead_weeks"' in r.text
    with registry.session() as s:
        assert s.scalar(select(func.count()).select_from(m.Course)) == 0


def test_injection_day_reaction_changes_next_dose(
    clinician: WebClient, nurse: WebClient, registry: Any
) -> None:
    pid, cid = _course(clinician)
    day = f"/patients/{pid}/courses/{cid}/injection-day"
    page = html_text(nurse.get(day).text)
    assert "schedule-first-injection" in page and "0.1 mL of maintenance concentration" in page
    form = {"dose_ml": "0.1", "vial": "1", "site": "left arm"}
    r = nurse.post(f"/patients/{pid}/courses/{cid}/injections", form)
    assert r.status_code == 303  # POST/redirect/GET
    r = nurse.get(r.headers["location"])
    today = clock.today().isoformat()
    hist: dict[str, Any] = {
        "product": "hdm-tyrosine-ultrarush",
        "regimen": "rush",
        "injections": [{"date": today, "dose": "0.1"}],
    }
    before = to_jsonable(scit_next_dose(hist, today))
    text = html_text(r.text)
    assert f"{before['dose']['dose']} {before['dose']['unit']}" in text and before["rule"]["id"] in text
    assert "data-timer-start" in r.text and "Observe until" in text
    # guided grading: urticaria + wheeze responding to a bronchodilator -> WAO 2010 grade 2
    reaction = {
        "kind": "systemic",
        "scale": "wao2010",
        "symptoms": ["urticaria", "wheeze"],
        "bronchodilator_response": "responds",
        "onset_minutes": "12",
    }
    g = nurse.post(f"/patients/{pid}/courses/{cid}/reactions/grade", reaction, headers={"HX-Request": "true"})
    expected = to_jsonable(
        grade_reaction("wao2010", symptoms=["urticaria", "wheeze"], bronchodilator_response="responds")
    )
    assert expected["grade"] == "2"
    assert expected["report"] in html_text(g.text)
    with registry.session() as s:
        assert s.scalar(select(func.count()).select_from(m.Reaction)) == 0  # grading saves nothing
    clock.set_now(clock.now() + timedelta(minutes=20))  # the reaction is recorded after its onset
    r = nurse.post(f"/patients/{pid}/courses/{cid}/reactions", reaction)
    assert r.status_code == 303, r.text[:500]
    r = nurse.get(r.headers["location"])
    hist["injections"][0]["systemic_reaction"] = {"scale": "wao2010", "grade": "2"}
    after = to_jsonable(scit_next_dose(hist, today))
    assert after["dose"]["dose"] != before["dose"]["dose"]
    text = html_text(r.text)
    assert f"{after['dose']['dose']} {after['dose']['unit']}" in text and after["rule"]["id"] in text
    with registry.session() as s:
        rx = s.scalars(select(m.Reaction)).one()
        assert (rx.kind, rx.grade, rx.scale, rx.minutes_after_dose) == ("systemic", "2", "wao2010", 12)
        inj = s.scalars(select(m.Injection)).one()
        assert inj.given_by == "nurse1" and rx.injection_id == inj.id


def test_reaction_bad_input_saves_nothing(clinician: WebClient, nurse: WebClient, registry: Any) -> None:
    pid, cid = _course(clinician)
    base = f"/patients/{pid}/courses/{cid}"
    r = nurse.post(f"{base}/reactions", {"kind": "systemic", "scale": "wao2010", "symptoms": ["urticaria"]})
    assert r.status_code == 422 and "record the injection first" in r.text
    nurse.post(f"{base}/injections", {"dose_ml": "0.1"})
    r = nurse.post(f"{base}/reactions", {"kind": "systemic", "scale": "wao2010"})
    assert r.status_code == 422 and 'id="e-symptoms"' in r.text
    r = nurse.post(f"{base}/reactions", {"kind": "systemic", "scale": "nope", "symptoms": ["urticaria"]})
    assert r.status_code == 422
    r = nurse.post(f"{base}/injections", {"dose_ml": "lots"})
    assert r.status_code == 422 and 'id="e-dose_ml"' in r.text
    with registry.session() as s:
        assert s.scalar(select(func.count()).select_from(m.Reaction)) == 0
        assert s.scalar(select(func.count()).select_from(m.Injection)) == 1


def test_api_course_injection_reaction(clinician: WebClient, nurse: WebClient) -> None:
    pid = _patient(clinician)
    body = {
        "product": "alutard-sq-hdm",
        "regimen": "cluster",
        "start": clock.today().isoformat(),
        "maintenance_interval_weeks": 6,
        "omalizumab": "concurrent",
        "age_years": 30,
        "weight_kg": 70,
        "total_ige_iu_ml": 150,
    }
    r = clinician.post(f"/api/patients/{pid}/courses", json=body)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert r.json()["calendar"][0]["omalizumab"] is not None  # concurrent: same day as visit 1
    assert clinician.post(f"/api/patients/{pid}/courses", json={**body, "regimen": "x"}).status_code == 422
    due = nurse.get(f"/api/patients/{pid}/courses/{cid}/next-dose").json()
    assert due["dose"]["dose"] == 10 and due["rule"]["id"] == "schedule-first-injection"
    r = nurse.post(f"/api/patients/{pid}/courses/{cid}/injections", json={"dose_ml": 0.1, "vial": "1"})
    assert r.status_code == 201 and r.json()["next"]["dose"]["dose"] == 100
    reaction = {
        "kind": "systemic",
        "symptoms": ["urticaria", "wheeze"],
        "bronchodilator_response": "responds",
    }
    r = nurse.post(f"/api/patients/{pid}/courses/{cid}/reactions", json=reaction)
    assert r.status_code == 201 and r.json()["grading"]["grade"] == "2"
    assert r.json()["next"]["rule"]["id"] == "lsu-systemic-tenth"
    r = nurse.post(f"/api/patients/{pid}/courses/{cid}/reactions", json={"kind": "local"})
    assert r.status_code == 422


def test_record_omalizumab_dose_on_injection_day(
    clinician: WebClient, nurse: WebClient, registry: Any
) -> None:
    pid, cid = _course(clinician)
    page = nurse.get(f"/patients/{pid}/courses/{cid}/injection-day")
    assert "Label dose: " in html_text(page.text) and "300 mg every 4 weeks" in html_text(page.text)
    r = nurse.post(f"/patients/{pid}/courses/{cid}/omalizumab", {"omalizumab_dose_mg": "300"})
    assert r.status_code == 303  # POST/redirect/GET
    text = html_text(nurse.get(r.headers["location"]).text)
    assert "Omalizumab dose recorded" in text and "(300 mg)" in text
    r = nurse.post(f"/patients/{pid}/courses/{cid}/omalizumab", {"omalizumab_dose_mg": "-1"})
    assert r.status_code == 422 and 'id="e-omalizumab_dose_mg"' in r.text
    with registry.session() as s:
        o = s.scalars(select(m.OmalizumabAdministration)).one()
        assert (
            o.dose_mg == 300 and o.interval_weeks == 4 and o.basis[0]["id"] == "omalizumab_us_asthma_12plus"
        )
    assert "Omalizumab 300 mg" in html_text(clinician.get(f"/patients/{pid}").text)  # on the timeline


def test_injection_day_for_a_course_stored_without_a_web_plan(nurse: WebClient, registry: Any) -> None:
    """Imported/demo courses store their catalogue ids (migration 0003 converted the old rows that named the
    schedule in words): the missed-dose rules still apply."""
    from datetime import timedelta

    last = clock.now().replace(microsecond=0) - timedelta(days=24)
    with registry.transaction(actor="test") as s:
        p = m.Patient(pseudo_id="IMP-1", sex="male")
        s.add(p)
        s.flush()
        c = m.Course(
            patient_id=p.id,
            kind="SCIT",
            status="active",
            product="Alutard SQ house dust mite",
            regimen="weekly build-up (15 injections)",
            product_id="alutard-sq-hdm",
            regimen_id="conventional",
            dose_unit="SQ-U",
        )
        s.add(c)
        s.flush()
        for i, dose in enumerate((20, 40, 80)):
            s.add(
                m.Injection(
                    course_id=c.id,
                    patient_id=p.id,
                    sequence=i + 1,
                    dose=dose,
                    dose_unit="SQ-U",
                    given_at=last - timedelta(days=7 * (2 - i)),
                )
            )
        pid, cid = p.id, c.id
    history = {
        "product": "alutard-sq-hdm",
        "regimen": "conventional",
        "injections": [
            {"date": clock.local_date(last - timedelta(days=7 * (2 - i))).isoformat(), "dose": str(d)}
            for i, d in enumerate((20, 40, 80))
        ],
    }
    expected = to_jsonable(scit_next_dose(history, clock.today()))
    text = html_text(nurse.get(f"/patients/{pid}/courses/{cid}/injection-day").text)
    assert expected["rule"]["id"] in text and f"{expected['dose']['dose']} SQ-U" in text


def test_unverified_omalizumab_table_needs_a_recorded_override(clinician: WebClient) -> None:
    pid = _patient(clinician)
    base = {
        **RUSH,
        "region": "eu",
        "age_years": "30",
        "weight_kg": "70",
        "total_ige_iu_ml": "300",
        "action": "preview",
    }
    text = html_text(clinician.post(f"/patients/{pid}/courses", base).text)
    assert "unverified-table" in text and "Omalizumab not scheduled" in text
    text = html_text(
        clinician.post(
            f"/patients/{pid}/courses", {**base, "omalizumab_override_reason": "checked against the SmPC"}
        ).text
    )
    assert "450 mg every 4 weeks" in text and "UNVERIFIED cell shown under override" in text


# ------------------------------------------------------------------ course planning: POST/redirect/GET, keys


def _key(html: str) -> str:
    found = re.search(r'name="idempotency_key" value="([^"]+)"', html)
    assert found, "the form carries an idempotency key"
    return found.group(1)


def _count(registry: Any, model: Any) -> int:
    with registry.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)))


def test_double_submit_and_reload_plan_one_course(clinician: WebClient, registry: Any) -> None:
    pid = _patient(clinician)
    key = _key(clinician.get(f"/patients/{pid}/courses/new").text)
    form = {**RUSH, "action": "save", "idempotency_key": key}
    first = clinician.post(f"/patients/{pid}/courses", form)
    second = clinician.post(f"/patients/{pid}/courses", form)  # double click / the browser re-sends
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    page = clinician.get(first.headers["location"])  # the reload after saving is this GET
    assert page.status_code == 200 and "One calendar" in page.text
    assert _count(registry, m.Course) == 1
    with registry.session() as s:
        c = s.scalars(select(m.Course)).one()
        assert (c.product_id, c.regimen_id, c.kind, c.start_time) == (
            "hdm-tyrosine-ultrarush",
            "rush",
            "RIT",
            "08:00",
        )
        assert c.omalizumab_lead_weeks == 8 and "|" not in (c.regimen or "")


def test_course_page_of_a_desensitization_course(clinician: WebClient, registry: Any) -> None:
    """Formerly a 500 ('int' object has no attribute 'id'): the session ids are listed as links."""
    pid = _patient(clinician)
    with registry.transaction(actor="test") as s:
        c = m.Course(patient_id=pid, kind="drug_desensitization", drug="carboplatin", status="active")
        s.add(c)
        s.flush()
        s.add(
            m.DesensitizationSession(
                course_id=c.id,
                patient_id=pid,
                session_on=clock.today(),
                drug="carboplatin",
                target_dose_mg=500,
            )
        )
        s.flush()
        cid = c.id
    r = clinician.get(f"/patients/{pid}/courses/{cid}")
    assert r.status_code == 200 and 'href="/desensitization/1"' in r.text
    assert clinician.get(f"/patients/{pid + 1}/courses/{cid}").status_code == 404


def test_omalizumab_alone_course_and_its_dose_form(
    clinician: WebClient, nurse: WebClient, registry: Any
) -> None:
    pid = _patient(clinician)
    page = clinician.get(f"/patients/{pid}/courses/new?kind=omalizumab")
    plan = {"kind": "omalizumab", "start": clock.today().isoformat(), "age_years": "14", "weight_kg": "50"}
    plan |= {"total_ige_iu_ml": "300", "region": "us", "indication": "asthma", "action": "save"}
    r = clinician.post(f"/patients/{pid}/courses", {**plan, "idempotency_key": _key(page.text)})
    assert r.status_code == 303, r.text[:600]
    course_url = r.headers["location"]
    cid = int(course_url.rsplit("/", 1)[1])
    text = html_text(clinician.get(course_url).text)
    assert "omalizumab course" in text and "label dose 300 mg every 4 weeks" in text
    day = nurse.get(course_url).text
    form = {"dose_mg": "300", "given_at": f"{clock.today().isoformat()}T09:45", "idempotency_key": _key(day)}
    first = nurse.post(f"{course_url}/omalizumab-doses", form)
    again = nurse.post(f"{course_url}/omalizumab-doses", form)  # double submit: the same key
    assert first.status_code == again.status_code == 303
    shown = nurse.get(first.headers["location"])
    assert "Omalizumab dose recorded" in shown.text and "09:45" in html_text(shown.text)
    assert clock.zone_name() in shown.text  # times are printed with the clinic zone
    same_act = nurse.post(f"{course_url}/omalizumab-doses", {**form, "idempotency_key": _key(shown.text)})
    assert same_act.status_code == 409 and "already recorded" in same_act.text  # another key, the same act
    bad = nurse.post(f"{course_url}/omalizumab-doses", {"dose_mg": "-1", "idempotency_key": _key(shown.text)})
    assert bad.status_code == 422 and 'id="e-dose_mg"' in bad.text
    with registry.session() as s:
        o = s.scalars(select(m.OmalizumabAdministration)).one()
    assert (o.course_id, o.dose_mg, o.interval_weeks) == (cid, 300, 4)


def test_omalizumab_dose_on_a_course_planned_without_it_is_refused(
    clinician: WebClient, nurse: WebClient
) -> None:
    pid, cid = _course(clinician, omalizumab="none")
    url = f"/patients/{pid}/courses/{cid}/omalizumab-doses"
    r = nurse.post(url, {"dose_mg": "300"})
    assert r.status_code == 422 and "not planned with omalizumab" in r.text


def test_api_course_preview_conflict_and_unknown_patient(clinician: WebClient, registry: Any) -> None:
    pid = _patient(clinician)
    body = {"product": "alutard-sq-hdm", "regimen": "cluster", "start": clock.today().isoformat()}
    r = clinician.post(f"/api/patients/{pid}/courses/preview", json=body)
    assert r.status_code == 200 and r.json()["kind"] == "schedule" and _count(registry, m.Course) == 0
    r = clinician.post(f"/api/patients/{pid}/courses", json={**body, "regimen": "rush"})
    assert r.status_code == 422 and "UNVERIFIED" in r.json()["detail"][0]["message"]
    headers = {"Idempotency-Key": "course-api-key-1"}
    one = clinician.post(f"/api/patients/{pid}/courses", json=body, headers=headers)
    two = clinician.post(f"/api/patients/{pid}/courses", json=body, headers=headers)
    assert one.status_code == two.status_code == 201 and one.json()["id"] == two.json()["id"]
    other = clinician.post(f"/api/patients/{pid}", json={})  # not a route: 405, never 500
    assert other.status_code < 500
    used = clinician.post(
        "/api/patients", json={"pseudo_id": "X-2"}, headers={"Idempotency-Key": "course-api-key-1"}
    )
    assert used.status_code == 409  # a key already used for another use case
    assert clinician.post("/api/patients/9999/courses", json=body).status_code == 404
    got = clinician.get(f"/api/patients/{pid}/courses/{one.json()['id']}").json()
    assert got["course"]["product_id"] == "alutard-sq-hdm" and got["course"]["regimen_id"] == "cluster"
    assert _count(registry, m.Course) == 1
