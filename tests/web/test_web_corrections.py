"""Corrections on the web: the correction form (current values, history from the audit trail), void and amend
with a reason (POST -> 303 back to the page the user came from), shown in the record and the audit trail."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from web_helpers import WebClient, html_text

from immunoplan import clock
from immunoplan.registry import models as m
from immunoplan.services import records as rec


def _visit(clinician: WebClient, nurse: WebClient) -> tuple[int, int]:
    pid = clinician.post(
        "/api/patients", json={"pseudo_id": "K-1", "birth_date": "1990-01-01", "sex": "male"}
    ).json()["id"]
    r = nurse.post(
        f"/api/patients/{pid}/visits",
        json={"code": "baseline", "visit_on": "2026-11-02", "act": [3, 3, 4, 3, 3]},
    )
    assert r.status_code == 201, r.text
    return pid, r.json()["id"]


def _injection(registry: Any) -> tuple[int, int]:
    with clock.frozen("2026-11-20T10:00"):
        p = rec.register_patient(registry, "dr.a", pseudo_id="K-2", sex="female", age_years=40)
        c = rec.plan_course(registry, "dr.a", pseudo_id="K-2", kind="SCIT", interval_days=7, dose_unit="SQ-U")
        i = rec.record_injection(
            registry, "nurse1", course_id=c["id"], given_at="2026-11-02T09:00", dose="100", dose_unit="SQ-U"
        )
    return int(p["id"]), int(i["id"])


def test_amend_shows_in_the_record_and_the_audit_trail(
    clinician: WebClient, nurse: WebClient, registry: Any
) -> None:
    pid, vid = _visit(clinician, nurse)
    back = f"/patients/{pid}"
    form = nurse.get(f"/corrections/visit/{vid}?next={back}")
    assert form.status_code == 200
    assert 'name="medication_score"' in form.text and 'name="reason"' in form.text
    assert "insert visit" in html_text(form.text)  # history from the audit trail
    key = "amend-form-0001"
    body = {
        "medication_score": "3",
        "reason": "burden score missed at the visit",
        "next": back,
        "idempotency_key": key,
    }
    r = nurse.post(f"/corrections/visit/{vid}/amend", {**form_fields(form.text), **body})
    assert r.status_code == 303 and r.headers["location"] == back
    again = nurse.post(f"/corrections/visit/{vid}/amend", {**form_fields(form.text), **body})  # re-post
    assert again.status_code == 303
    page = html_text(clinician.get(back).text)
    assert "corrected by nurse1 at" in page and "burden score missed at the visit" in page
    history = html_text(nurse.get(f"/corrections/visit/{vid}").text)
    assert "update visit" in history and "amend_visit" in history and "medication_score: 3" in history
    with registry.session() as s:
        updates = s.scalars(
            select(m.AuditEntry).where(m.AuditEntry.table_name == "visits", m.AuditEntry.action == "update")
        ).all()
    assert len(updates) == 1  # the re-post wrote nothing
    assert updates[0].before == {
        "medication_score": None,
        "amended_at": None,
        "amended_by": None,
        "amend_reason": None,
    }
    assert updates[0].after["medication_score"] == 3.0 and updates[0].actor == "nurse1"


def form_fields(html: str) -> dict[str, str]:
    """The text fields of the amend form as shown (the current values)."""
    html = html.split('action="/corrections/', 1)[1].split("</form>", 1)[0]  # the first form: amend
    return {
        k: v
        for k, v in re.findall(r'<input id="f-([a-z_0-9]+)" name="[^"]+" type="text" value="([^"]*)"', html)
    }


def test_void_strikes_the_entry_through_and_a_second_void_is_409(
    clinician: WebClient, nurse: WebClient, registry: Any
) -> None:
    pid, inj = _injection(registry)
    back = f"/patients/{pid}"
    r = nurse.post(
        f"/corrections/injection/{inj}/void",
        {"void_reason": "recorded on the wrong patient", "next": back, "idempotency_key": "void-form-0001"},
    )
    assert r.status_code == 303 and r.headers["location"] == back
    page = clinician.get(back).text
    assert (
        "<del>" in page
        and "voided by nurse1 at" in html_text(page)
        and "recorded on the wrong patient" in page
    )
    r = nurse.post(
        f"/corrections/injection/{inj}/void", {"void_reason": "again", "idempotency_key": "void-form-0002"}
    )
    assert r.status_code == 409 and "already voided" in html_text(r.text)
    with registry.session() as s:
        row = s.get(m.Injection, inj)
        assert row.void_reason == "recorded on the wrong patient"
        voids = s.scalars(select(m.AuditEntry).where(m.AuditEntry.use_case == "void_injection")).all()
    assert [v.table_name for v in voids if v.table_name == "injections"] == ["injections"]  # voided once


def test_void_needs_a_reason_and_amend_is_revalidated(
    clinician: WebClient, nurse: WebClient, registry: Any
) -> None:
    pid, vid = _visit(clinician, nurse)
    r = nurse.post(f"/corrections/visit/{vid}/void", {"void_reason": ""})
    assert r.status_code == 422 and 'id="e-void_reason"' in r.text
    r = nurse.post(f"/corrections/visit/{vid}/amend", {"asthma_step": "9", "reason": "step"})
    assert r.status_code == 422 and 'id="e-asthma_step"' in r.text
    with registry.session() as s:
        v = s.get(m.Visit, vid)
        assert v.voided_at is None and v.asthma_step is None and v.amended_at is None


def test_next_must_be_a_local_path(clinician: WebClient, nurse: WebClient) -> None:
    _, vid = _visit(clinician, nurse)
    r = nurse.post(
        f"/corrections/visit/{vid}/void", {"void_reason": "duplicate", "next": "https://evil.example/x"}
    )
    assert r.status_code == 303 and r.headers["location"] == f"/corrections/visit/{vid}"
    page = nurse.get(r.headers["location"])
    assert "voided by nurse1" in html_text(page.text) and 'action="/corrections/visit' not in page.text


def test_roles_that_cannot_correct(as_role: Any, clinician: WebClient, nurse: WebClient) -> None:
    _, vid = _visit(clinician, nurse)
    for role in ("pharmacist", "researcher"):
        c = as_role(role)
        assert c.get(f"/corrections/visit/{vid}").status_code == 403
        assert c.post(f"/corrections/visit/{vid}/void", {"void_reason": "x"}).status_code == 403


def test_api_void_and_amend(clinician: WebClient, nurse: WebClient, registry: Any) -> None:
    pid, inj = _injection(registry)
    r = nurse.post(
        f"/api/corrections/injection/{inj}/amend", json={"changes": {"lot": "L-7"}, "reason": "lot"}
    )
    assert r.status_code == 200 and r.json()["changed"]["lot"] == {"before": None, "after": "L-7"}
    r = nurse.post(
        f"/api/corrections/injection/{inj}/amend", json={"changes": {"dose_ml": "50"}, "reason": "x"}
    )
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "dose_ml"
    key = {"Idempotency-Key": "api-void-0001"}
    r = nurse.post(f"/api/corrections/injection/{inj}/void", json={"reason": "duplicate"}, headers=key)
    assert r.status_code == 200 and r.json()["voided_by"] == "nurse1"
    assert nurse.post(
        f"/api/corrections/injection/{inj}/void", json={"reason": "duplicate"}, headers=key
    ).json()["replayed"]
    r = nurse.post(f"/api/corrections/injection/{inj}/void", json={"reason": "again"})
    assert r.status_code == 409 and r.json()["detail"][0]["record"] == f"injection {inj}"


def test_correction_and_visit_pages_are_labelled(clinician: WebClient, nurse: WebClient) -> None:
    from test_web_accessibility import _check

    pid, vid = _visit(clinician, nurse)
    checked = _check(nurse.get(f"/corrections/visit/{vid}").text, "corrections")
    checked += _check(nurse.get(f"/patients/{pid}/visits/{vid}").text, "visit page")
    conflict = nurse.post(
        f"/patients/{pid}/visits", {"code": "baseline", "visit_on": "2026-11-02", "act": "3,3,4,3,3"}
    )
    assert conflict.status_code == 409
    checked += _check(conflict.text, "visit conflict")
    assert checked > 20
