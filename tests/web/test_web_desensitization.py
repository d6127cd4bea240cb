"""Desensitization pages and API: plan (preview, create), clock times in clinic time, mark given (POST ->
303, reload / double submit / two tabs / two nurses at once never make a second row or a 500), breakthrough
-> re-plan and continuation, final-step reaction, finish, sheets."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from web_helpers import WebClient, html_text

from immunoplan import clock
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import models as m
from immunoplan.services.protocols import plan_desensitization, replan_desensitization

START = "2026-11-21T09:00"
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


@pytest.fixture(autouse=True)
def clinic_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The clinic's zone and a pinned clock (09:00 on the session day); `at` moves it."""
    monkeypatch.setenv("IMMUNOPLAN_TIMEZONE", "America/Los_Angeles")
    with clock.frozen(START):
        yield


def at(minutes: float) -> None:
    clock.set_now(clock.parse_local("at", START) + timedelta(minutes=minutes))


def _patient(c: WebClient) -> int:
    return c.post("/api/patients", json={"pseudo_id": "D-1"}).json()["id"]


def _session(c: WebClient, **over: str) -> tuple[int, int]:
    pid = _patient(c)
    r = c.post(f"/patients/{pid}/desensitization", {**PLAN, **over, "action": "start"})
    assert r.status_code == 303, r.text[:500]
    return pid, int(r.headers["location"].rsplit("/", 1)[1])


def _key(html: str, action: str) -> str:
    """The hidden idempotency key of the form posting to ``action`` on a page."""
    form = re.search(rf'<form[^>]*action="{re.escape(action)}".*?</form>', html, re.S)
    assert form, f"no form for {action}"
    key = re.search(r'name="idempotency_key" value="([^"]+)"', form.group(0))
    assert key
    return key.group(1)


def _steps(registry: Any) -> list[tuple[int, int, str]]:
    with registry.session() as s:
        rows = s.scalars(select(m.DesensitizationStep).order_by(m.DesensitizationStep.id)).all()
        return [(x.replan_no, x.step_no, x.status) for x in rows]


def _mark(c: WebClient, sid: int, step: int, **form: str) -> Any:
    page = c.get(f"/desensitization/{sid}").text
    action = f"/desensitization/{sid}/steps/{step}"
    data = {"idempotency_key": _key(page, action), **form} if action in page else form
    return c.post(action, data)


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
    assert expected["scheme"] in text and "clinic time, America/Los_Angeles" in text
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
    assert r.status_code == 422 and 'id="e-dose_mg"' in r.text  # the range check, next to its field
    with registry.session() as s:
        assert s.scalar(select(func.count()).select_from(m.Course)) == 0


def test_create_session_twice_with_one_form_makes_one_session(clinician: WebClient, registry: Any) -> None:
    pid = _patient(clinician)
    key = _key(clinician.get(f"/patients/{pid}/desensitization/new").text, f"/patients/{pid}/desensitization")
    first = clinician.post(
        f"/patients/{pid}/desensitization", {**PLAN, "action": "start", "idempotency_key": key}
    )
    again = clinician.post(
        f"/patients/{pid}/desensitization", {**PLAN, "action": "start", "idempotency_key": key}
    )
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    other = clinician.post(f"/patients/{pid}/desensitization", {**PLAN, "action": "start"})
    assert other.status_code == 409 and "already in progress" in other.text  # the same day, another form
    with registry.session() as s:
        assert s.scalar(select(func.count()).select_from(m.DesensitizationSession)) == 1
        assert s.scalar(select(func.count()).select_from(m.Course)) == 1


