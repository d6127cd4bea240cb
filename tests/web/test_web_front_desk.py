"""The front desk on the web: the late-shot list page (filters, the missed-dose rule per row), its printable
page, the CSV downloads, the no-show button (POST/redirect/GET, idempotency key, 409 for a second no-show),
the per-patient .ics, the roles (nurse, clinician, admin; not researcher, not pharmacist) and hostile query
parameters answered 422, never 500."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from icalendar import Calendar
from web_helpers import WebClient, html_text

from immunoplan import clock
from immunoplan.services import records as rec
from immunoplan.services.records import front_desk as fd
from immunoplan.services.records import injections as inj

NOW = "2026-12-01T10:00"


@pytest.fixture(autouse=True)
def clinic(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("IMMUNOPLAN_TIMEZONE", "Europe/Oslo")
    with clock.frozen(NOW):
        yield


def _course(registry: Any, pid: str, first: str, weeks: int, name: str | None = None) -> tuple[int, int]:
    with clock.frozen(f"{first}T08:00"):
        p = rec.register_patient(registry, "dr.a", pseudo_id=pid, sex="female", display_name=name)
        c = rec.plan_course(
            registry,
            "dr.a",
            pseudo_id=pid,
            kind="SCIT",
            product="Alutard SQ house dust mite",
            product_id="alutard-sq-hdm",
            regimen_id="conventional",
            started_on=first,
            dose_unit="SQ-U",
        )
    day = date.fromisoformat(first)
    for k in range(weeks):
        at = f"{(day + timedelta(days=7 * k)).isoformat()}T09:00"
        with clock.frozen(at):
            nxt = inj.next_dose(registry, c["id"])
            inj.record_injection(
                registry, "nurse.kim", course_id=c["id"], given_at=at, dose_ml=str(nxt["dose_ml"]),
                vial=str(nxt["dose"]["vial"]),
            )  # fmt: skip
    return int(p["id"]), int(c["id"])


@pytest.fixture
def clinic_list(registry: Any) -> dict[str, tuple[int, int]]:
    return {
        "DUE-1": _course(registry, "DUE-1", "2026-11-24", 1, name="Ada Due"),  # due today
        "LATE-1": _course(registry, "LATE-1", "2026-09-22", 4, name="Bo Late"),  # 49 days: back 2 steps
    }


def _key(html: str, course_id: int) -> str:
    row = html.split(f'data-course="{course_id}"', 1)[1].split("</tr>", 1)[0]
    found = re.search(r'name="idempotency_key" value="([^"]+)"', row)
    assert found, "no no-show form in the row"
    return found.group(1)


@pytest.mark.parametrize("role", ["nurse", "clinician", "admin"])
def test_the_desk_roles_see_the_list_with_the_missed_dose_rule(
    as_role: Any, clinic_list: dict[str, tuple[int, int]], role: str
) -> None:
    c = as_role(role)
    r = c.get("/front-desk")
    assert r.status_code == 200, r.text[:500]
    text = html_text(r.text)
    assert "Ada Due" in text and "Bo Late" in text
    assert "norway-buildup-back-2" in text and "6-8 weeks: go back two dose steps" in text
    assert "on time it was 400 SQ-U" in text and "Europe/Oslo" in text
    assert 'href="/front-desk"' in c.get("/patients").text  # the navigation link
    assert c.get("/front-desk/print").status_code == 200


@pytest.mark.parametrize("role", ["researcher", "pharmacist"])
def test_other_roles_are_refused(as_role: Any, clinic_list: dict[str, tuple[int, int]], role: str) -> None:
    c = as_role(role)
    pid, cid = clinic_list["LATE-1"]
    for url in ("/front-desk", "/front-desk/print", "/front-desk/late-shots.csv", "/front-desk/reminders.csv",
                f"/front-desk/patients/{pid}/reminders.ics"):  # fmt: skip
        assert c.get(url).status_code == 403, url
    r = c.post("/front-desk/no-shows", data={"course_id": cid, "due_on": "2026-10-20"})
    assert r.status_code == 403
    assert "/front-desk" not in c.get("/account").text


def test_filters_and_the_printable_page(nurse: WebClient, clinic_list: dict[str, tuple[int, int]]) -> None:
    late = html_text(nurse.get("/front-desk?status=late").text)
    assert "Bo Late" in late and "Ada Due" not in late
    none = html_text(nurse.get("/front-desk?product_id=hdm-tyrosine-ultrarush").text)
    assert "Nobody is due or late for this product" in none
    before = html_text(nurse.get("/front-desk?on=2026-10-19").text)
    assert "Bo Late" not in before
    printed = nurse.get("/front-desk/print?status=late")
    assert printed.status_code == 200 and "@media print" in printed.text
    assert "Late-shot list for 2026-12-01" in html_text(printed.text)
    assert 'data-testid="no-show"' not in printed.text  # no buttons on paper


def test_csv_download(nurse: WebClient, clinic_list: dict[str, tuple[int, int]]) -> None:
    r = nurse.get("/front-desk/late-shots.csv?status=late")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["pseudo_id"], x["rule_id"], x["next_dose"]) for x in rows] == [
        ("LATE-1", "norway-buildup-back-2", "40")
    ]
    mail = nurse.get("/front-desk/reminders.csv?days_ahead=7")
    assert mail.status_code == 200 and list(csv.DictReader(io.StringIO(mail.text)))[0]["pseudo_id"] == "DUE-1"


def test_per_patient_ics(nurse: WebClient, clinic_list: dict[str, tuple[int, int]]) -> None:
    pid, cid = clinic_list["DUE-1"]
    r = nurse.get(f"/front-desk/patients/{pid}/reminders.ics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/calendar")
    (ev,) = [c for c in Calendar.from_ical(r.content).walk() if c.name == "VEVENT"]
    assert ev.decoded("dtstart") == date(2026, 12, 1) and "Ada" not in r.text
    assert nurse.get("/front-desk/patients/999999/reminders.ics").status_code == 404


def test_no_show_button_posts_once_and_redirects_back(
    nurse: WebClient, registry: Any, clinic_list: dict[str, tuple[int, int]]
) -> None:
    _, cid = clinic_list["LATE-1"]
    page = nurse.get("/front-desk?status=late").text
    form = {"course_id": cid, "due_on": "2026-10-20", "status": "late", "note": "phoned",
            "idempotency_key": _key(page, cid)}  # fmt: skip
    r = nurse.post("/front-desk/no-shows", data=form)
    assert r.status_code == 303 and r.headers["location"].startswith("/front-desk?status=late&recorded=")
    again = nurse.post("/front-desk/no-shows", data=form)  # a double submit: the same key, one row
    assert again.status_code == 303 and again.headers["location"] == r.headers["location"]
    shown = html_text(nurse.get(r.headers["location"]).text)
    assert "recorded" in shown and "by nurse1: phoned" in shown
    (row,) = fd.late_shot_list(registry, status="late")["injections"]
    assert len(row["no_shows"]) == 1
    other_tab = dict(form, idempotency_key="another-tab-key-1")
    refused = nurse.post("/front-desk/no-shows", data=other_tab)
    assert refused.status_code == 409 and "already recorded" in html_text(refused.text)
    ns_id = r.headers["location"].rsplit("=", 1)[1]
    assert nurse.get(f"/corrections/no-show/{ns_id}").status_code == 200  # corrected like any entry
    voided = nurse.post(
        f"/corrections/no-show/{ns_id}/void", data={"void_reason": "wrong patient", "next": "/front-desk"}
    )
    assert voided.status_code == 303
    assert fd.late_shot_list(registry, status="late")["injections"][0]["no_shows"] == []
    future = nurse.post(
        "/front-desk/no-shows", data=dict(form, due_on="2026-12-24", idempotency_key="k-fut-01")
    )
    assert future.status_code == 422 and "after today" in html_text(future.text)


@pytest.mark.parametrize(
    "query",
    [
        "on=9999-99-99",
        "on=" + "9" * 500,
        "on=0001-01-01",
        "product_id=%3Cscript%3Ealert(1)%3C/script%3E",
        "status=overdue",
        "status[]=late",
        "on=%00",
    ],
)
def test_hostile_query_parameters_answer_422_not_500(
    nurse: WebClient, clinic_list: dict[str, tuple[int, int]], query: str
) -> None:
    for path in ("/front-desk", "/front-desk/print", "/front-desk/late-shots.csv"):
        r = nurse.get(f"{path}?{query}")
        if query == "status[]=late":  # an unknown parameter is ignored
            assert r.status_code == 200, (path, r.status_code)
            continue
        assert r.status_code == 422, (path, query, r.status_code)
        assert "<script>alert" not in r.text
    for bad in ("days_ahead=-1", "days_ahead=abc", "days_ahead=1e400", "on=someday"):
        assert nurse.get(f"/front-desk/reminders.csv?{bad}").status_code == 422, bad


@pytest.mark.parametrize(
    "data",
    [
        {"course_id": "abc"},
        {"course_id": "99999999999999"},
        {"course_id": "999999"},
        {"course_id": "1", "due_on": "not a date"},
        {"course_id": "1", "note": "x" * 501},
        {},
    ],
)
def test_hostile_no_show_posts_answer_422_not_500(
    nurse: WebClient, clinic_list: dict[str, tuple[int, int]], data: dict[str, str]
) -> None:
    r = nurse.post("/front-desk/no-shows", data=data)
    assert r.status_code == 422, (data, r.status_code, r.text[:300])


def test_the_pages_are_labelled(nurse: WebClient, clinic_list: dict[str, tuple[int, int]]) -> None:
    from test_web_accessibility import _check

    assert _check(nurse.get("/front-desk").text, "/front-desk") >= 5  # 3 filters + a note per row
    _check(nurse.get("/front-desk/print").text, "/front-desk/print")
    _check(nurse.get("/front-desk?status=overdue").text, "/front-desk?status=overdue")
