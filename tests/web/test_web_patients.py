"""Patient list, new-patient form (errors next to fields, nothing saved), patient page, patients API."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from web_helpers import WebClient, html_text

from immunoplan.registry import models as m


def _count(registry: Any, model: Any) -> int:
    with registry.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)))


def test_create_patient_then_see_it(clinician: WebClient) -> None:
    r = clinician.post(
        "/patients",
        {"pseudo_id": "P-001", "display_name": "Ada", "birth_date": "2000-05-01", "sex": "female"},
    )
    assert r.status_code == 303
    page = clinician.get(r.headers["location"])
    assert page.status_code == 200
    assert "Patient P-001" in page.text and "Ada" in page.text
    listing = clinician.get("/patients?q=p-00")
    assert "P-001" in listing.text


def test_new_patient_bad_input_shows_message_next_to_field_and_saves_nothing(
    clinician: WebClient, registry: Any
) -> None:
    r = clinician.post("/patients", {"pseudo_id": "", "birth_date": "2000-13-45", "sex": "robot"})
    assert r.status_code == 422
    assert 'id="e-pseudo_id"' in r.text and 'id="e-birth_date"' in r.text and 'id="e-sex"' in r.text
    assert "cannot read &#39;2000-13-45&#39; as a date" in r.text
    assert 'aria-invalid="true"' in r.text
    assert _count(registry, m.Patient) == 0


def test_duplicate_pseudonym_is_refused(clinician: WebClient, registry: Any) -> None:
    assert clinician.post("/patients", {"pseudo_id": "DUP", "sex": "male"}).status_code == 303
    r = clinician.post("/patients", {"pseudo_id": "DUP", "sex": "male"})
    assert r.status_code == 422 and "already exists" in r.text
    assert _count(registry, m.Patient) == 1


def test_htmx_search_returns_only_the_rows(clinician: WebClient) -> None:
    clinician.post("/patients", {"pseudo_id": "ALPHA", "sex": "male"})
    clinician.post("/patients", {"pseudo_id": "BETA", "sex": "male"})
    r = clinician.get("/patients?q=alp", headers={"HX-Request": "true"})
    assert "<html" not in r.text
    assert "ALPHA" in r.text and "BETA" not in r.text


def test_due_and_late_flags(clinician: WebClient, registry: Any) -> None:
    today = date.today()
    with registry.transaction(actor="test") as s:
        for code, due in (
            ("LATE", today - timedelta(days=3)),
            ("DUE", today),
            ("LATER", today + timedelta(7)),
        ):
            p = m.Patient(pseudo_id=code, sex="female")
            s.add(p)
            s.flush()
            s.add(m.Course(patient_id=p.id, kind="SCIT", status="active", next_due_on=due))
    r = clinician.get("/api/patients")
    flags = {row["pseudo_id"]: row["flag"] for row in r.json()}
    assert flags == {"LATE": "late", "DUE": "due", "LATER": None}
    assert [row["pseudo_id"] for row in r.json()] == ["LATE", "DUE", "LATER"]
    only = clinician.get("/api/patients?flagged=true").json()
    assert {row["pseudo_id"] for row in only} == {"LATE", "DUE"}
    text = html_text(clinician.get("/patients").text)
    assert "LATE" in text and "late" in text


def test_api_create_patient_422_and_201(clinician: WebClient, registry: Any) -> None:
    r = clinician.post("/api/patients", json={"pseudo_id": "", "sex": "robot"})
    assert r.status_code == 422
    fields = {d["field"] for d in r.json()["detail"]}
    assert {"pseudo_id", "sex"} <= fields
    assert _count(registry, m.Patient) == 0
    r = clinician.post("/api/patients", json={"pseudo_id": "API-1", "birth_date": "1990-01-02"})
    assert r.status_code == 201
    body = r.json()
    assert body["pseudo_id"] == "API-1" and body["age_years"] >= 30
    got = clinician.get(f"/api/patients/{body['id']}").json()
    assert got["patient"]["pseudo_id"] == "API-1" and got["timeline"] == []


def test_patient_writes_are_audited_with_the_user(clinician: WebClient, registry: Any) -> None:
    clinician.post("/api/patients", json={"pseudo_id": "AUD-1"})
    with registry.session() as s:
        rows = s.scalars(select(m.AuditEntry).where(m.AuditEntry.table_name == "patients")).all()
    assert [(r.actor, r.action) for r in rows] == [("clinician1", "insert")]


def test_unknown_patient_is_404_page(clinician: WebClient) -> None:
    r = clinician.get("/patients/9999")
    assert r.status_code == 404 and "Not found" in r.text
    assert clinician.get("/api/patients/9999").status_code == 404


def test_trend_values_table_lists_each_date_value(clinician: WebClient, registry: Any) -> None:
    with registry.transaction(actor="test") as s:
        p = m.Patient(pseudo_id="TREND", sex="female")
        s.add(p)
        s.flush()
        for day, value in ((date(2025, 1, 1), 111.5), (date(2025, 6, 1), 222.5)):
            s.add(
                m.Measurement(
                    patient_id=p.id, kind="total_ige_iu_ml", value=value, unit="IU/mL", measured_on=day
                )
            )
        pid = p.id
    text = html_text(clinician.get(f"/patients/{pid}").text)
    assert "2025-01-01 111.5" in text and "2025-06-01 222.5" in text
    assert 'data-chart="trend-ige"' in clinician.get(f"/patients/{pid}").text
