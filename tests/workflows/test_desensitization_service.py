"""Desensitization session use cases called directly (not through a page): one test per safety rule, each
refusal leaves nothing behind (rows and audit entries counted)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from immunoplan import clock
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry, open_registry
from immunoplan.services.records import desensitization as svc
from immunoplan.services.records import register_patient

START = "2026-11-21T09:00"
PLAN: dict[str, Any] = {
    "drug": "carboplatin",
    "dose_mg": "500",
    "bag_volume_ml": "250",
    "final_rate_ml_h": "80",
    "bags": 3,
    "start": "09:00",
    "session_on": "2026-11-21",
}
WRITTEN = ("desensitization_steps", "desensitization_sessions", "reactions", "courses")


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    monkeypatch.setenv("IMMUNOPLAN_TIMEZONE", "America/Los_Angeles")
    reg = open_registry(tmp_path / "registry.sqlite")
    with clock.frozen(START):
        yield reg
    reg.dispose()


def at(minutes: float) -> None:
    """Pin the clinic clock ``minutes`` after 09:00 on the session day."""
    clock.set_now(clock.parse_local("at", START) + timedelta(minutes=minutes))


def _patient(reg: Registry, pseudo: str = "D-1") -> int:
    return int(register_patient(reg, "t", pseudo_id=pseudo, sex="female")["id"])


def _session(reg: Registry, **over: Any) -> int:
    pid = _patient(reg)
    return int(svc.start_session(reg, "dr", {**PLAN, **over, "patient_id": pid})["session_id"])


def _mark(
    reg: Registry, sid: int, step: int, idempotency_key: str | None = None, **kw: Any
) -> dict[str, Any]:
    return svc.mark_step(
        reg, "nurse", {"session_id": sid, "step_no": step, **kw}, idempotency_key=idempotency_key
    )


def _give(reg: Registry, sid: int, steps: range, *, every: float = 15, start: float = 0) -> None:
    for i, n in enumerate(steps):
        at(start + i * every)
        _mark(reg, sid, n)


def counts(reg: Registry) -> dict[str, int]:
    """Rows of every table a session writes, and their audit entries."""
    with reg.session() as s:
        out = {t: s.scalar(select(func.count()).select_from(m.Base.metadata.tables[t])) or 0 for t in WRITTEN}
        out["audit"] = (
            s.scalar(
                select(func.count()).select_from(m.AuditEntry).where(m.AuditEntry.table_name.in_(WRITTEN))
            )
            or 0
        )
        out["idempotency"] = s.scalar(select(func.count()).select_from(m.IdempotencyKey)) or 0
    return out


def steps_of(reg: Registry, sid: int) -> list[tuple[int, int, str]]:
    with reg.session() as s:
        rows = s.scalars(
            select(m.DesensitizationStep)
            .where(m.DesensitizationStep.session_id == sid)
            .order_by(m.DesensitizationStep.id)
        ).all()
        return [(r.replan_no, r.step_no, r.status) for r in rows]


# ------------------------------------------------------------------------------------------ the safety rules


def test_unverified_plan_is_refused_without_override(registry: Registry) -> None:
    sid = _session(registry, bags=4)  # 16-step rates are UNVERIFIED (rdd_protocols scheme 4)
    before = counts(registry)
    with pytest.raises(InvalidInput) as exc:
        _mark(registry, sid, 1, idempotency_key="k-unverified-1")
    assert "UNVERIFIED" in exc.value.reason and "rdd-session-unverified-needs-override" in exc.value.reason
    assert counts(registry) == before
    with pytest.raises(InvalidInput):  # nor can the reaction path record a stopped step
        svc.record_breakthrough(registry, "nurse", {"session_id": sid, "step_no": 1, "severity": "mild"})
    assert counts(registry) == before


def test_unverified_plan_with_a_recorded_override_can_be_given(registry: Registry) -> None:
    pid = _patient(registry)
    out = svc.start_session(
        registry, "dr", {**PLAN, "bags": 4, "override_reason": "seed 004 protocol", "patient_id": pid}
    )
    assert out["dosing_allowed"] is True and out["plan"]["override"]["reason"] == "seed 004 protocol"
    _mark(registry, int(out["session_id"]), 1)
    assert steps_of(registry, int(out["session_id"])) == [(0, 1, "given")]


def test_out_of_order_step_is_refused_and_nothing_written(registry: Registry) -> None:
    sid = _session(registry)
    before = counts(registry)
    with pytest.raises(InvalidInput) as exc:
        _mark(registry, sid, 3)
    assert exc.value.field == "step_no" and "the next step is 1" in exc.value.reason
    assert "rdd-session-steps-in-order" in exc.value.reason
    assert counts(registry) == before
    _give(registry, sid, range(1, 3))
    with pytest.raises(InvalidInput, match="the next step is 3"):
        at(45)
        _mark(registry, sid, 4)
    assert steps_of(registry, sid) == [(0, 1, "given"), (0, 2, "given")]


def test_step_after_a_breakthrough_is_refused_on_the_original_protocol(registry: Registry) -> None:
    sid = _session(registry)
    _give(registry, sid, range(1, 4))
    at(40)
    bt = svc.record_breakthrough(
        registry, "nurse", {"session_id": sid, "step_no": 3, "severity": "mild", "symptoms": ["flushing"]}
    )
    assert bt["replan_no"] == 1 and [s["step_no"] for s in bt["continuation"]][:2] == [2, 3]
    before = counts(registry)
    at(50)
    with pytest.raises(Conflict) as conflict:  # a page still showing the original protocol
        _mark(registry, sid, 4, replan_no=0)
    assert conflict.value.record == f"reaction {bt['reaction']['id']}"
    with pytest.raises(InvalidInput) as exc:
        _mark(registry, sid, 4)
    assert "stopped the original protocol" in exc.value.reason
    assert counts(registry) == before
    out = _mark(registry, sid, 2, replan_no=1)  # the continuation, numbered in the session
    assert (out["replan_no"], out["step_no"]) == (1, 2)
    assert out["next_step"]["step_no"] == 3 and out["next_step"]["replan_no"] == 1


def test_severe_reaction_stops_the_session(registry: Registry) -> None:
    sid = _session(registry)
    _give(registry, sid, range(1, 3))
    at(20)
    bt = svc.record_breakthrough(registry, "nurse", {"session_id": sid, "step_no": 2, "severity": "severe"})
    assert bt["continuation"] == [] and "stop" in bt["replan"]["applied"]
    before = counts(registry)
    for step in (1, 2, 3):
        with pytest.raises(InvalidInput, match="stopped the protocol"):
            _mark(registry, sid, step)
    with pytest.raises(InvalidInput, match="only be finished as stopped"):
        svc.finish_session(registry, "nurse", {"session_id": sid, "outcome": "completed"})
    assert counts(registry) == before
    done = svc.finish_session(registry, "nurse", {"session_id": sid, "outcome": "stopped"})
    assert done["status"] == "stopped" and done["outcome"] == "stopped"


def test_resume_after_a_severe_reaction_is_refused(registry: Registry) -> None:
    sid = _session(registry)
    _give(registry, sid, range(1, 3))
    before = counts(registry)
    with pytest.raises(InvalidInput) as exc:
        svc.record_breakthrough(
            registry,
            "nurse",
            {"session_id": sid, "step_no": 2, "severity": "severe", "chosen": "resume-same-step"},
        )
    assert exc.value.field == "chosen"
    assert counts(registry) == before


def test_same_step_twice_gives_one_row(registry: Registry) -> None:
    sid = _session(registry)
    first = _mark(registry, sid, 1, idempotency_key="step-1-first")
    before = counts(registry)
    again = _mark(registry, sid, 1, idempotency_key="step-1-first")  # a re-post: the stored result
    assert again["replayed"] is True and again["id"] == first["id"]
    with pytest.raises(Conflict) as exc:  # another form, same step
        _mark(registry, sid, 1, idempotency_key="step-1-second")
    assert exc.value.record == f"desensitization step {first['id']}"
    assert "rdd-session-step-once" in exc.value.reason
    with pytest.raises(Conflict):
        _mark(registry, sid, 1)
    assert counts(registry) == before and steps_of(registry, sid) == [(0, 1, "given")]


@pytest.mark.parametrize("same_key", [True, False])
def test_two_threads_mark_the_same_step_at_once(registry: Registry, same_key: bool) -> None:
    sid = _session(registry)
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def mark(i: int) -> None:
        barrier.wait()
        key = "step-1-double" if same_key else f"step-1-tab-{i}"
        try:
            results.append(_mark(registry, sid, 1, idempotency_key=key))
        except Conflict as exc:  # the only refusal allowed
            results.append(exc)
        except BaseException as exc:  # pragma: no cover - reported by the assertion below
            results.append(("unexpected", exc))

    threads = [threading.Thread(target=mark, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not [r for r in results if isinstance(r, tuple)], results
    assert steps_of(registry, sid) == [(0, 1, "given")]
    rows = [r for r in results if isinstance(r, dict)]
    conflicts = [r for r in results if isinstance(r, Conflict)]
    if same_key:
        assert len(rows) == 2 and sorted(bool(r.get("replayed")) for r in rows) == [False, True]
        assert rows[0]["id"] == rows[1]["id"]
    else:
        assert len(rows) == 1 and len(conflicts) == 1
        assert conflicts[0].record == f"desensitization step {rows[0]['id']}"


def test_reaction_at_the_final_step_is_accepted(registry: Registry) -> None:
    sid = _session(registry)
    _give(registry, sid, range(1, 13))
    at(12 * 15)
    bt = svc.record_breakthrough(registry, "nurse", {"session_id": sid, "step_no": 12, "severity": "mild"})
    assert bt["reaction"]["grade"] == "mild" and bt["reaction"]["scale"] == "brown2004"
    assert bt["continuation"] == [] and bt["replan"]["resumption"] is None
    assert any("final step" in w for w in bt["replan"]["warnings"])
    view = svc.session_view(registry, sid)
    assert view["reactions"][0]["step"] == 12 and view["blocked"]
    done = svc.finish_session(registry, "nurse", {"session_id": sid, "outcome": "stopped"})
    assert done["dose_given_mg"] == Decimal("500")


def test_reaction_at_the_final_step_with_its_minutes_resumes(registry: Registry) -> None:
    sid = _session(registry)
    _give(registry, sid, range(1, 13))
    at(12 * 15)
    bt = svc.record_breakthrough(
        registry,
        "nurse",
        {
            "session_id": sid,
            "step_no": 12,
            "severity": "mild",
            "minutes_into_step": "10",
            "symptoms": "flushing",
        },
    )
    steps = [s["step_no"] for s in bt["continuation"]]
    assert steps == [11, 12]  # one step back, numbered in the session
    at(12 * 15 + 30)
    _mark(registry, sid, 11)
    at(12 * 15 + 45)
    _mark(registry, sid, 12)
    done = svc.finish_session(registry, "nurse", {"session_id": sid, "outcome": "completed"})
    assert done["outcome"] == "completed-with-reactions" and done["status"] == "completed"
    assert Decimal(str(done["dose_given_mg"])) == Decimal(str(bt["replan"]["resumption"]["total_dose_mg"]))


def test_a_step_started_early_needs_a_reason(registry: Registry) -> None:
    sid = _session(registry)
    _mark(registry, sid, 1)
    at(5)
    before = counts(registry)
    with pytest.raises(InvalidInput) as exc:
        _mark(registry, sid, 2)
    assert exc.value.field == "early_reason" and "rdd-session-step-time" in exc.value.reason
    with pytest.raises(InvalidInput, match="future"):
        _mark(registry, sid, 2, given_at="2026-11-21T11:00")
    assert counts(registry) == before
    out = _mark(registry, sid, 2, early_reason="physician at bedside, no symptoms")
    assert out["early_reason"] == "physician at bedside, no symptoms"
    at(30)  # a time typed by the nurse is clinic time
    out = _mark(registry, sid, 3, given_at="2026-11-21T09:25")
    assert clock.iso_local(datetime.fromisoformat(out["started_at"])) == "2026-11-21T09:25:00-08:00"


def test_finished_session_takes_no_more_steps(registry: Registry) -> None:
    sid = _session(registry)
    _give(registry, sid, range(1, 3))
    with pytest.raises(InvalidInput, match="last step"):
        svc.finish_session(registry, "nurse", {"session_id": sid, "outcome": "completed"})
    svc.finish_session(registry, "nurse", {"session_id": sid, "outcome": "stopped"})
    before = counts(registry)
    at(30)
    with pytest.raises(Conflict, match="finished"):
        _mark(registry, sid, 3)
    with pytest.raises(Conflict, match="finished"):
        svc.finish_session(registry, "nurse", {"session_id": sid, "outcome": "stopped"})
    assert counts(registry) == before


def test_voided_step_is_ignored(registry: Registry) -> None:
    sid = _session(registry)
    first = _mark(registry, sid, 1)
    with registry.transaction("admin", "void_step") as s:  # what the corrections use case writes
        row = s.get(m.DesensitizationStep, first["id"])
        assert row is not None
        row.voided_at, row.voided_by, row.void_reason = clock.now(), "admin", "wrong patient"
    again = _mark(registry, sid, 1)
    assert again["id"] != first["id"]
    assert svc.session_view(registry, sid)["recorded"][1]["id"] == again["id"]


# ---------------------------------------------------------------------------------- courses and old styles


def test_one_course_per_patient_and_drug(registry: Registry) -> None:
    pid = _patient(registry)
    one = svc.start_session(registry, "dr", {**PLAN, "patient_id": pid})
    with pytest.raises(Conflict) as exc:  # the same day, still in progress
        svc.start_session(registry, "dr", {**PLAN, "patient_id": pid})
    assert exc.value.record == f"desensitization session {one['session_id']}"
    two = svc.start_session(registry, "dr", {**PLAN, "patient_id": pid, "session_on": "2026-12-12"})
    other = svc.start_session(registry, "dr", {**PLAN, "patient_id": pid, "drug": "oxaliplatin"})
    assert two["course_id"] == one["course_id"] and two["cycle"] == 2
    assert other["course_id"] != one["course_id"]
    with registry.session() as s:
        assert s.scalar(select(func.count()).select_from(m.Course)) == 2


def test_start_with_invalid_input_writes_nothing(registry: Registry) -> None:
    pid = _patient(registry)
    before = counts(registry)
    for bad, field in (
        ({"dose_mg": "-5"}, "dose_mg"),
        ({"bags": 9}, "bags"),
        ({"final_rate_ml_h": "1e-6"}, None),
    ):
        with pytest.raises(InvalidInput) as exc:
            svc.start_session(registry, "dr", {**PLAN, **bad, "patient_id": pid})
        assert field is None or exc.value.field == field
    with pytest.raises(InvalidInput, match="no patient"):
        svc.start_session(registry, "dr", {**PLAN, "patient_id": 999})
    assert counts(registry) == before


def test_old_call_style_keeps_the_rules(registry: Registry) -> None:
    pid = _patient(registry)
    with registry.transaction("t", "test_course") as s:
        c = m.Course(patient_id=pid, kind="drug_desensitization", drug="x", status="active")
        s.add(c)
        s.flush()
        cid = c.id
    sess = svc.start_desensitization(
        registry, "t", course_id=cid, session_on="2025-01-01", drug="x", target_dose_mg="1"
    )
    svc.record_step(registry, "t", session_id=sess["id"], step_no=1, dose_mg="0.5")
    with pytest.raises(InvalidInput, match="the next step is 2"):
        svc.record_step(registry, "t", session_id=sess["id"], step_no=3, dose_mg="0.5")
    with pytest.raises(Conflict):
        svc.record_step(registry, "t", session_id=sess["id"], step_no=1, dose_mg="0.5")
    # history as it happened: any order, audited as an import
    svc.record_step(registry, "t", session_id=sess["id"], step_no=3, dose_mg="0.25", imported=True)
    with registry.session() as s:
        use_cases = set(
            s.scalars(select(m.AuditEntry.use_case).where(m.AuditEntry.table_name == "desensitization_steps"))
        )
    assert use_cases == {"record_desensitization_step", "import_desensitization_step"}
    # a planned session's step is the plan's: a different dose is refused
    planned = svc.start_desensitization(
        registry,
        "t",
        course_id=cid,
        session_on="2025-02-01",
        drug="x",
        target_dose_mg="500",
        plan={"request": {k: v for k, v in PLAN.items() if k != "session_on"}},
    )
    with pytest.raises(InvalidInput, match="stored plan"):
        svc.record_step(registry, "t", session_id=planned["id"], step_no=1, dose_mg="400")
    with pytest.raises(InvalidInput, match="computed by the engine"):
        svc.start_desensitization(
            registry,
            "t",
            course_id=cid,
            session_on="2025-03-01",
            drug="x",
            target_dose_mg="1",
            plan={"steps": []},
        )


def test_session_view_shows_protocols_reactions_and_times(registry: Registry) -> None:
    sid = _session(registry)
    _give(registry, sid, range(1, 3))
    at(20)
    svc.record_breakthrough(registry, "nurse", {"session_id": sid, "step_no": 2, "severity": "mild"})
    view = svc.view_json(svc.session_view(registry, sid))
    assert [p["replan_no"] for p in view["protocols"]] == [0, 1]
    assert view["protocols"][1]["active"] and not view["protocols"][0]["active"]
    assert view["protocols"][0]["steps"][0]["recorded"]["started_at"] == "2026-11-21T09:00:00-08:00"
    assert view["reactions"][0]["step"] == 2 and view["replans"][0]["reaction_step"] == 2
    assert view["next_step"]["replan_no"] == 1 and view["next_step"]["step_no"] == 1
    assert {r["id"] for r in view["rules"]} >= {
        "rdd-session-unverified-needs-override",
        "rdd-session-steps-in-order",
        "rdd-session-breakthrough-stops-protocol",
        "rdd-session-step-once",
    }


# ------------------------------------------------------------------------------------------ guided grading


def test_breakthrough_grade_is_computed_from_the_findings(registry: Registry) -> None:
    sid = _session(registry)
    _give(registry, sid, range(1, 3))
    at(20)
    before = counts(registry)
    base = {"session_id": sid, "step_no": 2}
    with pytest.raises(InvalidInput) as exc:  # typed, and not what the findings grade
        svc.record_breakthrough(registry, "nurse", {**base, "findings": ["wheeze"], "severity": "mild"})
    assert exc.value.field == "severity" and exc.value.accepted == "moderate"
    with pytest.raises(InvalidInput) as exc:  # nothing to grade
        svc.record_breakthrough(registry, "nurse", base)
    assert exc.value.field == "findings"
    with pytest.raises(InvalidInput) as exc:  # a finding the scale cannot place: the clinician grades
        svc.record_breakthrough(registry, "nurse", {**base, "findings": ["fever"]})
    assert exc.value.field == "severity"
    assert counts(registry) == before
    bt = svc.record_breakthrough(
        registry,
        "nurse",
        {**base, "findings": ["wheeze", "flushing"], "spo2_pct": "93", "systolic_bp_mmhg": "118"},
    )  # SpO2 above 92 % and systolic BP from 90 mmHg: not Brown's severe criteria
    assert bt["grade"]["grade"] == "moderate" and bt["grade"]["computed"] is True
    assert bt["reaction"]["grade"] == "moderate" and set(bt["reaction"]["findings"]) == {"wheeze", "flushing"}
    assert {p["drug"] for p in bt["replan"]["next_premedication"]} == {"aspirin", "montelukast"}
    view = svc.session_view(registry, sid)
    assert view["replans"][0]["severity"] == "moderate"


def test_hypoxia_as_a_finding_grades_severe_with_its_status(registry: Registry) -> None:
    sid = _session(registry)
    _give(registry, sid, range(1, 2))
    bt = svc.record_breakthrough(
        registry,
        "nurse",
        {"session_id": sid, "step_no": 1, "findings": ["wheeze", "hypoxia"], "spo2_pct": "90"},
    )
    assert bt["grade"]["grade"] == "severe" and bt["grade"]["basis"]["status"] == "SECONDARY"
    assert bt["continuation"] == [] and "stop" in bt["replan"]["applied"]
