"""Visit: questionnaires and GLI spirometry scored by the engines, recorded, and shown in the trends."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select
from web_helpers import WebClient, html_text

from immunoplan.clinical import questionnaires, spirometry
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import models as m
from immunoplan.web.queries import age_years


def _patient(c: WebClient) -> int:
    return c.post(
        "/api/patients", json={"pseudo_id": "V-1", "birth_date": "2012-01-01", "sex": "female"}
    ).json()["id"]


def test_visit_scores_and_gli_results(clinician: WebClient, nurse: WebClient, registry: Any) -> None:
    pid = _patient(clinician)
    form = nurse.get(f"/patients/{pid}/visits/new")
    assert form.status_code == 200 and "5 items 1-5" in form.text  # ACT hint from reference data
    r = nurse.post(
        f"/patients/{pid}/visits",
        {
            "code": "baseline",
            "visit_on": "2026-11-02",
            "q_act": "3,3,4,3,3",
            "height_cm": "160",
            "fev1_l": "2.5",
            "fvc_l": "3.2",
            "sex": "female",
            "equation": "gli-global-2022",
        },
    )
    assert r.status_code == 200, r.text[:600]
    text = html_text(r.text)
    act = to_jsonable(questionnaires.score("act", [3, 3, 4, 3, 3], age=14))
    with registry.session() as s:
        age = age_years(s.get(m.Patient, pid), date.today())
    gli = to_jsonable(
        spirometry.spirometry(sex="female", age=age, height_cm="160", fev1_l="2.5", fvc_l="3.2")
    )
    assert f"ACT: {act['score']}" in text and act["category"] in text
    assert str(gli["fev1"]["z"]) in text and str(gli["fev1"]["percent_predicted"]) in text
    with registry.session() as s:
        kinds = {x.kind: x for x in s.scalars(select(m.Measurement))}
        assert kinds["fev1_l"].reference_equation == "gli-global-2022"
        assert float(kinds["fev1_l"].z_score) == gli["fev1"]["z"]
        assert s.scalars(select(m.Questionnaire)).one().score == act["score"]
    page = clinician.get(f"/patients/{pid}")
    assert 'data-chart="trend-fev1"' in page.text and 'data-chart="trend-control"' in page.text


def test_visit_bad_input_next_to_field_nothing_saved(
    nurse: WebClient, clinician: WebClient, registry: Any
) -> None:
    pid = _patient(clinician)
    r = nurse.post(
        f"/patients/{pid}/visits",
        {"code": "baseline", "visit_on": "2026-11-02", "q_act": "3,3,9,3,3", "q_acq_5": "x"},
    )
    assert r.status_code == 422
    assert 'id="e-q_act"' in r.text and 'id="e-q_acq_5"' in r.text
    r = nurse.post(f"/patients/{pid}/visits", {"code": "baseline", "visit_on": "2026-11-02", "fev1_l": "2.5"})
    assert r.status_code == 422 and 'id="e-height_cm"' in r.text  # sex is prefilled from the patient
    r = nurse.post(f"/patients/{pid}/visits", {"code": "baseline", "visit_on": "2026-11-02"})
    assert r.status_code == 422 and "at least one questionnaire" in r.text
    with registry.session() as s:
        assert s.scalar(select(func.count()).select_from(m.Visit)) == 0


def test_api_visit(nurse: WebClient, clinician: WebClient) -> None:
    pid = _patient(clinician)
    body = {"code": "week12", "visit_on": "2026-11-02", "questionnaires": {"ACQ-5": [1, 1, 2, 1, 0]}}
    r = nurse.post(f"/api/patients/{pid}/visits", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["questionnaires"]["ACQ-5"]["score"] == 1
    r = nurse.post(f"/api/patients/{pid}/visits", json={**body, "questionnaires": {"ACQ-5": [9]}})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "q_acq_5"
