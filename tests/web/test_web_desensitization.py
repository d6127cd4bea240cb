"""Desensitization: plan (preview, create), clock times, mark given, breakthrough -> re-plan, sheets."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from web_helpers import WebClient, html_text

from immunoplan.jsonable import to_jsonable
from immunoplan.registry import models as m
from immunoplan.services.protocols import plan_desensitization, replan_desensitization

PLAN = {
    "drug": "carboplatin",
    "dose_mg": "500",
    "bag_volume_ml": "250",
    "final_rate_ml_h": "80",
    "bags": "3",
    "start": "09:00",
    "stock_mg_ml": "10",
    "session_on": "2026-11-21",
}


def _patient(c: WebClient) -> int:
    return c.post("/api/patients", json={"pseudo_id": "D-1"}).json()["id"]


def _session(c: WebClient, **over: str) -> tuple[int, int]:
    pid = _patient(c)
    r = c.post(f"/patients/{pid}/desensitization", {**PLAN, **over, "action": "start"})
    assert r.status_code == 303, r.text[:500]
    return pid, int(r.headers["location"].rsplit("/", 1)[1])


def test_preview_shows_engine_steps_with_clock_times(clinician: WebClient, registry: Any) -> None:
    pid = _patient(clinician)
    r = clinician.post(
        f"/patients/{pid}/desensitization", {**PLAN, "action": "preview"}, headers={"HX-Request": "true"}
    )
    assert r.status_code == 200 and "<html" not in r.text
    expected = to_jsonable(
        plan_desensitization(
            drug="carboplatin",
            dose_mg="500",
            bag_volume_ml="250",
            final_rate_ml_h="80",
            bags=3,
            start="09:00",
            stock_mg_ml="10",
        )
    )
    text = html_text(r.text)
    last = expected["steps"][-1]
    assert f"{last['start_clock']}–{last['end_clock']}" in text
    assert expected["scheme"] in text
    with registry.session() as s:  # a preview stores nothing
        assert s.scalar(select(func.count()).select_from(m.DesensitizationSession)) == 0


def test_bad_plan_input_next_to_field_nothing_saved(clinician: WebClient, registry: Any) -> None:
    pid = _patient(clinician)
    r = clinician.post(
        f"/patients/{pid}/desensitization",
        {**PLAN, "dose_mg": "abc", "final_rate_ml_h": "", "action": "start"},
    )
    assert r.status_code == 422
    assert 'id="e-dose_mg"' in r.text and 'id="e-final_rate_ml_h"' in r.text
    r = clinician.post(f"/patients/{pid}/desensitization", {**PLAN, "dose_mg": "-5", "action": "start"})
    assert r.status_code == 422 and 'id="e-dose_mg"' in r.text  # the engine's range check, next to its field
    with registry.session() as s:
        assert s.scalar(select(func.count()).select_from(m.Course)) == 0


def test_session_mark_given_then_breakthrough_replans(
    clinician: WebClient, nurse: WebClient, registry: Any
) -> None:
    _, sid = _session(clinician)
    page = nurse.get(f"/desensitization/{sid}")
    assert page.status_code == 200 and "Mark given" in page.text
    for step in (1, 2):
        r = nurse.post(f"/desensitization/{sid}/steps/{step}", headers={"HX-Request": "true"})
        assert r.status_code == 200 and 'id="steps"' in r.text and "<html" not in r.text
    r = nurse.post(
        f"/desensitization/{sid}/reactions", {"step_no": "3", "severity": "mild", "symptoms": "flushing"}
    )
    assert r.status_code == 200
    base = plan_desensitization(
        drug="carboplatin",
        dose_mg="500",
        bag_volume_ml="250",
        final_rate_ml_h="80",
        bags=3,
        start="09:00",
        stock_mg_ml="10",
    )
    expected = to_jsonable(
        replan_desensitization(base, reaction_step=3, severity="mild", symptoms=("flushing",))
    )
    text = html_text(r.text)
    assert "Re-planned after a mild reaction at step 3" in text
    if expected["resumption"]:
        assert f"Resume at step {expected['resumption']['restart_at_step']}" in text
    with registry.session() as s:
        steps = s.scalars(select(m.DesensitizationStep).order_by(m.DesensitizationStep.step_no)).all()
        assert [(x.step_no, x.status) for x in steps] == [(1, "given"), (2, "given"), (3, "stopped")]
        reaction = s.scalars(select(m.Reaction)).one()
        assert (reaction.kind, reaction.grade, reaction.scale) == ("systemic", "mild", "Brown")
        assert reaction.desensitization_step_id == steps[2].id
        actors = set(
            s.scalars(
                select(m.AuditEntry.actor).where(
                    m.AuditEntry.table_name.in_(("desensitization_steps", "reactions"))
                )
            )
        )
        assert actors == {"nurse1"}


def test_bad_breakthrough_input_is_422_and_nothing_saved(clinician: WebClient, registry: Any) -> None:
    _, sid = _session(clinician)
    r = clinician.post(f"/desensitization/{sid}/reactions", {"step_no": "99", "severity": "mild"})
    assert r.status_code == 422 and "no step 99" in r.text
    r = clinician.post(f"/desensitization/{sid}/reactions", {"step_no": "2", "severity": "awful"})
    assert r.status_code == 422
    with registry.session() as s:
        assert s.scalar(select(func.count()).select_from(m.Reaction)) == 0
        assert s.scalar(select(func.count()).select_from(m.DesensitizationStep)) == 0


def test_unverified_scheme_cannot_be_given_without_override(clinician: WebClient, registry: Any) -> None:
    _, sid = _session(clinician, bags="4")
    page = clinician.get(f"/desensitization/{sid}")
    assert "not for administration" in page.text and "Mark given" not in page.text
    r = clinician.post(f"/desensitization/{sid}/steps/1")
    assert r.status_code == 422 and "UNVERIFIED" in r.text
    with registry.session() as s:
        assert s.scalar(select(func.count()).select_from(m.DesensitizationStep)) == 0


def test_printable_sheets(as_role: Any, clinician: WebClient) -> None:
    _, sid = _session(clinician)
    pharmacist = as_role("pharmacist")
    for sheet in ("rdd", "rdd-pharmacy", "rdd-nursing"):
        r = pharmacist.get(f"/desensitization/{sid}/sheets/{sheet}")
        assert r.status_code == 200 and "carboplatin" in r.text
    assert pharmacist.get(f"/desensitization/{sid}/sheets/nope").status_code == 404


def test_api_plan_and_session(clinician: WebClient) -> None:
    body = {"drug": "carboplatin", "dose_mg": 500, "bag_volume_ml": 250, "final_rate_ml_h": 80, "bags": 3}
    r = clinician.post("/api/desensitization/plan", json=body)
    assert r.status_code == 200 and len(r.json()["steps"]) == 12
    assert clinician.post("/api/desensitization/plan", json={**body, "bags": 9}).status_code == 422
    pid = _patient(clinician)
    r = clinician.post(f"/api/patients/{pid}/desensitization", json={**body, "session_on": "2026-11-21"})
    assert r.status_code == 201
    sid = r.json()["id"]
    assert clinician.post(f"/api/desensitization/{sid}/steps", json={"step_no": 1}).status_code == 200
    r = clinician.post(f"/api/desensitization/{sid}/reactions", json={"step_no": 2, "severity": "moderate"})
    assert r.status_code == 200 and r.json()["replans"][0]["reaction_step"] == 2


def test_absurd_rate_is_refused_before_the_engine_runs(clinician: WebClient) -> None:
    body = {"drug": "x", "dose_mg": 500, "bag_volume_ml": 250, "final_rate_ml_h": 1e-6, "bags": 3}
    r = clinician.post("/api/desensitization/plan", json=body)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "final_rate_ml_h"
    r = clinician.post("/api/desensitization/plan", json={**body, "final_rate_ml_h": 80, "step_minutes": 1e9})
    assert r.status_code == 422


@pytest.mark.slow
def test_nursing_sheet_as_pdf(clinician: WebClient) -> None:
    _, sid = _session(clinician)
    r = clinician.get(f"/desensitization/{sid}/sheets/rdd-nursing?format=pdf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF")


def test_steps_are_given_in_order_and_stop_after_a_reaction(clinician: WebClient, nurse: WebClient) -> None:
    _, sid = _session(clinician)
    page = nurse.get(f"/desensitization/{sid}").text
    assert page.count("Mark given") == 1 and "Mark step 1 given" in page  # only the next step
    r = nurse.post(f"/desensitization/{sid}/steps/3")
    assert r.status_code == 422 and "the next step is 1" in r.text
    assert nurse.post(f"/desensitization/{sid}/steps/1").status_code == 200
    nurse.post(f"/desensitization/{sid}/reactions", {"step_no": "2", "severity": "moderate"})
    r = nurse.post(f"/desensitization/{sid}/steps/2")
    assert r.status_code == 422 and "stopped this protocol" in r.text
    assert "Mark given" not in nurse.get(f"/desensitization/{sid}").text
