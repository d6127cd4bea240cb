"""Helpers of the desensitization-course tests: run a session to its end (or to a reaction) through the
service layer with the clinic clock moved to each step's earliest time, record omalizumab doses.

Every write goes through a service use case (`start_session`, `mark_step`, `record_breakthrough`,
`finish_session`, `omalizumab.record_dose`); nothing is written to the database directly."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from immunoplan import clock
from immunoplan.registry.db import Registry
from immunoplan.services.records import desensitization as svc
from immunoplan.services.records import omalizumab

OVERRIDE = "16-step protocol for a patient who reacted on 12 steps (seed 004); rates UNVERIFIED, accepted"
#: a breakthrough's findings by its intended Brown grade (the grade is computed by the service)
FINDINGS = {"mild": ["urticaria"], "moderate": ["dyspnea"], "severe": ["confusion"]}


def set_day(day: date, hhmm: str = "08:30") -> None:
    clock.set_now(clock.parse_local("at", f"{day.isoformat()}T{hhmm}"))


def start(
    reg: Registry, patient_id: int, drug: str, dose_mg: str, day: date, *, bags: int = 4, **extra: Any
) -> dict[str, Any]:
    set_day(day)
    req: dict[str, Any] = {
        "patient_id": patient_id,
        "drug": drug,
        "dose_mg": dose_mg,
        "bag_volume_ml": "250",
        "final_rate_ml_h": "80",
        "bags": bags,
        "start": "09:00",
        "session_on": day.isoformat(),
        **extra,
    }
    if bags == 4:
        req.setdefault("override_reason", OVERRIDE)
    return svc.start_session(reg, "dr", req)


def _next(reg: Registry, sid: int) -> dict[str, Any] | None:
    return svc.session_view(reg, sid)["next_step"]


def give_until(reg: Registry, sid: int, stop_at: int | None = None, replan_no: int | None = None) -> datetime:
    """Mark the session's next steps given, each at its earliest time, until step ``stop_at`` of the active
    protocol is next (not given) or no step is left; returns the clinic time reached."""
    while True:
        nxt = _next(reg, sid)
        if nxt is None or (
            stop_at is not None
            and nxt["step_no"] == stop_at
            and (replan_no is None or nxt["replan_no"] == replan_no)
        ):
            return clock.now()
        earliest = nxt["earliest_at"]
        if earliest is not None and earliest > clock.now():
            clock.set_now(earliest)
        svc.mark_step(
            reg, "nurse", {"session_id": sid, "step_no": nxt["step_no"], "replan_no": nxt["replan_no"]}
        )


def react(reg: Registry, sid: int, step: int, grade: str, minutes_into_step: str = "5") -> dict[str, Any]:
    """A breakthrough reaction during step ``step`` (marked given first) graded by its findings."""
    give_until(reg, sid, stop_at=step)
    nxt = _next(reg, sid)
    assert nxt is not None and nxt["step_no"] == step
    earliest = nxt["earliest_at"]
    if earliest is not None and earliest > clock.now():
        clock.set_now(earliest)
    svc.mark_step(reg, "nurse", {"session_id": sid, "step_no": step, "replan_no": nxt["replan_no"]})
    clock.set_now(clock.now() + timedelta(minutes=float(minutes_into_step)))
    bt = svc.record_breakthrough(
        reg,
        "nurse",
        {
            "session_id": sid,
            "step_no": step,
            "minutes_into_step": minutes_into_step,
            "findings": FINDINGS[grade],
        },
    )
    assert bt["grade"]["grade"] == grade, bt["grade"]
    clock.set_now(clock.now() + timedelta(minutes=30))  # treated, resolved
    return bt


def finish(reg: Registry, sid: int, outcome: str) -> dict[str, Any]:
    clock.set_now(clock.now() + timedelta(minutes=5))
    return svc.finish_session(reg, "nurse", {"session_id": sid, "outcome": outcome})


def completed_cycle(reg: Registry, patient_id: int, drug: str, dose: str, day: date, **kw: Any) -> int:
    sid = int(start(reg, patient_id, drug, dose, day, **kw)["session_id"])
    give_until(reg, sid)
    finish(reg, sid, "completed")
    return sid


def mild_then_completed(
    reg: Registry, patient_id: int, drug: str, dose: str, day: date, step: int, **kw: Any
) -> int:
    """A cycle with a mild cutaneous reaction at ``step``, resumed on the re-plan and completed."""
    sid = int(start(reg, patient_id, drug, dose, day, **kw)["session_id"])
    react(reg, sid, step, "mild")
    give_until(reg, sid)
    finish(reg, sid, "completed")
    return sid


def stopped_cycle(
    reg: Registry, patient_id: int, drug: str, dose: str, day: date, step: int, grade: str, **kw: Any
) -> int:
    sid = int(start(reg, patient_id, drug, dose, day, **kw)["session_id"])
    react(reg, sid, step, grade)
    finish(reg, sid, "stopped")
    return sid


def omalizumab_dose(reg: Registry, course_id: int, day: date, dose_mg: str = "300") -> dict[str, Any]:
    set_day(day, "10:00")
    return omalizumab.record_dose(
        reg, "nurse", {"course_id": course_id, "dose_mg": dose_mg, "given_at": f"{day.isoformat()}T10:00"}
    )