def test_session_mark_given_then_breakthrough_replans(
    clinician: WebClient, nurse: WebClient, registry: Any
) -> None:
    _, sid = _session(clinician)
    page = nurse.get(f"/desensitization/{sid}")
    assert page.status_code == 200 and "Mark given" in page.text
    for step in (1, 2):
        at(15 * (step - 1))
        r = nurse.post(f"/desensitization/{sid}/steps/{step}", headers={"HX-Request": "true"})
        assert r.status_code == 200 and 'id="steps"' in r.text and "<html" not in r.text
    at(20)
    r = nurse.post(
        f"/desensitization/{sid}/reactions", {"step_no": "3", "severity": "mild", "symptoms": "flushing"}
    )
    assert r.status_code == 303 and r.headers["location"] == f"/desensitization/{sid}"
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
    html = nurse.get(f"/desensitization/{sid}").text
    text = html_text(html)
    assert "Re-planned after a mild reaction at step 3" in text
    restart = expected["resumption"]["restart_at_step"]
    assert f"Resume at step {restart}" in text
    assert f"Mark step {restart} given" in html  # the continuation is given like the original steps
    assert html.count("Mark given") == 1
    with registry.session() as s:
        steps = s.scalars(select(m.DesensitizationStep).order_by(m.DesensitizationStep.step_no)).all()
        assert [(x.step_no, x.status) for x in steps] == [(1, "given"), (2, "given"), (3, "stopped")]
        reaction = s.scalars(select(m.Reaction)).one()
        assert (reaction.kind, reaction.grade, reaction.scale) == ("systemic", "mild", "brown2004")
        assert reaction.desensitization_step_id == steps[2].id
        actors = set(
            s.scalars(
                select(m.AuditEntry.actor).where(
                    m.AuditEntry.table_name.in_(("desensitization_steps", "reactions"))
                )
            )
        )
        assert actors == {"nurse1"}
    at(40)
    r = _mark(nurse, sid, restart)
    assert r.status_code == 303
    assert _steps(registry)[-1] == (1, restart, "given")


def test_bad_breakthrough_input_is_422_and_nothing_saved(clinician: WebClient, registry: Any) -> None:
    _, sid = _session(clinician)
    r = clinician.post(f"/desensitization/{sid}/reactions", {"step_no": "99", "severity": "mild"})
    assert r.status_code == 422 and "no step 99" in r.text
    r = clinician.post(f"/desensitization/{sid}/reactions", {"step_no": "1", "severity": "awful"})
    assert r.status_code == 422 and "awful" in r.text
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


def test_reload_after_post_makes_no_second_row(nurse: WebClient, clinician: WebClient, registry: Any) -> None:
    _, sid = _session(clinician)
    page = nurse.get(f"/desensitization/{sid}").text
    data = {"idempotency_key": _key(page, f"/desensitization/{sid}/steps/1")}
    r = nurse.post(f"/desensitization/{sid}/steps/1", data)
    assert r.status_code == 303 and r.headers["location"] == f"/desensitization/{sid}"
    assert nurse.get(r.headers["location"]).status_code == 200  # the reload is a GET
    again = nurse.post(f"/desensitization/{sid}/steps/1", data)  # "resubmit the form?" -> yes
    assert again.status_code == 303
    assert _steps(registry) == [(0, 1, "given")]


def test_double_submit_and_two_tabs(nurse: WebClient, clinician: WebClient, registry: Any) -> None:
    _, sid = _session(clinician)
    tab1 = nurse.get(f"/desensitization/{sid}").text
    tab2 = nurse.get(f"/desensitization/{sid}").text
    action = f"/desensitization/{sid}/steps/1"
    k1 = {"idempotency_key": _key(tab1, action)}
    assert nurse.post(action, k1).status_code == 303
    assert nurse.post(action, k1).status_code == 303  # double click: the same key
    r = nurse.post(action, {"idempotency_key": _key(tab2, action)})  # the other tab
    assert r.status_code == 409 and "already recorded" in r.text and "desensitization step" in r.text
    assert _steps(registry) == [(0, 1, "given")]


def test_two_nurses_mark_the_same_step_at_once(as_role: Any, clinician: WebClient, registry: Any) -> None:
    _, sid = _session(clinician)
    nurses = [as_role("nurse"), as_role("nurse")]
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def mark(c: WebClient) -> None:
        barrier.wait()
        codes.append(c.post(f"/desensitization/{sid}/steps/1").status_code)

    threads = [threading.Thread(target=mark, args=(c,)) for c in nurses]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [303, 409]
    assert _steps(registry) == [(0, 1, "given")]


def test_reaction_at_the_final_step_is_recorded(
    nurse: WebClient, clinician: WebClient, registry: Any
) -> None:
    _, sid = _session(clinician)
    for step in range(1, 13):
        at(15 * (step - 1))
        assert _mark(nurse, sid, step).status_code == 303
    at(12 * 15)
    r = nurse.post(f"/desensitization/{sid}/reactions", {"step_no": "12", "severity": "mild"})
    assert r.status_code == 303
    text = html_text(nurse.get(f"/desensitization/{sid}").text)
    assert "Re-planned after a mild reaction at step 12" in text and "No resumption today" in text
    r = nurse.post(f"/desensitization/{sid}/finish", {"outcome": "stopped"})
    assert r.status_code == 303
    assert "stopped (stopped)" in html_text(nurse.get(f"/desensitization/{sid}").text)
    with registry.session() as s:
        assert s.scalars(select(m.DesensitizationSession.status)).one() == "stopped"
        assert s.scalar(select(func.count()).select_from(m.Reaction)) == 1


