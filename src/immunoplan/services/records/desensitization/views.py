"""What a session page and the API show (`session_view`): the plan, each protocol with its steps and their
recorded status, reactions and re-plans, the next step and its earliest time, and why no step can be given
when none can."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from immunoplan import clock
from immunoplan.clinical.desensitization import session as rules
from immunoplan.errors import InvalidInput
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.records.common import plain_decimal
from immunoplan.services.records.desensitization.baseline import baseline_json
from immunoplan.services.records.desensitization.state import session_cycle, session_state, step_numbers


def _recorded_json(r: m.DesensitizationStep) -> dict[str, Any]:
    return {
        "id": r.id,
        "replan_no": r.replan_no,
        "step_no": r.step_no,
        "status": r.status,
        "started_at": clock.to_utc_stored(r.started_at) if r.started_at else None,
        "dose_mg": r.dose_mg,
        "cumulative_dose_mg": r.cumulative_dose_mg,
        "early_reason": r.early_reason,
    }


def _reaction_json(x: m.Reaction, by_step_id: dict[int, m.DesensitizationStep]) -> dict[str, Any]:
    step = by_step_id.get(x.desensitization_step_id) if x.desensitization_step_id else None
    return {
        "id": x.id,
        "step_id": x.desensitization_step_id,
        "step": step.step_no if step is not None else None,
        "replan_no": step.replan_no if step is not None else None,
        "grade": x.grade,
        "scale": x.scale,
        "findings": x.findings or [],
        "onset_at": clock.to_utc_stored(x.onset_at) if x.onset_at else None,
        "minutes_after_dose": x.minutes_after_dose,
        "treatment": x.treatment,
        "treatments": [
            {**t, "given_at": clock.parse_local("given_at", t["given_at"]) if t.get("given_at") else None}
            for t in (x.treatments_given or [])
        ],
        "vital_signs": x.vital_signs or {},
        "tryptase_ng_ml": x.tryptase_ng_ml,
        "tryptase_at": clock.to_utc_stored(x.tryptase_at) if x.tryptase_at else None,
        "grades": x.grades or [],
        "phenotype": x.phenotype,
    }


def _protocol_steps(
    planned: tuple[rules.PlannedStep, ...],
    recorded: dict[int, m.DesensitizationStep],
    reactions: list[dict[str, Any]],
    next_here: int | None,
) -> list[dict[str, Any]]:
    """One protocol's steps with their recorded status; a session without a stored plan: its recorded
    steps. ``next_here``: the step number given next in this protocol."""

    def at_step(rec: m.DesensitizationStep | None) -> list[dict[str, Any]]:
        return [x for x in reactions if rec is not None and x["step_id"] == rec.id]

    steps = []
    for st in planned:
        rec = recorded.get(st.step_no)
        steps.append(
            {
                "step": st.step_no,
                **step_numbers(st),
                "start_clock": st.start_clock,
                "end_clock": st.end_clock,
                "recorded": _recorded_json(rec) if rec else None,
                "reactions": at_step(rec),
                "next": next_here == st.step_no,
            }
        )
    if not planned:
        for rec in sorted(recorded.values(), key=lambda r: r.step_no):
            steps.append(
                {
                    "step": rec.step_no,
                    "bag": rec.bag,
                    "rate_ml_h": rec.rate_ml_h,
                    "minutes": rec.minutes,
                    "dose_mg": rec.dose_mg,
                    "cumulative_mg": rec.cumulative_dose_mg,
                    "recorded": _recorded_json(rec),
                    "reactions": at_step(rec),
                    "next": False,
                }
            )
    return steps


def blocked_reason(state: rules.SessionState) -> str | None:
    """Why no step can be given now (None when the next step can)."""
    if state.finished:
        return f"The session was finished ({state.status})."
    if not state.engine_plan:
        return None
    if not state.dosing_allowed:
        return "This plan uses UNVERIFIED data and has no recorded override: not for administration."
    if state.active_replan_no and not state.active_steps:
        c = state.live_continuations[-1]
        return (
            f"The {c.severity} reaction at step {c.reaction_step} stopped the protocol; no continuation was "
            "re-planned: finish the session as stopped."
        )
    stopped = state.interrupted()
    if stopped is not None:
        return (
            f"The infusion was {stopped.status} at step {stopped.step_no}: record the reaction at that step "
            "to re-plan, or finish the session."
        )
    if state.next_step() is None:
        return "Every step of the protocol was recorded: finish the session."
    return None


def _last_step_given(state: rules.SessionState) -> bool:
    last_step = state.active_steps[-1] if state.active_steps else None
    if last_step is None:
        return False
    rec = state.recorded(state.active_replan_no).get(last_step.step_no)
    return rec is not None and rec.status == "given"


def session_view(reg: Registry, session_id: int) -> dict[str, Any]:
    """Everything a session page shows (module docstring). Times are aware UTC (render with the clinic
    filters, or `view_json` for JSON). `InvalidInput` naming ``session_id`` for an unknown session."""
    with reg.session() as s:
        sess = s.get(m.DesensitizationSession, session_id)
        if sess is None:
            raise InvalidInput("session_id", f"no desensitization session {session_id}")
        p = s.get(m.Patient, sess.patient_id)
        state, rows = session_state(s, sess)
        plan = sess.plan or {}
        step_rows = rows["steps"]
        by_step_id = {r.id: r for r in step_rows}
        reactions = [_reaction_json(x, by_step_id) for x in rows["reactions"]]
        active = state.active_replan_no
        nxt = state.next_step()
        parts = [(0, "Protocol", state.plan_steps, True)] + [
            (
                c.replan_no,
                f"Re-planned after a {c.severity} reaction at step {c.reaction_step}",
                c.steps,
                c.live,
            )
            for c in state.continuations
        ]
        protocols_out = [
            {
                "replan_no": replan_no,
                "title": title,
                "active": replan_no == active,
                "live": live,
                "steps": _protocol_steps(
                    planned,
                    {r.step_no: r for r in step_rows if r.replan_no == replan_no},
                    reactions,
                    nxt.step_no if nxt is not None and nxt.replan_no == replan_no else None,
                ),
            }
            for replan_no, title, planned, live in parts
        ]
        replans = [
            {
                **(c.get("result") or {}),
                "replan_no": c["replan_no"],
                "reaction_id": c["reaction_id"],
                "continuation": c.get("steps") or [],
                "from_replan_no": c.get("from_replan_no", 0),
                "grading": c.get("grading"),
                "vital_signs": c.get("vital_signs"),
                "phenotype": c.get("phenotype"),
                "recorded_grade": c.get("recorded_grade"),
            }
            for c in plan.get("replans") or []
        ]
        earliest = rules.earliest_start(state, nxt) if nxt is not None else None
        return {
            "id": sess.id,
            "session_id": sess.id,
            "patient_id": sess.patient_id,
            "pseudo_id": p.pseudo_id if p else "",
            "course_id": sess.course_id,
            "cycle": session_cycle(s, sess),
            "cycle_choice": plan.get("cycle_choice"),
            "session_on": sess.session_on,
            "drug": sess.drug,
            "target_dose_mg": sess.target_dose_mg,
            "protocol": sess.protocol,
            "status": sess.status,
            "outcome": sess.outcome,
            "ended_at": clock.to_utc_stored(sess.ended_at) if sess.ended_at else None,
            "dose_given_mg": plain_decimal(
                sess.dose_given_mg if sess.dose_given_mg is not None else state.dose_given_mg()
            ),
            "finished": state.finished,
            "engine_plan": state.engine_plan,
            "imported": bool(plan.get("imported")),
            "dosing_allowed": state.dosing_allowed,
            "baseline": baseline_json(sess),
            "request": plan.get("request") or {},
            "result": plan.get("result") or {},
            "recorded": {r.step_no: _recorded_json(r) for r in step_rows if r.replan_no == 0},
            "protocols": protocols_out,
            "active_replan_no": active,
            "reactions": reactions,
            "replans": replans,
            "next_step": None
            if nxt is None
            else {"replan_no": nxt.replan_no, "step_no": nxt.step_no, "earliest_at": earliest},
            "blocked": blocked_reason(state),
            "can_complete": _last_step_given(state) and not state.finished,
            "rules": [r.to_dict() for r in rules.RULES.values()],
        }


def reaction_steps(v: Mapping[str, Any]) -> list[int]:
    """Steps a breakthrough can be recorded at now: the last one recorded in the active protocol and the
    next one (`record_breakthrough` decides; the form offers only these)."""
    part = next((p for p in v["protocols"] if p["active"]), None)
    if part is None or v["finished"]:
        return []
    recorded = [st["step"] for st in part["steps"] if st["recorded"]]
    out = [max(recorded)] if recorded else []
    if v["next_step"] is not None and v["next_step"]["replan_no"] == part["replan_no"]:
        out.append(v["next_step"]["step_no"])
    return out
