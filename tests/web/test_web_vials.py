"""A patient's vials on the web: the page (status, days to expiry, expired in red with the word), the add form
(POST/redirect/GET, idempotency key, errors next to the field with the accepted values, 422 also for htmx),
the labels PDF download, the JSON API, the links from the patient and injection-day pages, and the roles."""

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
from immunoplan.services.records import vials

NOW = "2026-03-10T09:05"


@pytest.fixture(autouse=True)
def clinic(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("IMMUNOPLAN_TIMEZONE", "Europe/Oslo")
    with clock.frozen(NOW):
        yield


@pytest.fixture
def patient(registry: Any) -> tuple[int, int]:
    p = rec.register_patient(
        registry,
        "dr.a",
        pseudo_id="V-1",
        mrn="MRN-77",
        display_name="Kari Nordmann",
        sex="female",
        birth_date="1990-01-01",
    )
    c = rec.plan_course(
        registry,
        "dr.a",
        pseudo_id="V-1",
        kind="cluster",
        product_id="alutard-sq-hdm",
        regimen_id="cluster",
        started_on="2026-03-10",
        dose_unit="SQ-U",
    )
    return int(p["id"]), int(c["id"])


def _count(registry: Any) -> int:
    with registry.session() as s:
        return int(s.scalar(select(func.count()).select_from(m.Vial)) or 0)


def _key(html: str) -> str:
    form = html.split('id="vial-form"', 1)[1]
    found = re.search(r'name="idempotency_key" value="([^"]+)"', form)
    assert found
    return found.group(1)


VIAL = {
    "product_id": "alutard-sq-hdm",
    "concentration": "100000 SQ-U/mL",
    "lot": "ALK-42",
    "expiry_on": "2027-01-31",
    "opened_on": "2026-03-01",
    "volume_ml": "5",
}


def test_the_page_lists_vials_with_status_and_the_expired_one_in_red(
    nurse: WebClient, registry: Any, patient: Any
) -> None:
    pid, _ = patient
    r = nurse.get(f"/patients/{pid}/vials")
    assert r.status_code == 200 and 'data-testid="no-vials"' in r.text
    vials.add_vial(registry, "nurse1", {**VIAL, "patient_id": pid, "expiry_on": "2026-03-20"})
    vials.add_vial(registry, "nurse1", {**VIAL, "patient_id": pid, "concentration": "2", "lot": "G-1"})
    with clock.frozen("2026-03-25T09:00"):  # the first vial expired on 2026-03-20
        r = nurse.get(f"/patients/{pid}/vials")
    assert r.status_code == 200
    rows = r.text.split("<tbody>", 1)[1].split("</tbody>", 1)[0].split("<tr")[1:]
    first = next(x for x in rows if 'data-vial="1"' in x)
    second = next(x for x in rows if 'data-vial="2"' in x)
    assert 'class="flag late" data-testid="expired">expired<' in first and "5 days ago" in html_text(first)
    assert 'name="vial" value="1"' not in first  # no label for an expired vial
    assert "in date" in second and "green" in second and "1000 SQ-U/mL" in second and "G-1" in second
    assert ">312<" in second  # days to expiry: 2026-03-25 -> 2027-01-31
    assert "Kari Nordmann" in r.text and "MRN-77" in r.text


def test_add_form_posts_redirects_and_a_repeat_writes_once(
    nurse: WebClient, registry: Any, patient: Any
) -> None:
    pid, _ = patient
    page = nurse.get(f"/patients/{pid}/vials")
    form = {**VIAL, "idempotency_key": _key(page.text)}
    r = nurse.post(f"/patients/{pid}/vials", form)
    assert r.status_code == 303 and r.headers["location"] == f"/patients/{pid}/vials?added=1"
    again = nurse.post(f"/patients/{pid}/vials", form)  # a double submit / a reload of the POST
    assert again.status_code == 303 and _count(registry) == 1
    shown = nurse.get(r.headers["location"])
    assert 'data-testid="added"' in shown.text and "ALK-42" in shown.text and "red" in shown.text


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"expiry_on": "2026-03-09"}, "expiry_on", ["expired on 2026-03-09", "vial-expired", "2026-03-10"]),
        ({"concentration": "7"}, "concentration", ["not a vial of", "4 = 100000 SQ-U/mL"]),
        ({"product_id": "no-such"}, "product_id", ["no product", "alutard-sq-hdm"]),
        ({"lot": "A\x07B"}, "lot", ["printable"]),
        ({"volume_ml": "500"}, "volume_ml", ["100"]),
        ({"lot": ""}, "lot", []),
    ],
)
def test_add_form_errors_show_next_to_the_field_and_write_nothing(
    nurse: WebClient, registry: Any, patient: Any, change: dict[str, str], field: str, words: list[str]
) -> None:
    pid, _ = patient
    r = nurse.post(f"/patients/{pid}/vials", {**VIAL, **change})
    assert r.status_code == 422
    found = re.search(rf'<p id="e-{field}" class="field-error" role="alert">([^<]*)</p>', r.text)
    assert found, r.text[-3000:]
    for w in words:
        assert w in found.group(1)
    assert _count(registry) == 0


