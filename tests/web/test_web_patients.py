"""Patient list, new-patient form (errors next to fields, nothing saved), patient page, patients API."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from web_helpers import WebClient, html_text

from immunoplan import clock
from immunoplan.registry import models as m


def _count(registry: Any, model: Any) -> int:
    with registry.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)))


def test_create_patient_then_see_it(clinician: WebClient, registry: Any) -> None:
    form = {
        "mrn": "MRN-0001",
        "display_name": "Ada",
        "birth_date": "2000-05-01",
        "sex": "female",
        "weight_kg": "61.5",
        "pseudo_id": "P-001",
    }
    with clock.frozen("2026-03-10T17:30"):
        r = clinician.post("/patients", form)
        assert r.status_code == 303  # POST/redirect/GET: a reload of the patient page never re-posts
        page = clinician.get(r.headers["location"])
    assert page.status_code == 200
    text = html_text(page.text)
    assert "Patient P-001" in text and "Ada" in text and "MRN-0001" in text and "61.5 kg" in text
    listing = clinician.get("/patients?q=p-00")
    assert "P-001" in listing.text
    with registry.session() as s:
        w = s.scalars(select(m.Measurement)).one()  # the weight at registration, dated the clinic's today
        assert (w.kind, w.value, w.measured_on) == ("weight_kg", 61.5, date(2026, 3, 10))


def test_new_patient_without_pseudonym_gets_a_random_one(clinician: WebClient, registry: Any) -> None:
    r = clinician.post("/patients", {"mrn": "12345", "display_name": "Bo", "sex": "male"})
    assert r.status_code == 303
    with registry.session() as s:
        p = s.scalars(select(m.Patient)).one()
    assert p.mrn == "12345" and p.pseudo_id.startswith("P-") and "12345" not in p.pseudo_id


def test_new_patient_bad_input_shows_message_next_to_field_and_saves_nothing(
    clinician: WebClient, registry: Any
) -> None:
    r = clinician.post("/patients", {"mrn": "x" * 65, "birth_date": "2000-13-45", "sex": "robot"})
    assert r.status_code == 422
    assert 'id="e-mrn"' in r.text and 'id="e-birth_date"' in r.text and 'id="e-sex"' in r.text
    assert "cannot read &#39;2000-13-45&#39; as a date" in r.text
    assert 'aria-invalid="true"' in r.text
    for day in ("0001-01-01", (clock.today() + timedelta(days=1)).isoformat()):
        r = clinician.post("/patients", {"birth_date": day, "sex": "male"})
        assert r.status_code == 422 and 'id="e-birth_date"' in r.text
    assert _count(registry, m.Patient) == 0


def test_duplicate_pseudonym_or_mrn_is_a_conflict_naming_the_patient(
    clinician: WebClient, registry: Any
) -> None:
    assert clinician.post("/patients", {"pseudo_id": "DUP", "mrn": "M-9", "sex": "male"}).status_code == 303
    r = clinician.post("/patients", {"pseudo_id": "DUP", "sex": "male"})
    assert r.status_code == 409 and "already exists" in r.text and 'id="e-pseudo_id"' in r.text
    r = clinician.post("/patients", {"mrn": "M-9", "display_name": "Someone else", "sex": "male"})
    assert r.status_code == 409 and 'id="e-mrn"' in r.text
    assert "MRN M-9 already exists: it is patient DUP" in html_text(r.text)
    assert "Someone else" in r.text  # the form is shown again with what was typed
    assert _count(registry, m.Patient) == 1


def test_double_submit_and_reload_write_one_patient(clinician: WebClient, registry: Any) -> None:
    page = clinician.get("/patients/new").text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page)
    assert key, "the form carries an idempotency key"
    form = {"mrn": "M-2", "display_name": "Cy", "sex": "female", "idempotency_key": key.group(1)}
    first = clinician.post("/patients", form)
    second = clinician.post("/patients", form)  # double click, or the browser re-sends the form
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert clinician.get(first.headers["location"]).status_code == 200  # the reload is a GET
    assert _count(registry, m.Patient) == 1
    assert clinician.get("/patients/new").text.count(key.group(1)) == 0  # each render: a fresh key


def test_htmx_search_returns_only_the_rows(clinician: WebClient) -> None:
    clinician.post("/patients", {"pseudo_id": "ALPHA", "sex": "male"})
    clinician.post("/patients", {"pseudo_id": "BETA", "sex": "male"})
    r = clinician.get("/patients?q=alp", headers={"HX-Request": "true"})
    assert "<html" not in r.text
    assert "ALPHA" in r.text and "BETA" not in r.text


def test_due_and_late_flags(clinician: WebClient, registry: Any) -> None:
    today = clock.today()
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


def test_api_create_patient_422_409_and_201(clinician: WebClient, registry: Any) -> None:
    r = clinician.post("/api/patients", json={"pseudo_id": "", "sex": "robot"})
    assert r.status_code == 422
    fields = {d["field"] for d in r.json()["detail"]}
    assert {"pseudo_id", "sex"} <= fields
    assert _count(registry, m.Patient) == 0
    body = {"pseudo_id": "API-1", "mrn": "A-1", "name": "Api Person", "birth_date": "1990-01-02"}
    r = clinician.post("/api/patients", json=body, headers={"Idempotency-Key": "api-key-0001"})
    assert r.status_code == 201
    created = r.json()
    assert created["pseudo_id"] == "API-1" and created["age_years"] >= 30 and created["mrn"] == "A-1"
    again = clinician.post("/api/patients", json=body, headers={"Idempotency-Key": "api-key-0001"})
    assert again.status_code == 201 and again.json()["id"] == created["id"]  # replayed, nothing written
    r = clinician.post("/api/patients", json={**body, "pseudo_id": "API-2"})
    assert r.status_code == 409 and r.json()["detail"][0]["field"] == "mrn"
    assert f"patient {created['id']}" in r.json()["detail"][0]["record"]
    got = clinician.get(f"/api/patients/{created['id']}").json()
    assert got["patient"]["pseudo_id"] == "API-1" and got["timeline"] == []
    assert _count(registry, m.Patient) == 1


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
