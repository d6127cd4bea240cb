"""Assessment form and API: risk tier, omalizumab advice, eligibility and label dose with their basis."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from web_helpers import WebClient, html_text

from immunoplan.registry import models as m
from immunoplan.services.assessment import assess_patient

GOOD = {
    "age_years": "14",
    "total_ige_iu_ml": "300",
    "sige_kua_l": "40",
    "allergen": "mite",
    "weight_kg": "50",
    "region": "us",
    "severity": "moderate",
    "asthma_control": "partly-controlled",
    "perennial_sensitization": "yes",
    "beta_blocker": "no",
    "ocs_dependent": "unknown",
}


def _patient(c: WebClient, code: str = "A-1") -> int:
    return c.post("/api/patients", json={"pseudo_id": code, "birth_date": "2012-01-01"}).json()["id"]


def test_assessment_form_shows_engine_result_with_basis(clinician: WebClient, registry: Any) -> None:
    pid = _patient(clinician)
    form = clinician.get(f"/patients/{pid}/assess")
    assert form.status_code == 200 and 'for="f-total_ige_iu_ml"' in form.text
    r = clinician.post(f"/patients/{pid}/assess", GOOD)
    assert r.status_code == 303
    page = clinician.get(r.headers["location"])
    text = html_text(page.text)
    expected = assess_patient(
        age_years=14,
        total_ige_iu_ml=300,
        sige_kua_l=40,
        weight_kg=50,
        severity="moderate",
        asthma_control="partly-controlled",
        perennial_sensitization=True,
        beta_blocker=False,
    ).to_dict()
    assert f"risk tier: {expected['risk']['risk_tier']}" in text
    assert expected["omalizumab_pretreatment"]["advice"] in text
    assert expected["omalizumab_pretreatment"]["source"] in text
    # label dose (US table, IgE 300 x 50 kg) with its table basis, and eligibility with per-criterion basis
    assert "300 mg every 4 weeks" in text and "omalizumab_us_asthma_12plus" in text
    assert "assess_biologics v" in text
    with registry.session() as s:
        a = s.scalars(select(m.RiskAssessment)).one()
        assert a.actor == "clinician1" and a.risk_tier == expected["risk"]["risk_tier"]
        assert a.basis and all("source" in b for b in a.basis)


def test_assessment_bad_input_next_to_field_and_nothing_saved(clinician: WebClient, registry: Any) -> None:
    pid = _patient(clinician)
    bad = {**GOOD, "total_ige_iu_ml": "lots", "sige_kua_l": "", "severity": "extreme"}
    r = clinician.post(f"/patients/{pid}/assess", bad)
    assert r.status_code == 422
    for name in ("total_ige_iu_ml", "sige_kua_l", "severity"):
        assert f'id="e-{name}"' in r.text, name
    assert 'value="lots"' in r.text  # what was typed is kept
    with registry.session() as s:
        assert s.scalar(select(func.count()).select_from(m.RiskAssessment)) == 0


def test_engine_range_error_lands_on_its_field(clinician: WebClient) -> None:
    pid = _patient(clinician)
    r = clinician.post(f"/patients/{pid}/assess", {**GOOD, "age_years": "-3"})
    assert r.status_code == 422 and 'id="e-age_years"' in r.text


def test_api_assessment_roundtrip_and_422(clinician: WebClient, registry: Any) -> None:
    pid = _patient(clinician)
    r = clinician.post(
        f"/api/patients/{pid}/assessments",
        json={"age_years": 30, "total_ige_iu_ml": 150, "sige_kua_l": 2, "weight_kg": 70},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["result"]["risk"]["risk_tier"] in ("low", "elevated", "high")
    assert body["result"]["omalizumab_label_dose"]["basis"]["status"] in (
        "VERIFIED",
        "SECONDARY",
        "COMPUTED",
        "UNVERIFIED",
    )
    got = clinician.get(f"/api/patients/{pid}/assessments/{body['id']}").json()
    assert got["result"]["risk"] == body["result"]["risk"]
    r = clinician.post(f"/api/patients/{pid}/assessments", json={"age_years": -1, "total_ige_iu_ml": 150})
    assert r.status_code == 422
    assert {d["field"] for d in r.json()["detail"]} >= {"age_years", "sige_kua_l"}
