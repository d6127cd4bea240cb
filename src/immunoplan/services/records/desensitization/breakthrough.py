"""A breakthrough reaction at a step: graded on Brown 2004 from its findings, recorded, and in the same
transaction the protocol stopped and the engine's re-plan stored (protocols.md section 1.7)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from immunoplan import clock, reference
from immunoplan.clinical import vocabularies
from immunoplan.clinical.desensitization import session as rules
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services import protocols
from immunoplan.services.inputs import validate
from immunoplan.services.records.common import as_input, columns
from immunoplan.services.records.desensitization.inputs import BreakthroughFields, BreakthroughIn
from immunoplan.services.records.desensitization.state import (
    cumulative_dose_mg,
    locked_state,
    regenerate_plan,
    step_numbers,
    write_view,
)
from immunoplan.services.records.reactions import ReactionIn, add_reaction

BREAKTHROUGH_SCALE = "brown2004"  # rdd_breakthrough options are keyed by the Brown 2004 grades
VITAL_SIGNS = ("spo2_pct", "systolic_bp_mmhg", "heart_rate_bpm")


def grade_breakthrough(inp: BreakthroughFields) -> dict[str, Any]:
    """The reaction's Brown 2004 grade: computed from the findings (`services.protocols.grade_reaction`,
    ``grading_brown2004``); typed only when no finding can be placed on the scale, and then recorded as the
    clinician's. A typed grade that differs from the findings' is refused; the grader's warnings (vital signs
    are recorded, not graded on: the numeric thresholds are UNVERIFIED) are kept."""
    brown = reference.load("grading_brown2004")
    severities = ", ".join(vocabularies.BROWN_SEVERITIES)
    clinician = {
        "scale": BREAKTHROUGH_SCALE,
        "scale_version": brown["scale_version"],
        "grade": inp.severity,
        "computed": False,
        "basis": reference.basis("grading_brown2004", "clinician's grade").to_dict(),
        "warnings": [],
    }
    if not inp.findings:
        if inp.severity is None:
            raise InvalidInput(
                "findings",
                "give the reaction's findings (graded on Brown 2004) or, when none can be graded, its "
                "severity",
                severities,
            )
        return clinician
    g = protocols.grade_reaction(
        BREAKTHROUGH_SCALE,
        symptoms=tuple(inp.findings),
        spo2_pct=inp.spo2_pct,
        sbp_mmhg=inp.systolic_bp_mmhg,
        heart_rate_bpm=inp.heart_rate_bpm,
    ).to_dict()
    warnings = list(g.get("warnings") or [])
    if g.get("grade") is None:
        if inp.severity is None:
            raise InvalidInput(
                "severity",
                "none of the findings can be placed on the Brown 2004 scale: give the severity (recorded "
                "as the clinician's)",
                severities,
            )
        return {**clinician, "warnings": [*warnings, "The findings could not be graded on Brown 2004."]}
    if inp.severity is not None and inp.severity != g["grade"]:
        raise InvalidInput(
            "severity",
            f"the findings grade {g['grade']} on Brown 2004 (the grade is computed, not typed)",
            str(g["grade"]),
        )
    return {
        "scale": BREAKTHROUGH_SCALE,
        "scale_version": g.get("scale_version") or brown["scale_version"],
        "grade": g["grade"],
        "computed": True,
        "basis": g.get("basis"),
        "warnings": warnings,
    }


def _refuse_stale_or_unplanned(
    sess: m.DesensitizationSession, state: rules.SessionState, inp: BreakthroughIn
) -> None:
    if inp.replan_no is not None and inp.replan_no != state.active_replan_no:
        raise Conflict(
            "replan_no",
            "the session's protocol changed since the page was shown (another breakthrough was "
            "recorded): reload the session",
            f"desensitization session {sess.id}",
        )
    if not state.engine_plan:
        raise InvalidInput(
            "session_id",
            "this session has no stored plan to re-plan from: record the reaction with the patient's "
            "reactions (linked to its step)",
        )


def _stopped_step(
    s: Session,
    sess: m.DesensitizationSession,
    state: rules.SessionState,
    planned: rules.PlannedStep,
    inp: BreakthroughIn,
    onset: Any,
) -> m.DesensitizationStep:
    """The step the reaction came at as it began, recorded stopped (started ``minutes_into_step`` before
    the onset)."""
    started = None
    if inp.minutes_into_step is not None:
        started = onset - timedelta(seconds=float(inp.minutes_into_step * 60))
    row = m.DesensitizationStep(
        session_id=sess.id,
        replan_no=planned.replan_no,
        step_no=planned.step_no,
        bag=planned.bag,
        rate_ml_h=planned.rate_ml_h,
        minutes=planned.minutes,
        dose_mg=planned.dose_mg,
        cumulative_dose_mg=cumulative_dose_mg(
            state, planned.replan_no, planned.step_no, planned.dose_mg, "stopped"
        ),
        started_at=started,
        status="stopped",
    )
    s.add(row)
    s.flush()
    return row


def _continuation_json(steps: list[rules.PlannedStep]) -> list[dict[str, Any]]:
    return [{"step_no": st.step_no, **step_numbers(st)} for st in steps]


def record_breakthrough(
    reg: Registry, actor: str, data: BreakthroughIn | Mapping[str, Any], *, idempotency_key: Any = None
) -> dict[str, Any]:
    """Record a breakthrough reaction at a step and, in the same transaction, stop the protocol and store the
    engine's re-plan (protocols.md section 1.7). A reaction at any step is accepted, the final one included;
    the re-planned continuation's steps keep their protocol numbers and are recorded like the others."""
    inp = as_input(BreakthroughIn, data)
    grading = grade_breakthrough(inp)
    severity = str(grading["grade"])
    symptoms = tuple(dict.fromkeys((*inp.symptoms, *inp.findings)))

    def run(s: Session) -> dict[str, Any]:
        sess, state, _ = locked_state(s, inp.session_id)
        _refuse_stale_or_unplanned(sess, state, inp)
        planned, recorded = rules.reaction_at(state, inp.step_no)
        if inp.minutes_into_step is not None and inp.minutes_into_step > planned.minutes:
            raise InvalidInput(
                "minutes_into_step",
                f"step {planned.step_no} lasts {planned.minutes} min",
                f"[0, {planned.minutes}] min",
            )
        base = regenerate_plan((sess.plan or {})["request"])
        if to_jsonable(base)["steps"] != (sess.plan or {})["result"]["steps"]:
            raise Conflict(
                "session_id",
                "the reference data changed since this session was planned: the re-plan cannot be computed "
                "from the same plan",
                f"desensitization session {sess.id}",
            )
        new_no = max([c.replan_no for c in state.continuations] or [0]) + 1
        rp, steps = rules.replan_after(
            base.plan,
            state,
            step_no=inp.step_no,
            severity=severity,
            symptoms=symptoms,
            minutes_into_step=inp.minutes_into_step,
            steps_back=inp.steps_back,
            chosen=inp.chosen,
            new_replan_no=new_no,
        )
        onset = inp.onset_at or clock.now()
        # the reaction came as the next step began (nothing recorded there yet): that step is recorded stopped
        step = recorded or _stopped_step(s, sess, state, planned, inp, onset)
        step_id = step.id
        p = s.get(m.Patient, sess.patient_id)
        assert p is not None
        reaction = add_reaction(
            s,
            p,
            validate(
                ReactionIn,
                {
                    "kind": "systemic",
                    "grade": severity,
                    "scale": BREAKTHROUGH_SCALE,
                    "scale_version": grading["scale_version"],
                    "findings": list(symptoms) or None,
                    "onset_at": onset,
                    "desensitization_step_id": step_id,
                    "treatment": inp.treatment,
                    "basis": [grading["basis"]],
                },
            ),
        )
        dose_before = (
            rp.resumption.dose_given_before_mg if rp.resumption is not None else state.dose_given_mg()
        )
        entry = {
            "replan_no": new_no,
            "reaction_id": reaction.id,
            "from_replan_no": state.active_replan_no,
            "reaction_step": inp.step_no,
            "severity": severity,
            "symptoms": list(symptoms),
            "grading": grading,
            "vital_signs": {
                k: None if getattr(inp, k) is None else str(getattr(inp, k)) for k in VITAL_SIGNS
            },
            "minutes_into_step": None if inp.minutes_into_step is None else str(inp.minutes_into_step),
            "steps_back": inp.steps_back,
            "chosen": inp.chosen,
            "dose_before_mg": str(dose_before),
            "steps": _continuation_json(steps),
            "result": to_jsonable(rp),
            "recorded_at": clock.now(),
        }
        plan = dict(sess.plan or {})
        plan["replans"] = [*(plan.get("replans") or []), to_jsonable(entry)]
        sess.plan = plan
        s.flush()
        return {
            "session_id": sess.id,
            "reaction": columns(reaction),
            "step_id": step_id,
            "replan_no": new_no,
            "grade": grading,
            "replan": to_jsonable(rp),
            "continuation": to_jsonable(entry["steps"]),
            "rule": rules.RULES["rdd-session-breakthrough-stops-protocol"].to_dict(),
        }

    return write_view(reg, actor, "record_desensitization_breakthrough", run, idempotency_key)