def test_htmx_post_gets_the_fragment_with_422_or_the_updated_list(
    nurse: WebClient, registry: Any, patient: Any
) -> None:
    pid, _ = patient
    bad = nurse.post(
        f"/patients/{pid}/vials", {**VIAL, "expiry_on": "2020-01-01"}, headers={"HX-Request": "true"}
    )
    assert bad.status_code == 422 and bad.text.lstrip().startswith('<div id="vials">')
    assert 'id="e-expiry_on"' in bad.text and "<html" not in bad.text
    ok = nurse.post(f"/patients/{pid}/vials", VIAL, headers={"HX-Request": "true"})
    assert ok.status_code == 200 and 'data-testid="added"' in ok.text and 'data-vial="1"' in ok.text
    assert _count(registry) == 1


def test_the_product_choice_lists_that_products_vials(nurse: WebClient, patient: Any) -> None:
    pid, _ = patient
    page = nurse.get(f"/patients/{pid}/vials").text  # default: the patient's course product
    assert 'value="100000 SQ-U/mL"' in page and "vial 4 · 100000 SQ-U/mL · red" in page
    other = nurse.get(f"/patients/{pid}/vials?product_id=hdm-tyrosine-ultrarush&lot=L-9").text
    assert 'value="1 mL of maintenance concentration/mL"' in other and "100000 SQ-U/mL" not in other
    assert 'value="L-9"' in other  # the typed lot survives the product change


def test_labels_download_is_a_pdf_for_the_chosen_vials_in_either_layout(
    nurse: WebClient, registry: Any, patient: Any
) -> None:
    import pypdfium2 as pdfium

    pid, _ = patient
    a = vials.add_vial(registry, "nurse1", {**VIAL, "patient_id": pid})
    b = vials.add_vial(registry, "nurse1", {**VIAL, "patient_id": pid, "concentration": "3", "lot": "O-3"})
    r = nurse.get(f"/patients/{pid}/vials/labels.pdf?layout=label&vial={a['id']}&vial={b['id']}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF") and "attachment" in r.headers["content-disposition"]
    assert len(pdfium.PdfDocument(r.content)) == 2
    sheet = nurse.get(f"/patients/{pid}/vials/labels.pdf?layout=a4")  # none ticked: every vial in date
    doc = pdfium.PdfDocument(sheet.content)
    assert len(doc) == 1 and round(doc[0].get_size()[0]) == 595  # A4 width in points
    text = doc[0].get_textpage().get_text_range()
    assert "Kari Nordmann" in text and "O-3" in text and "ALK-42" in text


