"""A breakthrough reaction at a step: graded on Brown 2004 from its findings, recorded, and in the same
transaction the protocol stopped and the engine's re-plan stored (protocols.md section 1.7)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from immunoplan import clock, reference
from immunoplan.clinical import reactions, vocabularies
from immunoplan.clinical.desensitization import session as rules
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.inputs import validate
from immunoplan.services.records.common import as_input, columns, plain_decimal
from immunoplan.services.records.desensitization.inputs import (
    VITAL_SIGN_FIELDS,
    BreakthroughFields,
    BreakthroughIn,
)
from immunoplan.services.records.desensitization.state import (
    cumulative_dose_mg,
    locked_state,
    regenerate_plan,
    step_numbers,
    write_view,
)
from immunoplan.services.records.fields import refuse_future_instant
from immunoplan.services.records.patients import age_on
from immunoplan.services.records.reactions import ReactionIn, add_reaction

BREAKTHROUGH_SCALE = "brown2004"  # rdd_breakthrough options are keyed by the Brown 2004 grades
VITAL_SIGNS = VITAL_SIGN_FIELDS
EPINEPHRINE_NAMES = ("epinephrine", "adrenaline")


def resolve_treatments(inp: BreakthroughFields, onset: datetime) -> list[dict[str, Any]]:
    """The treatments given as stored: ``given_at`` a time of day is on the onset's clinic day; none is in
    the future."""
    out = []
    day = clock.local(onset).date()
    for i, t in enumerate(inp.treatments):
        when = t.given_at
        if isinstance(when, time):
            when = clock.to_utc(datetime.combine(day, when))
        refuse_future_instant(f"treatments.{i}.given_at", when)
        out.append({"drug": t.drug, "dose": str(t.dose), "unit": t.unit, "route": t.route, "given_at": when})
    return out


def _from_treatments(treatments: list[dict[str, Any]], onset: datetime) -> tuple[dict[str, Any], list[str]]:
    """What the graders read from the structured treatments (epinephrine and its minutes after the onset for
    the WAO suffix and CTCAE; the intervention route for CTCAE), and the warnings naming the inference."""
    kw: dict[str, Any] = {}
    notes: list[str] = []
    epi = [t for t in treatments if t["drug"].lower() in EPINEPHRINE_NAMES]
    if epi:
        kw["treatments"] = frozenset({"epinephrine"})
        times = [t["given_at"] for t in epi if t["given_at"] is not None and t["given_at"] >= onset]
        if times:
            kw["epinephrine_minutes"] = Decimal(str(round(clock.minutes_between(onset, min(times)), 1)))
    routes = {t["route"] for t in treatments}
    if "IV" in routes:
        kw["intervention"] = "iv"
    elif "PO" in routes:
        kw["intervention"] = "oral"
    if "intervention" in kw:
        notes.append(f"intervention read from the treatments' routes: {kw['intervention']}")
    return kw, notes


def _findings(inp: BreakthroughFields, adult: bool | None, extra: Mapping[str, Any]) -> reactions.Findings:
    return reactions.Findings(
        symptoms=frozenset(inp.findings),
        spo2_pct=inp.spo2_pct,
        sbp_mmhg=inp.systolic_bp_mmhg,
        heart_rate_bpm=inp.heart_rate_bpm,
        bronchodilator_response=inp.bronchodilator_response,
        adult=adult,
        **extra,
    )


def grade_breakthrough(
    inp: BreakthroughFields,
    *,
    adult: bool | None = None,
    treatments: list[dict[str, Any]] | None = None,
    onset: datetime | None = None,
) -> dict[str, Any]:
    """The reaction's grade on the scale picked (``inp.scale``, default Brown 2004) and its Brown 2004 grade
    (``brown``: the re-plan is keyed by it), each computed from the findings (`clinical.reactions.grade`);
    Brown's severity is typed only when no finding can be placed on its scale, and then recorded as the
    clinician's. A typed grade that differs from the findings' is refused; a finding a scale cannot place is a
    warning, never a lower grade. ``grades``: every scale graded."""
    brown_data = reference.load("grading_brown2004")
    severities = ", ".join(vocabularies.BROWN_SEVERITIES)
    clinician = {
        "scale": BREAKTHROUGH_SCALE,
        "scale_version": brown_data["scale_version"],
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
        if inp.scale != BREAKTHROUGH_SCALE:
            raise InvalidInput("findings", f"a grade on {inp.scale} is computed from the findings: give them")
        return {**clinician, "brown": clinician, "grades": [clinician]}
    extra, notes = _from_treatments(treatments or [], onset or clock.now())
    f = _findings(inp, adult, extra)
    g = reactions.grade(BREAKTHROUGH_SCALE, f).to_dict()
    warnings = list(g.get("warnings") or [])
    if g.get("grade") is None:
        if inp.severity is None:
            raise InvalidInput(
                "severity",
                "none of the findings can be placed on the Brown 2004 scale: give the severity (recorded "
                "as the clinician's)",
                severities,
            )
        brown = {**clinician, "warnings": [*warnings, "The findings could not be graded on Brown 2004."]}
    elif inp.severity is not None and inp.severity != g["grade"]:
        raise InvalidInput(
            "severity",
            f"the findings grade {g['grade']} on Brown 2004 (the grade is computed, not typed)",
            str(g["grade"]),
        )
    else:
        brown = {
            "scale": BREAKTHROUGH_SCALE,
            "scale_version": g.get("scale_version") or brown_data["scale_version"],
            "grade": g["grade"],
            "computed": True,
            "reasons": g.get("reasons") or [],
            "basis": g.get("basis"),
            "warnings": warnings,
        }
    if inp.scale == BREAKTHROUGH_SCALE:
        return {**brown, "brown": brown, "grades": [brown]}
    o = reactions.grade(inp.scale, f).to_dict()
    other = {
        "scale": inp.scale,
        "scale_version": o["scale_version"],
        "grade": o["grade"],
        "computed": True,
        "report": o.get("report"),
        "reasons": o.get("reasons") or [],
        "basis": o["basis"],
        "warnings": [
            *(o.get("warnings") or []),
            *notes,
            *([] if o["grade"] is not None else [f"the findings could not be graded on {inp.scale}"]),
        ],
    }
    return {**other, "brown": brown, "grades": [other, brown]}


def grade_phenotype(inp: BreakthroughFields) -> dict[str, Any]:
    """The endophenotype (``grading_phenotypes``): computed from the findings where they decide it (a
    chosen one that differs is refused), else the clinician's choice (recorded as such), else
    ``undetermined``."""
    if inp.findings:
        g = reactions.phenotype(reactions.Findings(symptoms=frozenset(inp.findings))).to_dict()
    else:
        g = {
            "grade": "undetermined",
            "reasons": ["no findings"],
            "warnings": [],
            "basis": reference.basis("grading_phenotypes", "undetermined").to_dict(),
        }
    warnings = list(g.get("warnings") or [])
    if inp.tryptase_ng_ml is not None:
        warnings = [w for w in warnings if not w.startswith("no biomarker recorded")]
        warnings.append(
            f"tryptase {inp.tryptase_ng_ml} ng/mL recorded but not interpreted (no threshold was read): the "
            "phenotype rests on the symptoms"
        )
    computed = g["grade"] != "undetermined"
    if computed and inp.phenotype is not None and inp.phenotype != g["grade"]:
        raise InvalidInput(
            "phenotype",
            f"the findings give the phenotype {g['grade']} (computed, not chosen)",
            str(g["grade"]),
        )
    label = g["grade"] if computed else (inp.phenotype or "undetermined")
    chosen = not computed and inp.phenotype is not None
    return {
        "phenotype": label,
        "computed": computed,
        "chosen": chosen,
        "reasons": g.get("reasons") or [],
        "basis": reference.basis("grading_phenotypes", "clinician's choice" if chosen else label).to_dict(),
        "warnings": warnings,
    }


def _adult(p: m.Patient, day: Any) -> bool | None:
    """Whether the patient is an adult on ``day`` (recorded age group, else age from the birth date or the
    enrolment age; ``grading_brown2004`` ``adult_from_age_years``); None when unknown."""
    if p.age_group in vocabularies.AGE_GROUPS:
        return p.age_group == "adult"
    age = age_on(p.birth_date, p.age_years, day)
    if age is None:
        return None
    return age >= int(reference.load("grading_brown2004")["severe_numeric_criteria"]["adult_from_age_years"])


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


def _count_the_part_given(
    s: Session,
    state: rules.SessionState,
    planned: rules.PlannedStep,
    step_id: int,
    minutes_into_step: Decimal | None,
) -> None:
    """The reaction step's cumulative dose counts the part infused before the infusion stopped (its
    minutes into the step / the step's minutes of its dose), so the dose given of a session stopped there is
    what ran; a continuation's steps carry their own cumulative dose (`breakthrough.resume`). Without the
    minutes into the step, a step marked given counts whole."""
    if minutes_into_step is None or planned.minutes <= 0:
        return
    row = s.get(m.DesensitizationStep, step_id)
    if row is None:  # pragma: no cover - the step was just read or written in this transaction
        return
    before = cumulative_dose_mg(state, planned.replan_no, planned.step_no, planned.dose_mg, "stopped")
    part = planned.dose_mg * min(Decimal(minutes_into_step) / planned.minutes, Decimal(1))
    row.cumulative_dose_mg = plain_decimal(before + part)


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
    onset = inp.onset_at or clock.now()
    refuse_future_instant("onset_at", onset)
    treatments = resolve_treatments(inp, onset)
    tryptase_at = (inp.tryptase_at or clock.now()) if inp.tryptase_ng_ml is not None else None
    refuse_future_instant("tryptase_at", tryptase_at)
    phenotype = grade_phenotype(inp)
    symptoms = tuple(dict.fromkeys((*inp.symptoms, *inp.findings)))

    def run(s: Session) -> dict[str, Any]:
        sess, state, _ = locked_state(s, inp.session_id)
        p = s.get(m.Patient, sess.patient_id)
        assert p is not None
        grading = grade_breakthrough(
            inp, adult=_adult(p, sess.session_on), treatments=treatments, onset=onset
        )
        severity = str(grading["brown"]["grade"])
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
        # the reaction came as the next step began (nothing recorded there yet): that step is recorded stopped
        step = recorded or _stopped_step(s, sess, state, planned, inp, onset)
        step_id = step.id
        _count_the_part_given(s, state, planned, step_id, inp.minutes_into_step)
        reaction = add_reaction(
            s,
            p,
            validate(
                ReactionIn,
                {
                    "kind": "systemic",
                    "grade": grading["grade"] if grading["grade"] is not None else None,
                    "scale": grading["scale"],
                    "scale_version": grading["scale_version"],
                    "findings": list(symptoms) or None,
                    "onset_at": onset,
                    "desensitization_step_id": step_id,
                    "treatment": inp.treatment,
                    "basis": [g["basis"] for g in grading["grades"]] + [phenotype["basis"]],
                },
            ),
        )
        reaction.vital_signs = inp.vital_signs()
        reaction.treatments_given = to_jsonable(treatments) or None
        reaction.tryptase_ng_ml = inp.tryptase_ng_ml
        reaction.tryptase_at = tryptase_at
        reaction.grades = to_jsonable(grading["grades"])
        reaction.phenotype = phenotype["phenotype"]
        s.flush()
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
            "grading": grading["brown"],
            "recorded_grade": {k: grading[k] for k in ("scale", "scale_version", "grade", "computed")},
            "phenotype": phenotype,
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
            "grade": {k: v for k, v in grading.items() if k != "grades"},
            "grades": grading["grades"],
            "phenotype": phenotype,
            "replan": to_jsonable(rp),
            "continuation": to_jsonable(entry["steps"]),
            "rule": rules.RULES["rdd-session-breakthrough-stops-protocol"].to_dict(),
        }

    return write_view(reg, actor, "record_desensitization_breakthrough", run, idempotency_key)