def test_recorded_times_are_clinic_time_with_the_zone(
    nurse: WebClient, clinician: WebClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, sid = _session(clinician)
    assert _mark(nurse, sid, 1).status_code == 303
    monkeypatch.setenv("IMMUNOPLAN_TIMEZONE", "Asia/Tokyo")
    text = nurse.get(f"/desensitization/{sid}").text
    assert "Asia/Tokyo" in text and ">02:00</time>" in text  # 09:00 PST = 02:00 JST the next day


def test_printable_sheets(as_role: Any, clinician: WebClient) -> None:
    _, sid = _session(clinician)
    pharmacist = as_role("pharmacist")
    for sheet in ("rdd", "rdd-pharmacy", "rdd-nursing"):
        r = pharmacist.get(f"/desensitization/{sid}/sheets/{sheet}")
        assert r.status_code == 200 and "carboplatin" in r.text
    assert pharmacist.get(f"/desensitization/{sid}/sheets/nope").status_code == 404


def test_api_plan_and_session(clinician: WebClient, registry: Any) -> None:
    body = {"drug": "carboplatin", "dose_mg": 500, "bag_volume_ml": 250, "final_rate_ml_h": 80, "bags": 3}
    r = clinician.post("/api/desensitization/plan", json=body)
    assert r.status_code == 200 and len(r.json()["steps"]) == 12
    assert clinician.post("/api/desensitization/plan", json={**body, "bags": 9}).status_code == 422
    pid = _patient(clinician)
    r = clinician.post(f"/api/patients/{pid}/desensitization", json={**body, "session_on": "2026-11-21"})
    assert r.status_code == 201
    sid = r.json()["id"]
    key = {"Idempotency-Key": "api-step-1-abcdef"}
    r = clinician.post(f"/api/desensitization/{sid}/steps", json={"step_no": 1}, headers=key)
    assert r.status_code == 201 and r.json()["step_no"] == 1
    again = clinician.post(f"/api/desensitization/{sid}/steps", json={"step_no": 1}, headers=key)
    assert again.status_code == 201 and again.json()["replayed"] is True
    r = clinician.post(f"/api/desensitization/{sid}/steps", json={"step_no": 1})
    assert r.status_code == 409 and r.json()["detail"][0]["record"].startswith("desensitization step")
    r = clinician.post(f"/api/desensitization/{sid}/steps", json={"step_no": 3})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "step_no"
    at(5)
    r = clinician.post(f"/api/desensitization/{sid}/reactions", json={"step_no": 2, "severity": "moderate"})
    assert r.status_code == 201 and r.json()["replans"][0]["reaction_step"] == 2
    view = clinician.get(f"/api/desensitization/{sid}").json()
    assert view["protocols"][0]["steps"][0]["recorded"]["started_at"] == "2026-11-21T09:00:00-08:00"
    r = clinician.post(f"/api/desensitization/{sid}/finish", json={"outcome": "completed"})
    assert r.status_code == 422
    r = clinician.post(f"/api/desensitization/{sid}/finish", json={"outcome": "stopped"})
    assert r.status_code == 201 and r.json()["status"] == "stopped"
    assert _steps(registry) == [(0, 1, "given"), (0, 2, "stopped")]


def test_api_refusals_are_never_500(clinician: WebClient) -> None:
    pid = _patient(clinician)
    body = {"drug": "carboplatin", "dose_mg": 500, "bag_volume_ml": 250, "final_rate_ml_h": 80}
    sid = clinician.post(
        f"/api/patients/{pid}/desensitization", json={**body, "session_on": "2026-11-21"}
    ).json()["id"]
    for payload in (
        {"step_no": 0},
        {"step_no": 1, "status": "done"},
        {"step_no": 1, "given_at": "yesterday"},
        {"step_no": 1, "given_at": "9999-01-01T00:00"},
        {"step_no": 1, "extra": 1},
    ):
        assert clinician.post(f"/api/desensitization/{sid}/steps", json=payload).status_code == 422, payload
    for payload in (
        {"step_no": 1, "severity": "mild", "minutes_into_step": -1},
        {"step_no": 1, "severity": "x"},
    ):
        assert clinician.post(f"/api/desensitization/{sid}/reactions", json=payload).status_code == 422
    assert clinician.post("/api/desensitization/999/steps", json={"step_no": 1}).status_code == 404
    assert clinician.post(f"/api/desensitization/{sid}/finish", json={"outcome": "done"}).status_code == 422


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
    assert nurse.post(f"/desensitization/{sid}/steps/1").status_code == 303
    nurse.post(f"/desensitization/{sid}/reactions", {"step_no": "2", "severity": "moderate"})
    r = nurse.post(f"/desensitization/{sid}/steps/2")
    assert r.status_code == 422 and "stopped the protocol" in r.text
    assert "Mark given" not in nurse.get(f"/desensitization/{sid}").text


def test_breakthrough_graded_from_findings(nurse: WebClient, clinician: WebClient, registry: Any) -> None:
    _, sid = _session(clinician)
    assert _mark(nurse, sid, 1).status_code == 303
    page = nurse.get(f"/desensitization/{sid}").text
    assert 'name="findings" value="wheeze"' in page and 'name="spo2_pct"' in page
    form = {
        "step_no": "1",
        "findings": "wheeze",
        "severity": "mild",
        "idempotency_key": _key(page, f"/desensitization/{sid}/reactions"),
    }
    r = nurse.post(f"/desensitization/{sid}/reactions", form)
    assert r.status_code == 422 and "the findings grade moderate" in r.text  # the grade is computed
    r = nurse.post(f"/desensitization/{sid}/reactions", {**form, "severity": "", "spo2_pct": "93"})
    assert r.status_code == 303
    text = html_text(nurse.get(f"/desensitization/{sid}").text)
    assert "Grade: moderate (brown2004, computed from the findings)" in text and "SpO2 93 %" in text
    with registry.session() as s:
        assert s.scalars(select(m.Reaction.grade)).one() == "moderate"


# ------------------------------------------------------------- reaction record: treatments, vitals, tryptase


def _reaction_form(page: str, sid: int, **form: str) -> dict[str, str]:
    return {"idempotency_key": _key(page, f"/desensitization/{sid}/reactions"), **form}


def test_reaction_with_treatments_vitals_tryptase_and_baseline(
    nurse: WebClient, clinician: WebClient, registry: Any
) -> None:
    _, sid = _session(clinician)
    page = nurse.get(f"/desensitization/{sid}").text
    assert 'name="tryptase_ng_ml"' in page and 'name="temperature_c"' in page and 'name="tr_drug_0"' in page
    assert "Body temperature (°C)" in html_text(page) and "SpO2 &le; 92 %" in page
    r = nurse.post(
        f"/desensitization/{sid}/baseline",
        {"idempotency_key": _key(page, f"/desensitization/{sid}/baseline"), "tryptase_ng_ml": "4.4",
         "systolic_bp_mmhg": "124", "diastolic_bp_mmhg": "80"},
    )  # fmt: skip
    assert r.status_code == 303
    assert _mark(nurse, sid, 1).status_code == 303
    at(10)
    page = nurse.get(f"/desensitization/{sid}").text
    form = _reaction_form(
        page, sid, step_no="1", findings="wheeze", spo2_pct="90", systolic_bp_mmhg="112",
        diastolic_bp_mmhg="70",
        heart_rate_bpm="118", temperature_c="37.3", tryptase_ng_ml="14.2", onset_at="2026-11-21T09:08",
        tr_drug_0="epinephrine", tr_dose_0="0.5", tr_unit_0="mg", tr_route_0="IM", tr_given_at_0="09:09",
        tr_drug_1="salbutamol", tr_dose_1="4", tr_unit_1="puffs", tr_route_1="inhaled", tr_given_at_1="",
        tr_drug_2="", tr_dose_2="", tr_unit_2="", tr_route_2="", tr_given_at_2="",
    )  # fmt: skip
    r = nurse.post(f"/desensitization/{sid}/reactions", form)
    assert r.status_code == 303, html_text(r.text)[:800]
    text = html_text(nurse.get(f"/desensitization/{sid}").text)
    assert "Grade: severe (brown2004, computed from the findings)" in text and "SECONDARY" in text
    assert "Endophenotype: type I" in text
    assert (
        "SpO2 90 %" in text
        and "Body temperature 37.3 °C" in text
        and "Diastolic blood pressure 70 mmHg" in text
    )
    assert "Tryptase 14.2 ng/mL" in text and "(baseline 4.4 ng/mL)" in text
    assert "epinephrine" in text and "0.5 mg" in text and "salbutamol" in text and "4 puffs" in text
    assert "tryptase 4.4 ng/mL" in text  # the baseline in the session facts
    assert "No resumption today" in text
    with registry.session() as s:
        rx = s.scalars(select(m.Reaction)).one()
        assert [t["drug"] for t in rx.treatments_given] == ["epinephrine", "salbutamol"]
        assert rx.vital_signs["temperature_c"] == "37.3" and str(rx.tryptase_ng_ml) == "14.2"


@pytest.mark.parametrize(
    ("form", "field", "words"),
    [
        ({"temperature_c": "420"}, "temperature_c", "[25, 45] °C"),
        ({"tryptase_ng_ml": "-1"}, "tryptase_ng_ml", "ng/mL"),
        ({"tr_drug_0": "x" * 5000, "tr_dose_0": "1", "tr_unit_0": "mg", "tr_route_0": "IV"},
         "treatments.0.drug",
         "at most 120 characters"),
        ({"tr_drug_0": "a", "tr_dose_0": "1", "tr_unit_0": "kg", "tr_route_0": "IV"},
         "treatments.0.unit", "kg"),
        ({"tr_drug_1": "a", "tr_dose_1": "1", "tr_unit_1": "mg", "tr_route_1": "IV"}, "treatments.0.drug",
         "from the first one"),
    ],
)  # fmt: skip
def test_bad_reaction_values_show_next_to_their_field(
    nurse: WebClient, clinician: WebClient, registry: Any, form: dict[str, str], field: str, words: str
) -> None:
    _, sid = _session(clinician)
    assert _mark(nurse, sid, 1).status_code == 303
    page = nurse.get(f"/desensitization/{sid}").text
    r = nurse.post(
        f"/desensitization/{sid}/reactions", _reaction_form(page, sid, step_no="1", findings="wheeze", **form)
    )
    assert r.status_code == 422
    assert words in r.text and 'class="field-error"' in r.text
    if not field.startswith("treatments"):
        assert f'id="e-bt-{field}"' in r.text  # the message is next to its field
    with registry.session() as s:
        assert s.scalar(select(func.count()).select_from(m.Reaction)) == 0


HOSTILE = [
    " ",
    "-0",
    "1e9999",
    "NaN",
    "inf",
    "0x10",
    "<script>",
    "'; drop table reactions;--",
    "\x00",
    "٣",
    "9" * 400,
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_reaction_and_baseline_values_are_never_500(
    nurse: WebClient, clinician: WebClient, value: str
) -> None:
    _, sid = _session(clinician)
    assert _mark(nurse, sid, 1).status_code == 303
    for name in ("temperature_c", "tryptase_ng_ml", "diastolic_bp_mmhg", "tryptase_at", "scale", "phenotype",
                 "bronchodilator_response", "tr_drug_0", "tr_dose_0", "tr_unit_0", "tr_route_0",
                 "tr_given_at_0",
                 "tr_drug_7", "treatments"):  # fmt: skip
        r = nurse.post(
            f"/desensitization/{sid}/reactions", {"step_no": "1", "findings": "wheeze", name: value}
        )
        assert r.status_code in (303, 422), (name, value, r.status_code)  # 303: a plausible value (-0)
        b = nurse.post(f"/desensitization/{sid}/baseline", {"temperature_c": value, "tryptase_ng_ml": value})
        assert b.status_code in (303, 422), (value, b.status_code)


def test_api_baseline_and_reaction_with_treatments(clinician: WebClient) -> None:
    _, sid = _session(clinician)
    r = clinician.post(f"/api/desensitization/{sid}/baseline", json={"tryptase_ng_ml": "5.0"})
    assert r.status_code == 201 and r.json()["baseline"]["tryptase_ng_ml"] == 5.0
    r = clinician.post(f"/api/desensitization/{sid}/baseline", json={"temperature_c": 420})
    assert r.status_code == 422 and "temperature_c" in r.text
    clinician.post(f"/api/desensitization/{sid}/steps", json={"step_no": 1})
    r = clinician.post(
        f"/api/desensitization/{sid}/reactions",
        json={"step_no": 1, "findings": ["wheeze"], "spo2_pct": 90,
              "treatments": [{"drug": "epinephrine", "dose": "0.5", "unit": "mg", "route": "IM"}]},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["grade"]["grade"] == "severe"
    view = clinician.get(f"/api/desensitization/{sid}").json()
    assert view["reactions"][0]["treatments"][0]["drug"] == "epinephrine"
