"""Visits through the service layer: one transaction for the visit and all its results, GLI with the age at
the visit, a same-day visit refused with a Conflict naming it and corrected by amending it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from immunoplan import clock
from immunoplan.clinical import questionnaires, spirometry
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry, open_registry
from immunoplan.services import records as rec
from immunoplan.services.records import corrections, visits

SPIRO = {"height_cm": "160", "fev1_l": "2.5", "fvc_l": "3.2", "sex": "female"}


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Registry]:
    r = open_registry(tmp_path / "visits.sqlite")
    with clock.frozen("2026-11-20T10:00"):
        yield r
    r.dispose()


@pytest.fixture
def pid(reg: Registry) -> int:
    p = rec.register_patient(reg, "dr.a", pseudo_id="V-1", sex="female", birth_date="2012-06-15")
    return int(p["id"])


def _count(reg: Registry, model: type) -> int:
    with reg.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_visit_and_all_results_in_one_transaction(reg: Registry, pid: int) -> None:
    out = visits.record_visit_with_results(
        reg,
        "nurse",
        pid,
        {"code": "baseline", "visit_on": "2026-11-02", "act": "3,3,4,3,3", "feno_ppb": "40.2", **SPIRO},
    )
    assert out["questionnaires"]["ACT"]["score"] == 16
    with reg.session() as s:
        kinds = sorted(s.scalars(select(m.Measurement.kind)))
        uses = set(s.scalars(select(m.AuditEntry.use_case).where(m.AuditEntry.table_name != "patients")))
    assert kinds == ["feno_ppb", "fev1_fvc_pct", "fev1_l", "fev1_pct_pred", "fvc_l"]
    assert uses == {"record_visit_with_results"}  # visit, questionnaire and measurements: one use case


def test_a_failing_questionnaire_leaves_no_visit_row(reg: Registry, pid: int) -> None:
    with pytest.raises(visits.VisitResultsInvalid) as exc:
        visits.record_visit_with_results(
            reg,
            "nurse",
            pid,
            {"code": "baseline", "visit_on": "2026-11-02", "act": "3,3,9,3,3", "acq5": "1,1", **SPIRO},
        )
    assert {e.field for e in exc.value.errors} == {"act", "acq5"}  # every engine error at once
    assert _count(reg, m.Visit) == 0
    assert _count(reg, m.Questionnaire) == 0
    assert _count(reg, m.Measurement) == 0


def test_bad_fields_are_refused_before_writing(reg: Registry, pid: int) -> None:
    for data, field in (
        ({"code": "week99", "visit_on": "2026-11-02", "act": "3,3,4,3,3"}, "code"),
        ({"code": "baseline", "visit_on": "0001-01-01", "act": "3,3,4,3,3"}, "visit_on"),
        ({"code": "baseline", "visit_on": "2026-11-02", "feno_ppb": "5000"}, "feno_ppb"),
        ({"code": "baseline", "visit_on": "2026-11-02", "fev1_l": "2.5"}, "height_cm"),
        ({"code": "baseline", "visit_on": "2026-11-02"}, "results"),
        ({"code": "baseline", "visit_on": "2026-11-02", "sige_kua_l": "3"}, "sige_allergen"),
    ):
        with pytest.raises(InvalidInput) as exc:
            visits.record_visit_with_results(reg, "nurse", pid, data)
        assert exc.value.field == field, data
    assert _count(reg, m.Visit) == 0


def test_gli_uses_the_age_at_the_visit_not_today(reg: Registry, pid: int) -> None:
    # born 2012-06-15: 13 on 2026-06-01 (the visit), 14 on 2026-11-20 (today, pinned)
    out = visits.record_visit_with_results(
        reg, "nurse", pid, {"code": "baseline", "visit_on": "2026-06-01", "act": "3,3,4,3,3", **SPIRO}
    )
    at_visit = to_jsonable(
        spirometry.spirometry(sex="female", age=13, height_cm="160", fev1_l="2.5", fvc_l="3.2")
    )
    today = to_jsonable(
        spirometry.spirometry(sex="female", age=14, height_cm="160", fev1_l="2.5", fvc_l="3.2")
    )
    assert at_visit["fev1"]["z"] != today["fev1"]["z"]  # the test can tell the two ages apart
    assert out["age_years_at_visit"] == 13
    assert out["spirometry"]["fev1"]["z"] == at_visit["fev1"]["z"]
    with reg.session() as s:
        fev1 = s.scalars(select(m.Measurement).where(m.Measurement.kind == "fev1_l")).one()
    assert fev1.z_score == float(at_visit["fev1"]["z"])
    act = to_jsonable(questionnaires.score("act", [3, 3, 4, 3, 3], age=13))
    assert out["questionnaires"]["ACT"]["warnings"] == act["warnings"]


def test_same_day_visit_is_a_conflict_naming_it_and_amending_it_works(reg: Registry, pid: int) -> None:
    first = visits.record_visit_with_results(
        reg, "nurse", pid, {"code": "week12", "visit_on": "2026-11-02", "act": "3,3,4,3,3"}
    )
    second = {"code": "week12", "visit_on": "2026-11-02", "act": "4,4,4,4,4", "acq5": "1,1,2,1,0"}
    with pytest.raises(Conflict) as exc:
        visits.record_visit_with_results(reg, "nurse", pid, second)
    assert exc.value.record == f"visit {first['id']}"
    assert corrections.parse_record_ref(exc.value.record) == ("visit", first["id"])
    assert _count(reg, m.Visit) == 1
    done = corrections.amend(reg, "dr.b", "visit", first["id"], second, "ACT re-entered: items mistyped")
    assert done["results"]["ACT"] == {"before": 16.0, "after": 20.0}
    with reg.session() as s:
        scores = dict(s.execute(select(m.Questionnaire.instrument, m.Questionnaire.score)).all())
        v = s.get(m.Visit, first["id"])
        assert v.amended_by == "dr.b" and v.amend_reason == "ACT re-entered: items mistyped"
    assert scores == {"ACT": 20.0, "ACQ-5": 1.0}
    assert _count(reg, m.Visit) == 1


def test_amending_a_visit_date_moves_its_results_and_refuses_a_duplicate(reg: Registry, pid: int) -> None:
    a = visits.record_visit_with_results(
        reg, "n", pid, {"code": "baseline", "visit_on": "2026-11-02", "act": "3,3,4,3,3"}
    )
    visits.record_visit_with_results(
        reg, "n", pid, {"code": "baseline", "visit_on": "2026-11-09", "act": "3,3,4,3,3"}
    )
    with pytest.raises(Conflict):
        corrections.amend(reg, "dr", "visit", a["id"], {"visit_on": "2026-11-09"}, "date typo")
    corrections.amend(reg, "dr", "visit", a["id"], {"visit_on": "2026-11-03"}, "date typo")
    with reg.session() as s:
        q = s.scalars(select(m.Questionnaire).where(m.Questionnaire.visit_id == a["id"])).one()
    assert q.completed_on.isoformat() == "2026-11-03"


def test_keyword_functions_still_work_and_refuse_duplicates(reg: Registry, pid: int) -> None:
    rec.record_visit(reg, "n", pseudo_id="V-1", code="baseline", visit_on="2025-01-06")
    with pytest.raises(Conflict, match="visit"):
        rec.record_visit(reg, "n", pseudo_id="V-1", code="baseline", visit_on="2025-01-06")
    rec.record_questionnaire(reg, "n", pseudo_id="V-1", instrument="ACT", score=17, completed_on="2025-01-06")
    with pytest.raises(Conflict, match="questionnaire"):
        rec.record_questionnaire(
            reg, "n", pseudo_id="V-1", instrument="ACT", score=18, completed_on="2025-01-06"
        )
    assert _count(reg, m.Visit) == 1 and _count(reg, m.Questionnaire) == 1


def test_replayed_key_writes_nothing_twice(reg: Registry, pid: int) -> None:
    data = {"code": "baseline", "visit_on": "2026-11-02", "act": "3,3,4,3,3"}
    one = visits.record_visit_with_results(reg, "n", pid, data, idempotency_key="visit-key-0001")
    two = visits.record_visit_with_results(reg, "n", pid, data, idempotency_key="visit-key-0001")
    assert two["replayed"] is True and two["id"] == one["id"]
    assert _count(reg, m.Visit) == 1
