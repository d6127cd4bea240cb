"""The front desk through the service layer (`immunoplan.services.records.front_desk`): the late-shot list
(who is due or late, how late, and the next dose the missed-dose rule gives, the engine's own answer), its
filters, no-shows (recorded, refused twice, refused in the future, voided), reminders (.ics parsed with
icalendar, clinic-local dates) and CSV exports neutralised against spreadsheet formulas.

The clinic clock is pinned (Europe/Oslo, 2026-12-01 10:00); courses are built with the record services.
"""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar

from immunoplan import clock, reference
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.registry.db import Registry, open_registry
from immunoplan.services import records as rec
from immunoplan.services.records import corrections
from immunoplan.services.records import front_desk as fd
from immunoplan.services.records import injections as inj
from immunoplan.services.records.front_desk import late_list

ZONE = "Europe/Oslo"
NOW = "2026-12-01T10:00"
TODAY = date(2026, 12, 1)
#: names that a spreadsheet would run as formulas (a tab or CR first is stripped by the input models, and
#: `test_neutralise_cell` covers them)
HOSTILE = ('=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)")


@pytest.fixture(autouse=True)
def clinic(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("IMMUNOPLAN_TIMEZONE", ZONE)
    with clock.frozen(NOW):
        yield


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("front_desk") / "template.sqlite"
    open_registry(path).dispose()
    return path


@pytest.fixture
def reg(template: Path, tmp_path: Path) -> Iterator[Registry]:
    target = tmp_path / "front_desk.sqlite"
    shutil.copyfile(template, target)
    r = open_registry(target)
    yield r
    r.dispose()


def _course(
    reg: Registry,
    pid: str,
    first: str,
    weeks: int,
    *,
    name: str | None = None,
    mrn: str | None = None,
) -> int:
    """A weekly Alutard course (conventional build-up) with ``weeks`` injections from ``first``, each the
    dose the engine gives at that time (recorded with the clock at that time)."""
    with clock.frozen(f"{first}T08:00"):
        rec.register_patient(reg, "dr.a", pseudo_id=pid, sex="female", display_name=name, mrn=mrn)
        c = rec.plan_course(
            reg,
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
            nxt = inj.next_dose(reg, c["id"])
            inj.record_injection(
                reg, "nurse.kim", course_id=c["id"], given_at=at, dose_ml=str(nxt["dose_ml"]),
                vial=str(nxt["dose"]["vial"]),
            )  # fmt: skip
    return int(c["id"])


def _band(days: int) -> str:
    """The build-up missed-dose band for ``days`` since the last dose, read from the reference data."""
    for b in reference.load("scit_adjustment")["missed"]["norway"]["buildup"]["bands"]:
        if b["max_days"] is None or days <= b["max_days"]:
            return str(b["id"])
    raise AssertionError("no band")


def _rows(listing: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["pseudo_id"]: r for r in listing["injections"]}


# ------------------------------------------------------------------------------------------ late-shot list


def test_each_row_carries_the_missed_dose_rule_the_engine_fires_at_its_lateness(reg: Registry) -> None:
    cids = {
        "ON-TIME": _course(reg, "ON-TIME", "2026-11-24", 1, name="Ada On", mrn="100"),  # 7 days: due today
        "REPEAT": _course(reg, "REPEAT", "2026-11-03", 2),  # last 2026-11-10: 21 days
        "BACK-2": _course(reg, "BACK-2", "2026-09-22", 4),  # last 2026-10-13: 49 days
        "RESTART": _course(reg, "RESTART", "2026-08-01", 1),  # 122 days
    }
    listing = fd.late_shot_list(reg)
    assert listing["on"] == "2026-12-01" and listing["clinic_zone"] == ZONE
    assert listing["engine_at"] == "2026-12-01T10:00:00+01:00"  # today: the clinic clock now
    rows = _rows(listing)
    assert set(rows) == set(cids)
    assert [r["pseudo_id"] for r in listing["injections"]][0] == "RESTART"  # most overdue first
    on_time = rows["ON-TIME"]
    assert (on_time["status"], on_time["days_overdue"], on_time["next_due_on"]) == ("due", 0, "2026-12-01")
    assert (on_time["display_name"], on_time["mrn"]) == ("Ada On", "100")
    assert on_time["last_injection_at"] == "2026-11-24T09:00:00+01:00"
    assert on_time["on_time"] is None  # not late: nothing to compare
    expected = {"ON-TIME": 7, "REPEAT": 21, "BACK-2": 49, "RESTART": 122}
    for pid, days in expected.items():
        r = rows[pid]
        engine = inj.next_dose(reg, cids[pid])
        assert r["next"]["rule"]["id"] == engine["rule"]["id"] == _band(days), pid
        assert r["next"]["dose"]["dose"] == engine["dose"]["dose"], pid
        assert r["next"]["rule"]["source"] and r["next"]["rule"]["status"] in ("VERIFIED", "SECONDARY")
        assert r["status"] == ("due" if pid == "ON-TIME" else "late")
    assert rows["ON-TIME"]["next"]["dose"]["dose"] == 40  # on time: the schedule's next step
    assert rows["REPEAT"]["next"]["dose"]["dose"] == 40 and rows["REPEAT"]["on_time"]["dose"]["dose"] == 80
    back = rows["BACK-2"]  # given 20, 40, 80, 200: two steps back from 200 is 40; on time it was 400
    assert back["next"]["rule"]["text"] == "6-8 weeks: go back two dose steps"
    assert back["next"]["dose"]["dose"] == 40 and back["on_time"]["dose"]["dose"] == 400
    assert back["days_overdue"] == 42  # due 2026-10-20
    assert rows["RESTART"]["next"]["rule"]["id"] == "norway-buildup-restart"
    assert rows["RESTART"]["next"]["dose"]["dose"] == 20  # the first dose again


def test_another_date_is_computed_at_that_clinic_date(reg: Registry) -> None:
    cid = _course(reg, "LATER", "2026-11-24", 1)
    assert fd.late_shot_list(reg, on="2026-11-30")["injections"] == []  # due 2026-12-01
    later = fd.late_shot_list(reg, on="2026-12-20")
    assert later["engine_at"] == "2026-12-20T12:00:00+01:00"
    (row,) = later["injections"]
    assert (row["course_id"], row["days_overdue"], row["status"]) == (cid, 19, "late")
    assert row["next"]["rule"]["id"] == _band(26) == "norway-buildup-repeat"
    assert inj.next_dose(reg, cid, "2026-12-20T12:00")["rule"]["id"] == row["next"]["rule"]["id"]
    ahead = fd.late_shot_list(reg, on="2026-11-28", window_days=3)["injections"]
    assert [(r["status"], r["days_overdue"]) for r in ahead] == [("due", 0)]


def test_filters_by_product_and_status(reg: Registry) -> None:
    _course(reg, "DUE", "2026-11-24", 1)
    _course(reg, "LATE", "2026-11-03", 2)
    rec.register_patient(reg, "dr.a", pseudo_id="OTHER", sex="male")
    other = rec.plan_course(  # no catalogue product: listed, but the engine cannot answer
        reg, "dr.a", pseudo_id="OTHER", kind="SCIT", product="imported extract", interval_days=7
    )
    inj.record_injection(
        reg, "n", course_id=other["id"], given_at="2026-11-20T10:00", dose="20", dose_unit="SQ-U",
        volume_ml="0.2",
    )  # fmt: skip
    every = _rows(fd.late_shot_list(reg))
    assert set(every) == {"DUE", "LATE", "OTHER"}
    assert every["OTHER"]["next"]["kind"] == "cannot-answer" and every["OTHER"]["next"]["warnings"]
    alutard = fd.late_shot_list(reg, product_id="alutard-sq-hdm")
    assert set(_rows(alutard)) == {"DUE", "LATE"} and alutard["product_id"] == "alutard-sq-hdm"
    assert fd.late_shot_list(reg, product_id="hdm-tyrosine-ultrarush")["injections"] == []
    assert set(_rows(fd.late_shot_list(reg, status="late"))) == {"LATE", "OTHER"}
    assert set(_rows(fd.late_shot_list(reg, status="due"))) == {"DUE"}
    # the grace days move a late course into "due", in SQL and in due_status alike
    assert set(_rows(fd.late_shot_list(reg, status="due", grace_days=14))) == {"DUE", "LATE", "OTHER"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("on", "someday"),
        ("on", "9999-12-31"),
        ("product_id", "<script>"),
        ("status", "overdue"),
        ("grace_days", -1),
        ("window_days", 10**23),
    ],
)
def test_hostile_filters_are_refused_naming_the_field(reg: Registry, field: str, value: Any) -> None:
    with pytest.raises(InvalidInput) as exc:
        fd.late_shot_list(reg, **{field: value})
    assert exc.value.field == field


def test_the_list_is_bounded_and_says_so(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    _course(reg, "A", "2026-11-24", 1)
    _course(reg, "B", "2026-11-03", 2)
    monkeypatch.setattr(late_list, "MAX_ROWS", 1)
    listing = fd.late_shot_list(reg)
    assert (len(listing["injections"]), listing["total"], listing["truncated"]) == (1, 2, True)


def test_list_due_injections_still_answers_as_before(reg: Registry) -> None:
    _course(reg, "OLD", "2026-11-03", 2)
    (old,) = rec.list_due_injections(reg)
    (new,) = fd.late_shot_list(reg)["injections"]
    for key in ("pseudo_id", "course_id", "kind", "product", "next_due_on", "days_overdue", "status"):
        assert old[key] == new[key], key


# ------------------------------------------------------------------------------------------------ no-shows


def test_a_no_show_is_recorded_shown_on_the_list_and_refused_twice(reg: Registry) -> None:
    cid = _course(reg, "NS", "2026-11-03", 2)  # due 2026-11-17
    r = fd.record_no_show(reg, "desk.eva", {"course_id": cid, "note": "phoned, no answer"})
    assert (r["due_on"], r["recorded_by"], r["pseudo_id"], r["note"]) == (
        "2026-11-17", "desk.eva", "NS", "phoned, no answer"
    )  # fmt: skip
    assert r["recorded_at"] == "2026-12-01T10:00:00+01:00" and r["next_due_on"] == "2026-11-17"
    (row,) = fd.late_shot_list(reg)["injections"]
    assert [n["id"] for n in row["no_shows"]] == [r["id"]]
    assert row["next"]["rule"]["id"] == _band(21)  # a no-show changes no dose
    with pytest.raises(Conflict) as exc:
        fd.record_no_show(reg, "desk.bo", fd.NoShowIn(course_id=cid, due_on="2026-11-17"))
    assert exc.value.record == f"no-show {r['id']}" and "desk.eva" in exc.value.reason
    # another missed due date of the same course is another no-show
    assert fd.record_no_show(reg, "desk.bo", {"course_id": cid, "due_on": "2026-11-24"})["id"] != r["id"]


def test_a_re_post_with_the_same_key_records_one_no_show(reg: Registry) -> None:
    cid = _course(reg, "KEY", "2026-11-03", 2)
    first = fd.record_no_show(reg, "desk", {"course_id": cid}, idempotency_key="no-show-key-1")
    again = fd.record_no_show(reg, "desk", {"course_id": cid}, idempotency_key="no-show-key-1")
    assert again["id"] == first["id"] and again.get("replayed") is True


def test_a_no_show_in_the_future_or_on_a_non_immunotherapy_course_is_refused(reg: Registry) -> None:
    cid = _course(reg, "FUT", "2026-11-24", 1)  # due today
    with pytest.raises(InvalidInput) as exc:
        fd.record_no_show(reg, "desk", {"course_id": cid, "due_on": "2026-12-02"})
    assert exc.value.field == "due_on" and "after today" in exc.value.reason
    assert fd.record_no_show(reg, "desk", {"course_id": cid})["due_on"] == "2026-12-01"  # today is allowed
    rec.register_patient(reg, "dr.a", pseudo_id="RDD", sex="male")
    rdd = rec.plan_course(reg, "dr.a", pseudo_id="RDD", kind="drug_desensitization", drug="carboplatin")
    with pytest.raises(InvalidInput) as exc:
        fd.record_no_show(reg, "desk", {"course_id": rdd["id"], "due_on": "2026-11-30"})
    assert exc.value.field == "course_id" and "not an immunotherapy course" in exc.value.reason
    with pytest.raises(InvalidInput) as exc:
        fd.record_no_show(reg, "desk", {"course_id": 999999})
    assert exc.value.field == "course_id"
    with pytest.raises(InvalidInput) as exc:
        fd.record_no_show(reg, "desk", {"course_id": cid, "note": "x" * 501})
    assert exc.value.field == "note"


def test_a_no_show_on_a_day_an_injection_was_given_is_a_conflict(reg: Registry) -> None:
    cid = _course(reg, "CAME", "2026-11-03", 2)
    with pytest.raises(Conflict) as exc:
        fd.record_no_show(reg, "desk", {"course_id": cid, "due_on": "2026-11-10"})
    assert exc.value.record and exc.value.record.startswith("injection ")


def test_a_voided_no_show_leaves_the_list_and_can_be_recorded_again(reg: Registry) -> None:
    cid = _course(reg, "VOID", "2026-11-03", 2)
    r = fd.record_no_show(reg, "desk", {"course_id": cid})
    v = corrections.void(reg, "desk", "no-show", r["id"], "recorded for the wrong patient")
    assert v["kind"] == "no-show" and v["voided_by"] == "desk"
    assert fd.late_shot_list(reg)["injections"][0]["no_shows"] == []
    assert fd.record_no_show(reg, "desk", {"course_id": cid})["id"] != r["id"]
    with pytest.raises(InvalidInput) as exc:  # nothing of a no-show is amendable: void and record anew
        corrections.amend(reg, "desk", "no-show", r["id"], {"note": "x"}, "typo")
    assert exc.value.field == "kind"
    assert corrections.correction_view(reg, "no-show", r["id"])["voided"] is True


# ----------------------------------------------------------------------------------------------- reminders


def _events(data: bytes) -> list[Any]:
    cal = Calendar.from_ical(data)
    return [c for c in cal.walk() if c.name == "VEVENT"]


def test_reminders_ics_has_one_all_day_event_per_due_visit_on_the_clinic_date(reg: Registry) -> None:
    soon = _course(reg, "SOON", "2026-11-26", 1, name="Bea Secret", mrn="MRN-77")  # due 2026-12-03
    _course(reg, "LATE", "2026-11-03", 2)  # late: on the late-shot list, not reminded
    patient = fd.late_shot_list(reg, window_days=7)["injections"]
    pid = next(r["patient_id"] for r in patient if r["course_id"] == soon)
    data = fd.reminders_ics(reg, patient_id=pid)
    cal = Calendar.from_ical(data)
    assert str(cal["X-WR-TIMEZONE"]) == ZONE
    (ev,) = _events(data)
    assert ev.decoded("dtstart") == date(2026, 12, 3)  # VALUE=DATE: the clinic-local due date
    assert str(ev["summary"]) == fd.reminders.SUMMARY == "Allergy injection appointment"
    assert str(ev["uid"]) == f"immunoplan-course-{soon}-due-2026-12-03@immunoplan"
    text = data.decode()
    for secret in ("Bea Secret", "MRN-77", "Alutard", "SQ-U", "SOON", "alutard"):
        assert secret not in text, secret  # a reminder leaves the hospital: nothing clinical or identifying
    feed = _events(fd.reminders_ics(reg))  # the clinic-wide feed: pseudonymous ids tell events apart
    assert [str(e["summary"]) for e in feed] == ["Allergy injection appointment (SOON)"]
    assert _events(fd.reminders_ics(reg, days_ahead=1)) == []  # 2026-12-03 is two days ahead
    with pytest.raises(InvalidInput) as exc:
        fd.reminders_ics(reg, patient_id=999999)
    assert exc.value.field == "patient_id"
    with pytest.raises(InvalidInput):
        fd.reminders_ics(reg, days_ahead=10**6)


def test_reminders_use_the_clinic_date_not_the_utc_date(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMMUNOPLAN_TIMEZONE", "America/Los_Angeles")
    _course(reg, "LA", "2026-11-24", 1)  # due 2026-12-01
    with clock.frozen("2026-12-01T23:30"):  # 2026-12-02 07:30 UTC: still 2026-12-01 in the clinic
        (ev,) = _events(fd.reminders_ics(reg))
        assert ev.decoded("dtstart") == date(2026, 12, 1)
        assert str(Calendar.from_ical(fd.reminders_ics(reg))["X-WR-TIMEZONE"]) == "America/Los_Angeles"
        assert fd.late_shot_list(reg)["on"] == "2026-12-01"


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_exports_neutralise_cells_that_start_like_a_formula(reg: Registry) -> None:
    for i, hostile in enumerate(HOSTILE):
        _course(reg, f"H-{i}", "2026-11-26", 1, name=hostile, mrn=f"{hostile}{i}")
    mail = _csv(fd.reminders_csv(reg))
    assert [r["display_name"] for r in mail] == ["'" + h for h in HOSTILE]
    assert all(r["mrn"].startswith("'") for r in mail)
    assert list(mail[0]) == list(fd.REMINDER_COLUMNS)
    assert mail[0]["due_on"] == "2026-12-03" and mail[0]["clinic_time_zone"] == ZONE
    assert mail[0]["weekday"] == "Thursday"
    late = _csv(fd.late_shot_csv(fd.late_shot_list(reg, window_days=7)))
    assert list(late[0]) == list(fd.CSV_COLUMNS)
    assert sorted(r["display_name"] for r in late) == sorted("'" + h for h in HOSTILE)
    assert all(r["rule_id"] and r["next_dose"] for r in late)
    assert all(not c.startswith(fd.FORMULA_STARTS) for r in late + mail for c in r.values() if c)


def test_neutralise_cell() -> None:
    assert [fd.neutralise_cell(x) for x in ("=1", "+1", "-1", "@a", "\t", "\r", "a=1", None, 5)] == [
        "'=1", "'+1", "'-1", "'@a", "'\t", "'\r", "a=1", "", "5"
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------------- CLI


def test_cli_due_on_a_date_with_filters_csv_and_json(reg: Registry, cli: Any, tmp_path: Path) -> None:
    _course(reg, "C-DUE", "2026-11-24", 1)
    _course(reg, "C-LATE", "2026-09-22", 4)
    db = str(tmp_path / "front_desk.sqlite")
    r = cli("due", "--db", db, "--on", "2026-12-01", "--json")
    assert r.code == 0, r.stderr
    assert [(x["pseudo_id"], x["status"]) for x in r.json["injections"]] == [
        ("C-LATE", "late"),
        ("C-DUE", "due"),
    ]
    assert r.json["injections"][0]["next"]["rule"]["id"] == "norway-buildup-back-2"
    out = tmp_path / "late.csv"
    r = cli("due", "--db", db, "--status", "late", "--product", "alutard-sq-hdm", "--csv", out, "--json")
    assert r.code == 0 and r.json["csv"] == str(out)
    assert [x["pseudo_id"] for x in _csv(out.read_text())] == ["C-LATE"]
    human = cli("due", "--db", db, "--as-of", "2026-12-01")  # the old option name still works
    assert human.code == 0 and "C-LATE" in human.stdout and "norway-buildup-back-2" in human.stdout
    for bad in (
        ("--status", "overdue"),
        ("--product", "nope"),
        ("--on", "someday"),
        ("--csv", tmp_path / "no/x.csv"),
    ):
        r = cli("due", "--db", db, *bad)
        assert r.code == 2 and r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1, bad


def test_cli_no_show_record_and_reminders(reg: Registry, cli: Any, tmp_path: Path) -> None:
    late = _course(reg, "C-NS", "2026-11-03", 2)
    _course(reg, "C-SOON", "2026-11-26", 1)
    db = str(tmp_path / "front_desk.sqlite")
    args = ("--course", late, "--due-on", "2026-11-17", "--note", "ill", "--by", "desk.eva", "--json")
    r = cli("no-show", "record", "--db", db, *args)
    assert r.code == 0, r.stderr
    assert (r.json["course_id"], r.json["due_on"], r.json["recorded_by"]) == (late, "2026-11-17", "desk.eva")
    again = cli("no-show", "record", "--db", db, "--course", late, "--json")
    assert again.code == 2 and "already recorded" in again.stderr
    future = cli("no-show", "record", "--db", db, "--course", late, "--due-on", "2026-12-05")
    assert future.code == 2 and future.stderr.startswith("error: due_on")
    ics, mail = tmp_path / "r.ics", tmp_path / "r.csv"
    r = cli("reminders", "--db", db, "--ics", ics, "--csv", mail, "--json")
    assert r.code == 0, r.stderr
    assert (r.json["count"], r.json["from"], r.json["to"]) == (1, "2026-12-01", "2026-12-15")
    assert [e.decoded("dtstart") for e in _events(ics.read_bytes())] == [date(2026, 12, 3)]
    assert [x["pseudo_id"] for x in _csv(mail.read_text())] == ["C-SOON"]
    assert cli("reminders", "--db", db).code == 2  # neither --ics nor --csv
    bad = cli("reminders", "--db", db, "--ics", ics, "--patient", "999999")
    assert bad.code == 2 and bad.stderr.startswith("error: --patient")
    assert cli("reminders", "--db", db, "--csv", mail, "--days-ahead", "-1").code == 2
    huge = cli("no-show", "record", "--db", db, "--course", "99999999999999999999999")
    assert huge.code == 2 and huge.stderr.startswith("error: --course")
