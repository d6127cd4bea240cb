"""Visit: questionnaires and GLI spirometry scored by the engines, recorded in one transaction (POST -> 303 ->
the visit's page), shown in the trends; a same-day visit is a 409 on the page with its correction offered."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from web_helpers import WebClient, html_text

from immunoplan import clock
from immunoplan.clinical import questionnaires, spirometry
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import models as m

VISIT = {
    "code": "baseline",
    "visit_on": "2026-11-02",
    "act": "3,3,4,3,3",
    "height_cm": "160",
    "fev1_l": "2.5",
    "fvc_l": "3.2",
    "sex": "female",
    "equation": "gli-global-2022",
}


def _patient(c: WebClient) -> int:
    return c.post(
        "/api/patients", json={"pseudo_id": "V-1", "birth_date": "2012-01-01", "sex": "female"}
    ).json()["id"]


def _count(registry: Any, model: type) -> int:
    with registry.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_visit_scores_and_gli_results(clinician: WebClient, nurse: WebClient, registry: Any) -> None:
    pid = _patient(clinician)
    form = nurse.get(f"/patients/{pid}/visits/new")
    assert form.status_code == 200 and "5 items 1-5" in form.text  # ACT hint from reference data
    assert 'name="idempotency_key"' in form.text and 'name="feno_ppb"' in form.text
    r = nurse.post(
        f"/patients/{pid}/visits", {**VISIT, "feno_ppb": "40.2", "idempotency_key": "visit-form-0001"}
    )
    assert r.status_code == 303, r.text[:600]
    page = nurse.get(r.headers["location"])
    assert page.status_code == 200
    text = html_text(page.text)
    age = 14  # born 2012-01-01: 14 on the visit date 2026-11-02 (whatever today is)
    act = to_jsonable(questionnaires.score("act", [3, 3, 4, 3, 3], age=age))
    gli = to_jsonable(
        spirometry.spirometry(
            sex="female", age=age, height_cm="160", fev1_l="2.5", fvc_l="3.2", fev1_fvc="0.78125"
        )
    )
    assert f"ACT: {act['score']}" in text and act["category"] in text
    assert str(gli["fev1"]["z"]) in text and str(gli["fev1"]["percent_predicted"]) in text
    assert str(gli["fev1"]["lln"]) in text  # the result as computed (stored with the idempotency key)
    with registry.session() as s:
        kinds = {x.kind: x for x in s.scalars(select(m.Measurement))}
        assert kinds["fev1_l"].reference_equation == "gli-global-2022"
        assert float(kinds["fev1_l"].z_score) == gli["fev1"]["z"]
        assert kinds["feno_ppb"].value == 40.2
        assert s.scalars(select(m.Questionnaire)).one().score == act["score"]
    page = clinician.get(f"/patients/{pid}")
    assert 'data-chart="trend-fev1"' in page.text and 'data-chart="trend-control"' in page.text


def test_reload_after_post_makes_no_second_row(nurse: WebClient, clinician: WebClient, registry: Any) -> None:
    pid = _patient(clinician)
    body = {**VISIT, "idempotency_key": "visit-form-0002"}
    first = nurse.post(f"/patients/{pid}/visits", body)
    again = nurse.post(f"/patients/{pid}/visits", body)  # a double submit / re-post of the same form
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    assert nurse.get(first.headers["location"]).status_code == 200  # reloading the result page is a GET
    assert _count(registry, m.Visit) == 1 and _count(registry, m.Questionnaire) == 1


def test_visit_bad_input_next_to_field_nothing_saved(
    nurse: WebClient, clinician: WebClient, registry: Any
) -> None:
    pid = _patient(clinician)
    r = nurse.post(
        f"/patients/{pid}/visits",
        {"code": "baseline", "visit_on": "2026-11-02", "act": "3,3,9,3,3", "acq5": "1,1"},
    )
    assert r.status_code == 422
    assert 'id="e-act"' in r.text and 'id="e-acq5"' in r.text  # every engine error at once
    r = nurse.post(f"/patients/{pid}/visits", {"code": "baseline", "visit_on": "2026-11-02", "acq5": "x"})
    assert r.status_code == 422 and 'id="e-acq5"' in r.text
    r = nurse.post(f"/patients/{pid}/visits", {"code": "baseline", "visit_on": "2026-11-02", "fev1_l": "2.5"})
    assert r.status_code == 422 and 'id="e-height_cm"' in r.text  # sex is prefilled from the patient
    r = nurse.post(
        f"/patients/{pid}/visits", {"code": "baseline", "visit_on": "2026-11-02", "feno_ppb": "5000"}
    )
    assert r.status_code == 422 and 'id="e-feno_ppb"' in r.text
    r = nurse.post(f"/patients/{pid}/visits", {"code": "baseline", "visit_on": "2026-11-02"})
    assert r.status_code == 422 and "at least one questionnaire" in r.text
    assert _count(registry, m.Visit) == 0


def test_same_day_visit_is_409_with_the_entry_kept_and_its_correction_works(
    nurse: WebClient, clinician: WebClient, registry: Any
) -> None:
    pid = _patient(clinician)
    first = nurse.post(f"/patients/{pid}/visits", {**VISIT, "idempotency_key": "visit-form-0003"})
    vid = int(first.headers["location"].split("/")[-1].split("?")[0])
    again = {**VISIT, "act": "5,5,5,5,5", "idempotency_key": "visit-form-0004"}
    r = nurse.post(f"/patients/{pid}/visits", again)
    assert r.status_code == 409
    assert f"visit {vid}" in html_text(r.text)
    assert 'value="5,5,5,5,5"' in r.text  # the entry is not lost
    assert f'href="/corrections/visit/{vid}' in r.text  # its correction form
    assert f'action="/patients/{pid}/visits/{vid}/amend"' in r.text
    hidden = dict(
        re.findall(r'<input type="hidden" name="([a-z0-9_]+)" value="([^"]*)">', r.text.split("/amend")[1])
    )
    assert hidden["act"] == "5,5,5,5,5"
    no_reason = nurse.post(
        f"/patients/{pid}/visits/{vid}/amend", {k: v for k, v in hidden.items() if k != "csrf_token"}
    )
    assert no_reason.status_code == 422 and 'id="e-reason"' in no_reason.text
    amended = nurse.post(
        f"/patients/{pid}/visits/{vid}/amend",
        {**{k: v for k, v in hidden.items() if k != "csrf_token"}, "reason": "ACT re-entered after checking"},
    )
    assert amended.status_code == 303
    page = html_text(nurse.get(amended.headers["location"]).text)
    assert "ACT: 25" in page and "corrected by nurse1" in page and "ACT re-entered after checking" in page
    assert _count(registry, m.Visit) == 1
    with registry.session() as s:
        assert s.scalars(select(m.Questionnaire.score)).one() == 25


def test_api_visit(nurse: WebClient, clinician: WebClient, registry: Any) -> None:
    pid = _patient(clinician)
    body = {"code": "week12", "visit_on": "2026-11-02", "acq5": [1, 1, 2, 1, 0]}
    r = nurse.post(f"/api/patients/{pid}/visits", json=body, headers={"Idempotency-Key": "api-visit-0001"})
    assert r.status_code == 201, r.text
    assert r.json()["questionnaires"]["ACQ-5"]["score"] == 1
    replay = nurse.post(
        f"/api/patients/{pid}/visits", json=body, headers={"Idempotency-Key": "api-visit-0001"}
    )
    assert replay.json()["replayed"] is True and replay.json()["id"] == r.json()["id"]
    r = nurse.post(f"/api/patients/{pid}/visits", json={**body, "acq5": [9]})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "acq5"
    r = nurse.post(f"/api/patients/{pid}/visits", json=body)
    assert r.status_code == 409 and r.json()["detail"][0]["record"].startswith("visit ")
    assert _count(registry, m.Visit) == 1


def test_visit_page_is_clinic_dated_and_uses_no_real_clock(nurse: WebClient, clinician: WebClient) -> None:
    pid = _patient(clinician)
    with clock.frozen("2026-11-20T10:00"):
        form = nurse.get(f"/patients/{pid}/visits/new")
    assert 'value="2026-11-20"' in form.text  # the clinic's today prefills the date