def test_labels_refuse_an_expired_vial_another_patients_vial_and_an_unknown_layout(
    nurse: WebClient, registry: Any, patient: Any
) -> None:
    pid, _ = patient
    other = rec.register_patient(registry, "dr.a", pseudo_id="V-2", sex="male")
    theirs = vials.add_vial(registry, "nurse1", {**VIAL, "patient_id": other["id"]})
    r = nurse.get(f"/patients/{pid}/vials/labels.pdf?vial={theirs['id']}")
    assert r.status_code == 422 and f"no vial {theirs['id']} of patient {pid}" in r.text
    soon = vials.add_vial(registry, "nurse1", {**VIAL, "patient_id": pid, "expiry_on": "2026-03-11"})
    with clock.frozen("2026-03-12T09:00"):
        r = nurse.get(f"/patients/{pid}/vials/labels.pdf?vial={soon['id']}")
        assert r.status_code == 422 and "expired on 2026-03-11" in r.text
        r = nurse.get(f"/patients/{pid}/vials/labels.pdf")
        assert r.status_code == 422 and "no vial in date" in r.text
    r = nurse.get(f"/patients/{pid}/vials/labels.pdf?layout=poster")
    assert r.status_code == 422 and "unknown layout" in r.text


def test_json_api_adds_and_lists(nurse: WebClient, registry: Any, patient: Any) -> None:
    pid, _ = patient
    url = f"/api/patients/{pid}/vials"
    body = {k: v for k, v in VIAL.items() if k != "opened_on"}
    r = nurse.post(url, json=body, headers={"Idempotency-Key": "vial-key-1"})
    assert r.status_code == 201, r.text
    j = r.json()
    assert j["id"] >= 1 and j["strength"] == "4" and j["colour"] == "red" and j["status"] == "in date"
    assert nurse.post(url, json=body, headers={"Idempotency-Key": "vial-key-1"}).status_code == 201
    assert _count(registry) == 1
    bad = nurse.post(url, json={**body, "expiry_on": "2025-01-01"})
    assert bad.status_code == 422 and "expiry_on" in bad.text
    assert nurse.post(url, json={**body, "patient_id": pid + 1}).status_code == 422
    listed = nurse.get(url).json()
    assert [v["id"] for v in listed["vials"]] == [j["id"]] and listed["vials"][0]["days_to_expiry"] == 327
    assert nurse.get("/api/patients/999/vials").status_code == 404
    assert nurse.get("/patients/999/vials").status_code == 404


def test_links_from_the_patient_and_injection_day_pages(nurse: WebClient, patient: Any) -> None:
    pid, cid = patient
    assert f'href="/patients/{pid}/vials"' in nurse.get(f"/patients/{pid}").text
    day = nurse.get(f"/patients/{pid}/courses/{cid}/injection-day").text
    assert f'href="/patients/{pid}/vials" data-testid="vials-link"' in day


def test_roles(as_role: Any, registry: Any, patient: Any) -> None:
    pid, _ = patient
    researcher = as_role("researcher")
    assert researcher.get(f"/patients/{pid}/vials").status_code == 403
    assert researcher.post(f"/patients/{pid}/vials", VIAL).status_code == 403
    assert researcher.get(f"/patients/{pid}/vials/labels.pdf").status_code == 403
    assert researcher.post(f"/api/patients/{pid}/vials", json=VIAL).status_code == 403
    for n, role in enumerate(("nurse", "clinician", "pharmacist", "admin")):
        c = as_role(role)
        page = c.get(f"/patients/{pid}/vials")
        assert page.status_code == 200 and 'id="vial-form"' in page.text, role
        r = c.post(f"/patients/{pid}/vials", {**VIAL, "lot": f"L-{role}"})
        assert r.status_code == 303, role
        assert c.get(f"/patients/{pid}/vials/labels.pdf").content.startswith(b"%PDF"), role
        assert _count(registry) == n + 1


def test_the_page_is_labelled(nurse: WebClient, registry: Any, patient: Any) -> None:
    from test_web_accessibility import _check

    pid, _ = patient
    vials.add_vial(registry, "nurse1", {**VIAL, "patient_id": pid})
    assert _check(nurse.get(f"/patients/{pid}/vials").text, "vials") >= 10
