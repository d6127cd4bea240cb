"""The desensitization course page (cycles, next-cycle options, index reaction form, adjuvant omalizumab plan
and dose forms, the course calendar), the drug-allergy alert on the patient page and on the sheets, and no
desensitization page answering 500 for a course with cycles, for any role."""

from __future__ import annotations

import re
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from web_helpers import WebClient, html_text

sys.path.insert(0, str(Path(__file__).parents[1] / "workflows"))
from desens_course_helpers import completed_cycle, mild_then_completed  # noqa: E402

from immunoplan.services.auth import ROLES  # noqa: E402
from immunoplan.services.records import desensitization as svc  # noqa: E402
from immunoplan.services.records import register_patient  # noqa: E402

DAY1, DAY2 = date(2026, 10, 5), date(2026, 10, 19)


@pytest.fixture
def course(registry: Any) -> dict[str, int]:
    """A patient with an oxaliplatin course of two cycles (a mild reaction resumed, then the same protocol)
    and a carboplatin session in progress."""
    pid = int(
        register_patient(registry, "t", pseudo_id="W-1", sex="female", height_cm=165, weight_kg=70)["id"]
    )
    s1 = mild_then_completed(registry, pid, "oxaliplatin", "160", DAY1, 14)
    s2 = completed_cycle(
        registry, pid, "oxaliplatin", "160", DAY2, cycle_choice="next-unchanged-if-cutaneous"
    )
    cid = int(svc.session_view(registry, s1)["course_id"])
    return {"patient": pid, "course": cid, "s1": s1, "s2": s2}


def _key(html: str, action: str) -> str:
    form = re.search(rf'<form[^>]*action="{re.escape(action)}".*?</form>', html, re.S)
    assert form, f"no form posting to {action}"
    m = re.search(r'name="idempotency_key" value="([^"]+)"', form.group(0))
    assert m
    return m.group(1)


def _pages(c: dict[str, int]) -> list[str]:
    p, k = c["patient"], c["course"]
    out = [
        f"/patients/{p}",
        f"/patients/{p}/courses/{k}",
        f"/api/patients/{p}/courses/{k}",
        f"/patients/{p}/desensitization/new",
    ]
    for s in (c["s1"], c["s2"]):
        out += [f"/desensitization/{s}", f"/api/desensitization/{s}"]
        out += [f"/desensitization/{s}/sheets/{name}" for name in ("rdd", "rdd-pharmacy", "rdd-nursing")]
    return out


@pytest.mark.parametrize("role", ROLES)
def test_no_desensitization_page_answers_500(as_role: Any, course: dict[str, int], role: str) -> None:
    c = as_role(role)
    for url in _pages(course):
        r = c.get(url)
        assert r.status_code < 500, (role, url, r.text[:300])
        assert r.status_code in (200, 403), (role, url, r.status_code)


def test_the_course_page_lists_the_cycles_and_the_next_options(
    clinician: WebClient, course: dict[str, int]
) -> None:
    r = clinician.get(f"/patients/{course['patient']}/courses/{course['course']}")
    assert r.status_code == 200
    text = html_text(r.text)
    assert "Cycles" in text and "completed-with-reactions" in text
    assert f"session {course['s1']}" in text and f"session {course['s2']}" in text
    assert "next-unchanged-if-cutaneous (after cycle 1)" in text
    assert "same-protocol (suggested)" in text and "change-bags" in text  # after a cycle without reactions
    assert "Course calendar" in text and "desensitization cycle 2" in text
    session_page = html_text(clinician.get(f"/desensitization/{course['s2']}").text)
    assert "Cycle starts from" in session_page and "next-unchanged-if-cutaneous after cycle 1" in session_page


def test_index_reaction_form_makes_the_alert_of_patient_page_and_sheets(
    clinician: WebClient, course: dict[str, int]
) -> None:
    url = f"/patients/{course['patient']}/courses/{course['course']}"
    action = f"{url}/index-reaction"
    page = clinician.get(url).text
    bad = clinician.post(
        action,
        {
            "idempotency_key": _key(page, action),
            "reaction_on": "2026-09-01",
            "drug": "oxaliplatin",
            "grade": "7",
            "scale": "brown2004",
        },
    )
    assert bad.status_code == 422 and "not a brown2004 grade" in html_text(bad.text)
    form = {
        "idempotency_key": _key(page, action),
        "reaction_on": "2026-09-01",
        "drug": "oxaliplatin",
        "grade": "3",
        "scale": "brown2004",
        "skin_test": "positive",
        "skin_test_detail": "PT 5 mg/mL",
        "phenotype": "type I",
        "context": "FOLFOX",
    }
    r = clinician.post(action, form)
    assert r.status_code == 303, r.text[:300]
    again = clinician.post(action, form)  # a double submit writes once and answers the same
    assert again.status_code == 303
    alert = "drug allergy: oxaliplatin, brown2004 grade 3 (severe), type I, 2026-09-01, skin test positive"
    assert alert in html_text(clinician.get(f"/patients/{course['patient']}").text)
    for name in ("rdd-pharmacy", "rdd-nursing"):
        sheet = html_text(clinician.get(f"/desensitization/{course['s2']}/sheets/{name}").text)
        assert alert in sheet


def test_adjuvant_omalizumab_plan_then_a_dose_on_the_course_page(
    clinician: WebClient, nurse: WebClient, course: dict[str, int]
) -> None:
    url = f"/patients/{course['patient']}/courses/{course['course']}"
    page = clinician.get(url).text
    assert f"{url}/omalizumab-doses" not in page  # no dose form before the adjuvant plan
    action = f"{url}/omalizumab-adjuvant"
    r = clinician.post(
        action,
        {
            "idempotency_key": _key(page, action),
            "regimen_id": "desensitization_adjuvant",
            "start_on": "2026-11-02",
            "cycles": "4",
            "cycle_weeks": "3",
        },
    )
    assert r.status_code == 303, r.text[:400]
    page = nurse.get(url).text
    text = html_text(page)
    assert "OFF-LABEL: omalizumab as adjuvant to drug desensitization" in text
    assert "omalizumab 300 mg planned" in text
    dose_action = f"{url}/omalizumab-doses"
    d = nurse.post(
        dose_action,
        {"idempotency_key": _key(page, dose_action), "dose_mg": "300", "given_at": "2026-10-19T12:00"},
    )
    assert d.status_code == 303, d.text[:400]
    after = html_text(nurse.get(url).text)
    assert "Omalizumab doses given" in after and "(off-label adjuvant)" in after
    assert (
        nurse.post(action, {"regimen_id": "desensitization_adjuvant", "start_on": "2026-11-02"}).status_code
        == 403
    )
