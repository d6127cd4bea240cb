"""A desensitization course (one per patient and culprit drug) and what belongs to it beside its cycles
(the sessions): the index reaction, the choice the next cycle starts from, omalizumab as an adjuvant, the end
of the course, and the reads of the course page and of the seed-004 case series.

Use cases (each one `unit_of_work.write`, audited, idempotent with a key):

- `record_index_reaction`: the reaction that led to desensitization (date, drug, grade on a named scale, skin
  test, phenotype), stored in the course's ``plan["index_reaction"]`` (the shape the sheets read).
- `plan_adjuvant_omalizumab`: the seed-004 adjuvant regimen
  (``omalizumab_regimens.desensitization_adjuvant``, off-label) planned from the first desensitization under
  omalizumab; stored in ``plan["omalizumab_adjuvant"]`` with its basis. From then on the course takes
  omalizumab doses (`services.records.omalizumab.record_dose`).
- `end_course`: the course completed or stopped, with a reason.

Reads: `next_cycle_options` (what the next cycle can start from, computed from the last cycle),
`cycle_choice_for` (inside `start_session`: the choice checked against those options), `course_view` (the
course page), `drug_allergy_alerts` (the patient page), `desensitization_case_series` (the seed-004 table).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from immunoplan import clock, reference
from immunoplan.clinical import vocabularies as vocab
from immunoplan.clinical.omalizumab import schedules
from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.inputs import InputModel
from immunoplan.services.records.common import as_input, live_rows
from immunoplan.services.records.courses.reads import adjuvant_omalizumab
from immunoplan.services.records.desensitization.state import view_json, write_view

KIND = "drug_desensitization"
#: the scales an index reaction is graded on, with their grades in order (grade 1 = the first)
SCALES: dict[str, tuple[str, ...]] = {"brown2004": vocab.BROWN_SEVERITIES}
SKIN_TESTS = ("positive", "negative", "not-done")
#: the adjuvant regimens a desensitization course can be planned with (keys of ``omalizumab_regimens``)
ADJUVANT_REGIMENS = ("desensitization_adjuvant",)
#: choices of the next cycle that are not a re-plan option
SAME_PROTOCOL = "same-protocol"
CHANGE_BAGS = "change-bags"
END_STATUSES = ("completed", "stopped")
TOLERATED = ("completed", "completed-with-reactions")


class IndexReactionIn(InputModel):
    """The index reaction of a desensitization course."""

    course_id: int = Field(ge=1)
    reaction_on: date = Field(json_schema_extra={"accepted": "YYYY-MM-DD (clinic date)"})
    drug: str = Field(min_length=1, max_length=120)
    grade: str = Field(min_length=1, max_length=16, description="a grade of the scale: its name or number")
    scale: str = Field("brown2004", max_length=32)
    skin_test: str = Field("not-done", max_length=16)
    skin_test_detail: str | None = Field(None, max_length=120, description="e.g. 'ID 10 mg/mL'")
    phenotype: str | None = Field(None, max_length=32)
    context: str | None = Field(None, max_length=120, description="the regimen it happened in, e.g. FOLFOX")
    description: str | None = Field(None, max_length=500)


class AdjuvantOmalizumabIn(InputModel):
    """An adjuvant omalizumab plan for a desensitization course (seed 004, off-label)."""

    course_id: int = Field(ge=1)
    regimen_id: str = Field("desensitization_adjuvant", max_length=64)
    start_on: date = Field(
        json_schema_extra={"accepted": "YYYY-MM-DD: the first desensitization under omalizumab"}
    )
    cycles: int = Field(6, ge=1, le=52)
    cycle_weeks: int = Field(3, ge=1, le=8)
    days_before: tuple[int, ...] | None = Field(None, max_length=2)


def _grade(scale: str, grade: str) -> tuple[str, int]:
    if scale not in SCALES:
        raise InvalidInput("scale", f"unknown scale {scale!r}", ", ".join(SCALES))
    grades = SCALES[scale]
    g = grade.strip().lower().removeprefix("grade").strip()
    if g.isdigit() and 1 <= int(g) <= len(grades):
        return grades[int(g) - 1], int(g)
    if g in grades:
        return g, grades.index(g) + 1
    accepted = ", ".join(f"{i + 1} ({name})" for i, name in enumerate(grades))
    raise InvalidInput("grade", f"not a {scale} grade: {grade!r}", accepted)


def _desensitization_course(s: Session, course_id: int, *, lock: bool = False) -> m.Course:
    c = s.get(m.Course, course_id, with_for_update=lock)
    if c is None:
        raise InvalidInput("course_id", f"no course {course_id}")
    if c.kind != KIND:
        raise InvalidInput("course_id", f"course {c.id} is {c.kind}, not a drug desensitization course")
    return c


def _set_plan(c: m.Course, key: str, value: Any) -> None:
    plan = dict(c.plan or {}) if isinstance(c.plan, Mapping) else {}
    plan[key] = value
    c.plan = plan  # a new dict: the JSON column sees the change


def record_index_reaction(
    reg: Registry, actor: str, data: IndexReactionIn | Mapping[str, Any], *, idempotency_key: Any = None
) -> dict[str, Any]:
    """Record (or replace) the course's index reaction. Refused: an unknown scale or grade, a skin-test
    result or phenotype outside the vocabulary, a date in the future, a course that is not a desensitization
    course. A drug other than the course's is recorded with a warning."""
    inp = as_input(IndexReactionIn, data)
    grade, number = _grade(inp.scale, inp.grade)
    if inp.skin_test not in SKIN_TESTS:
        raise InvalidInput("skin_test", f"unknown value {inp.skin_test!r}", ", ".join(SKIN_TESTS))
    if inp.phenotype is not None and inp.phenotype not in vocab.REACTION_PHENOTYPES:
        raise InvalidInput(
            "phenotype", f"unknown value {inp.phenotype!r}", ", ".join(vocab.REACTION_PHENOTYPES)
        )
    clock.check_date("reaction_on", inp.reaction_on)
    if inp.reaction_on > clock.today():
        raise InvalidInput("reaction_on", "is in the future", f"at most {clock.today().isoformat()}")

    def run(s: Session) -> dict[str, Any]:
        c = _desensitization_course(s, inp.course_id, lock=True)
        warnings = []
        if (c.drug or "").strip().lower() != inp.drug.strip().lower():
            warnings.append(f"the index reaction was to {inp.drug}; the course desensitizes to {c.drug}")
        index = {
            "date": inp.reaction_on.isoformat(),
            "drug": inp.drug,
            "grade": grade,
            "grade_number": number,
            "scale": inp.scale,
            "skin_test": inp.skin_test,
            "skin_test_detail": inp.skin_test_detail,
            "phenotype": inp.phenotype,
            "context": inp.context,
            "description": inp.description,
            "recorded_by": actor,
            "recorded_at": clock.iso_local(clock.now()),
            "warnings": warnings,
        }
        _set_plan(c, "index_reaction", index)
        s.flush()
        return {"course_id": c.id, "patient_id": c.patient_id, "index_reaction": index}

    return write_view(reg, actor, "record_index_reaction", run, idempotency_key)


adjuvant_plan = adjuvant_omalizumab


def plan_adjuvant_omalizumab(
    reg: Registry,
    actor: str,
    course_id: Any,
    regimen_id: str,
    start_on: Any,
    *,
    cycles: Any = 6,
    cycle_weeks: Any = 3,
    days_before: Any = None,
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Plan omalizumab as an adjuvant of a desensitization course: the regimen's schedule
    (`immunoplan.clinical.omalizumab.schedules.desensitization`) from ``start_on`` (the first desensitization
    under omalizumab), stored with its basis, status and the off-label label. Refused: an unknown regimen,
    a course that is not an open desensitization course."""
    raw = {
        "course_id": course_id,
        "regimen_id": regimen_id,
        "start_on": start_on,
        "cycles": cycles,
        "cycle_weeks": cycle_weeks,
        "days_before": days_before,
    }
    inp = as_input(AdjuvantOmalizumabIn, {k: v for k, v in raw.items() if v is not None})
    if inp.regimen_id not in ADJUVANT_REGIMENS:
        raise InvalidInput(
            "regimen_id", f"not an adjuvant regimen: {inp.regimen_id!r}", ", ".join(ADJUVANT_REGIMENS)
        )
    clock.check_date("start_on", inp.start_on)
    sched = schedules.desensitization(
        inp.start_on,
        inp.cycles,
        inp.cycle_weeks,
        None,
        list(inp.days_before) if inp.days_before is not None else None,
    )
    rule = reference.load("omalizumab_regimens")[inp.regimen_id]

    def run(s: Session) -> dict[str, Any]:
        c = _desensitization_course(s, inp.course_id, lock=True)
        if c.status not in ("planned", "active"):
            raise InvalidInput("course_id", f"course {c.id} is {c.status}", "an open course")
        node = {
            "regimen_id": inp.regimen_id,
            "status": rule["status"],
            "off_label": bool(rule.get("off_label", True)),
            "label": "OFF-LABEL: omalizumab as adjuvant to drug desensitization",
            "dose_mg": str(rule["dose_mg"]),
            "start_on": inp.start_on.isoformat(),
            "cycles": inp.cycles,
            "cycle_weeks": inp.cycle_weeks,
            "schedule": to_jsonable(sched.to_dict()),
            "basis": to_jsonable([b.to_dict() for b in sched.basis]),
            "warnings": list(sched.warnings),
            "planned_by": actor,
            "planned_at": clock.iso_local(clock.now()),
        }
        _set_plan(c, "omalizumab_adjuvant", node)
        s.flush()
        return {"course_id": c.id, "patient_id": c.patient_id, "omalizumab_adjuvant": node}

    return write_view(reg, actor, "plan_adjuvant_omalizumab", run, idempotency_key)


def end_course(
    reg: Registry,
    actor: str,
    course_id: Any,
    status: str,
    reason: str,
    ended_on: Any = None,
    *,
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """End a desensitization course ``completed`` or ``stopped`` (a reason is required; no session may be
    in progress)."""
    if status not in END_STATUSES:
        raise InvalidInput("status", f"unknown value {status!r}", ", ".join(END_STATUSES))
    text = (reason or "").strip()
    if not text or len(text) > 500:
        raise InvalidInput("reason", "is required", "1-500 characters")
    day = clock.parse_date("ended_on", ended_on) if ended_on not in (None, "") else clock.today()
    if day > clock.today():
        raise InvalidInput("ended_on", "is in the future", f"at most {clock.today().isoformat()}")

    def run(s: Session) -> dict[str, Any]:
        c = _desensitization_course(s, int(course_id), lock=True)
        if c.status not in ("planned", "active"):
            raise InvalidInput("course_id", f"course {c.id} is already {c.status}", "an open course")
        busy = s.scalars(
            select(m.DesensitizationSession.id).where(
                m.DesensitizationSession.course_id == c.id, m.DesensitizationSession.status == "in-progress"
            )
        ).first()
        if busy is not None:
            raise InvalidInput(
                "course_id", f"session {busy} is in progress: finish it first", "no open session"
            )
        c.status, c.ended_on, c.stop_reason = status, day, text
        s.flush()
        return {"course_id": c.id, "status": c.status, "ended_on": day, "reason": text}

    return write_view(reg, actor, "end_desensitization_course", run, idempotency_key)


# ----------------------------------------------------------------------------------------------- cycles


def _sessions(s: Session, course_id: int) -> list[m.DesensitizationSession]:
    return list(
        s.scalars(
            select(m.DesensitizationSession)
            .where(m.DesensitizationSession.course_id == course_id)
            .order_by(m.DesensitizationSession.session_on, m.DesensitizationSession.id)
        )
    )


def _bags(sess: m.DesensitizationSession) -> int | None:
    req = (sess.plan or {}).get("request") or {}
    bags = req.get("bags")
    return int(bags) if bags not in (None, "") else None


def _session_reactions(s: Session, sess: m.DesensitizationSession) -> list[m.Reaction]:
    Step = m.DesensitizationStep
    ids = [r.id for r in live_rows(s, Step, Step.session_id == sess.id, order_by=(Step.id,))]
    if not ids:
        return []
    return live_rows(s, m.Reaction, m.Reaction.desensitization_step_id.in_(ids), order_by=(m.Reaction.id,))


def _options(s: Session, last: m.DesensitizationSession | None) -> list[dict[str, Any]]:
    if last is None:
        return []
    plan = last.plan or {}
    bags = _bags(last)
    reacted = bool(plan.get("replans")) or bool(_session_reactions(s, last))
    out: list[dict[str, Any]] = [
        {
            "id": SAME_PROTOCOL,
            "text": f"the same protocol as the last cycle ({bags or '?'} bags)",
            "suggested": last.outcome == "completed",
            "bags": bags,
            "basis": {
                "source": f"the last cycle (session {last.id}, {last.session_on.isoformat()}): "
                f"{last.outcome or last.status}",
                "status": "clinician choice",
            },
        }
    ]
    seen = {SAME_PROTOCOL}
    for r in plan.get("replans") or []:
        result = r.get("result") or {}
        for o in result.get("options") or []:
            if o.get("today") or not o.get("applies") or o["id"] in seen:
                continue
            seen.add(o["id"])
            out.append(
                {
                    "id": o["id"],
                    "text": o.get("text"),
                    "suggested": bool(o.get("applied")),
                    "bags": (bags + 1) if o["id"] == "next-add-bag" and bags else None,
                    "basis": o.get("basis"),
                    "after_reaction_at_step": result.get("reaction_step"),
                }
            )
    if bags is not None:
        other = 4 if bags == 3 else 3
        out.append(
            {
                "id": CHANGE_BAGS,
                "text": f"change the bag count ({bags} -> {other} bags)",
                "suggested": False,
                "bags": other,
                "basis": {
                    "source": "clinician choice after "
                    + ("a breakthrough reaction" if reacted else "the last cycle"),
                    "status": "clinician choice",
                },
            }
        )
    return out


def _last_summary(s: Session, last: m.DesensitizationSession, cycle: int) -> dict[str, Any]:
    reactions = _session_reactions(s, last)
    return {
        "session_id": last.id,
        "cycle": cycle,
        "session_on": last.session_on,
        "status": last.status,
        "outcome": last.outcome,
        "bags": _bags(last),
        "reactions": len(reactions),
    }


def next_cycle_options(reg: Registry, course_id: Any) -> dict[str, Any]:
    """What the next cycle of a course can start from: the last cycle (session, outcome, bags, reactions)
    and the options (``same-protocol``, the re-plans' next-course options with their basis, ``change-bags``),
    the suggested ones marked. A course without a cycle has no options."""
    with reg.session() as s:
        c = _desensitization_course(s, int(course_id))
        sessions = _sessions(s, c.id)
        last = sessions[-1] if sessions else None
        return view_json(
            {
                "course_id": c.id,
                "last": _last_summary(s, last, len(sessions)) if last else None,
                "options": _options(s, last),
            }
        )


def cycle_choice_for(
    s: Session, course: m.Course, choice: str | None, from_session_id: int | None, bags: int | None
) -> dict[str, Any] | None:
    """Inside `start_session`: the choice the new cycle starts from, checked against the options of
    ``from_session_id`` (default: the course's last session), with its basis; None without a choice."""
    choice = (choice or "").strip() or None
    if choice is None:
        if from_session_id is not None:
            raise InvalidInput(
                "cycle_choice", "is required with from_session_id", "an option of next-cycle options"
            )
        return None
    sessions = _sessions(s, course.id)
    if not sessions:
        raise InvalidInput(
            "cycle_choice", "the course has no earlier cycle to start from", "no choice (first cycle)"
        )
    if from_session_id is None:
        prev = sessions[-1]
    else:
        prev = next((x for x in sessions if x.id == from_session_id), None)  # type: ignore[assignment]
        if prev is None:
            raise InvalidInput(
                "from_session_id", f"session {from_session_id} is not a cycle of course {course.id}"
            )
    if prev.status == "in-progress":
        raise InvalidInput("from_session_id", f"session {prev.id} is still in progress", "a finished session")
    options = {o["id"]: o for o in _options(s, prev)}
    if choice not in options:
        raise InvalidInput(
            "cycle_choice", f"not an option after session {prev.id}: {choice!r}", ", ".join(options)
        )
    o = options[choice]
    warnings = []
    if o.get("bags") is not None and bags is not None and int(o["bags"]) != int(bags):
        if choice == SAME_PROTOCOL:
            raise InvalidInput(
                "bags", f"the same protocol as session {prev.id} has {o['bags']} bags", str(o["bags"])
            )
        raise InvalidInput("bags", f"option {choice} gives {o['bags']} bags", str(o["bags"]))
    if choice == "next-omalizumab" and adjuvant_plan(course) is None:
        warnings.append("next-omalizumab chosen but no adjuvant omalizumab plan is recorded for the course")
    return {
        "choice": choice,
        "from_session_id": prev.id,
        "from_cycle": sessions.index(prev) + 1,
        "from_outcome": prev.outcome or prev.status,
        "text": o.get("text"),
        "basis": o.get("basis"),
        "warnings": warnings,
    }


# ------------------------------------------------------------------------------------------------- reads


def _doses(s: Session, course_id: int) -> list[m.OmalizumabAdministration]:
    Dose = m.OmalizumabAdministration
    return live_rows(s, Dose, Dose.course_id == course_id, order_by=(Dose.given_at,))


def _cycles(s: Session, c: m.Course) -> list[dict[str, Any]]:
    out = []
    for i, x in enumerate(_sessions(s, c.id), start=1):
        reactions = _session_reactions(s, x)
        out.append(
            {
                "cycle": i,
                "session_id": x.id,
                "session_on": x.session_on,
                "status": x.status,
                "outcome": x.outcome,
                "bags": _bags(x),
                "protocol": x.protocol,
                "target_dose_mg": x.target_dose_mg,
                "dose_given_mg": x.dose_given_mg,
                "reactions": [{"grade": r.grade, "scale": r.scale} for r in reactions],
                "cycle_choice": (x.plan or {}).get("cycle_choice"),
            }
        )
    return out


def _calendar(
    c: m.Course, cycles: list[dict[str, Any]], doses: list[m.OmalizumabAdministration]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for cy in cycles:
        rows.append(
            {
                "date": cy["session_on"],
                "what": f"desensitization cycle {cy['cycle']}",
                "status": cy["outcome"] or cy["status"],
                "kind": "cycle",
            }
        )
    for d in doses:
        rows.append(
            {
                "date": clock.local_date(d.given_at),
                "what": f"omalizumab {d.dose_mg} mg (off-label adjuvant)",
                "status": "given",
                "kind": "omalizumab",
            }
        )
    node = adjuvant_plan(c)
    if node:
        given_days = {clock.local_date(d.given_at) for d in doses}
        for a in (node.get("schedule") or {}).get("administrations") or []:
            day = date.fromisoformat(str(a["date"]))
            if day not in given_days:
                rows.append(
                    {
                        "date": day,
                        "what": f"omalizumab {a.get('dose_mg')} mg planned: {a.get('phase') or ''}".strip(),
                        "status": "planned",
                        "kind": "omalizumab-plan",
                    }
                )
    rows.sort(key=lambda r: (r["date"], r["kind"]))
    return rows


def course_view(reg: Registry, course_id: Any, patient_id: Any = None) -> dict[str, Any]:
    """`services.records.courses.show_course` and, for a desensitization course, ``cycles`` (each session
    with its outcome, bags, reactions and cycle choice), ``index_reaction``, ``omalizumab_adjuvant``,
    ``next_cycle`` (`next_cycle_options`) and ``course_calendar`` (cycles, omalizumab given and planned)."""
    from immunoplan.services.records.courses import show_course

    shown = show_course(reg, course_id, patient_id=patient_id)
    if shown["course"]["kind"] != KIND:
        return shown
    with reg.session() as s:
        c = s.get(m.Course, int(str(course_id).strip()))
        assert c is not None  # show_course found it
        cycles = _cycles(s, c)
        sessions = _sessions(s, c.id)
        last = sessions[-1] if sessions else None
        plan = c.plan if isinstance(c.plan, Mapping) else {}
        shown.update(
            cycles=cycles,
            index_reaction=plan.get("index_reaction"),
            omalizumab_adjuvant=adjuvant_plan(c),
            next_cycle={
                "last": _last_summary(s, last, len(sessions)) if last else None,
                "options": _options(s, last),
            },
            course_calendar=_calendar(c, cycles, _doses(s, c.id)),
        )
    return shown


def alert_text(index: Mapping[str, Any], drug: str | None = None) -> str:
    """``drug allergy: <drug>, <scale> grade N (<name>), <phenotype>, <date>``."""
    parts = [str(index.get("drug") or drug or "")]
    if index.get("grade"):
        parts.append(
            f"{index.get('scale') or ''} grade {index.get('grade_number') or ''} ({index['grade']})".replace(
                "  ", " "
            ).strip()
        )
    for key in ("phenotype", "date"):
        if index.get(key):
            parts.append(str(index[key]))
    if index.get("skin_test") and index["skin_test"] != "not-done":
        parts.append(f"skin test {index['skin_test']}")
    return "drug allergy: " + ", ".join(p for p in parts if p)


def drug_allergy_alerts(s: Session, p: m.Patient) -> list[dict[str, Any]]:
    """The patient's drug-allergy alerts: every desensitization course's index reaction (else its drug) and
    every ``drug_allergy`` diagnosis."""
    out: list[dict[str, Any]] = []
    for c in sorted(p.courses, key=lambda c: c.id):
        if c.kind != KIND:
            continue
        plan = c.plan if isinstance(c.plan, Mapping) else {}
        index = plan.get("index_reaction")
        if isinstance(index, Mapping) and index:
            out.append(
                {
                    "course_id": c.id,
                    "drug": index.get("drug") or c.drug,
                    "text": alert_text(index, c.drug),
                    "index_reaction": dict(index),
                }
            )
        else:
            out.append(
                {
                    "course_id": c.id,
                    "drug": c.drug,
                    "text": f"drug allergy: {c.drug} (desensitization course {c.id}; "
                    "index reaction not recorded)",
                    "index_reaction": None,
                }
            )
    for d in p.diagnoses:
        if d.code == "drug_allergy" and (d.label or d.allergen):
            out.append(
                {
                    "course_id": None,
                    "drug": d.allergen or d.label,
                    "text": f"drug allergy: {d.label or d.allergen}",
                    "index_reaction": None,
                }
            )
    return out


# ------------------------------------------------------------------------------------------- case series

PHENOTYPE_LABEL = {"type I": "Type 1 (IgE)", "mixed": "Mixed", "cytokine release": "Cytokine release"}


def _weeks(a: date, b: date) -> int:
    return round((b - a).days / 7)


def _maintenance(pre_last: date | None, after: list[date], status: str) -> str:
    if not after:
        return "stopped" if status == "stopped" else "-"
    days = [pre_last, *after] if pre_last else after
    gaps = [_weeks(a, b) for a, b in zip(days, days[1:], strict=False)]
    if not gaps:
        return "1 dose"
    if len(set(gaps)) == 1:
        return f"every {gaps[0]} wk"
    if len(set(gaps[1:])) == 1:
        return f"1st in {gaps[0]} wk then every {gaps[1]} wk"
    return "every " + "/".join(str(g) for g in gaps) + " wk"


def _skin_text(index: Mapping[str, Any]) -> str:
    detail = index.get("skin_test_detail") or ""
    sign = {"positive": "+", "negative": "–", "not-done": "not done"}.get(str(index.get("skin_test")), "")
    return f"{sign} {detail}".strip()


def desensitization_case_series(reg: Registry) -> list[dict[str, Any]]:
    """One row per desensitization course with an index reaction (course order), the seed-004 table's
    columns computed from the registry: patient (sex/age), context, culprit drug, index severity (scale
    grade), skin test, phenotype, omalizumab doses before the next desensitization / maintenance, outcome /
    tolerated cycles.

    Omalizumab "before next DS": the course's doses up to the first session on or after the first dose;
    maintenance: the intervals (weeks) of the later doses counted from the last pre-dose ("stopped" for a
    stopped course without later doses, "-" otherwise). Tolerated cycles: sessions from the first dose on
    finished completed (with reactions or not); "(MCR)" / "(MCR at first)" when the first of them had only
    mild reactions; "Discontinued" for a stopped course with none."""
    rows: list[dict[str, Any]] = []
    with reg.session() as s:
        courses = s.scalars(select(m.Course).where(m.Course.kind == KIND).order_by(m.Course.id))
        for c in courses:
            plan = c.plan if isinstance(c.plan, Mapping) else {}
            index = plan.get("index_reaction")
            if not isinstance(index, Mapping) or not index:
                continue
            p = c.patient
            doses = [clock.local_date(d.given_at) for d in _doses(s, c.id)]
            sessions = _sessions(s, c.id)
            under = [x for x in sessions if doses and x.session_on >= doses[0]]
            first_ds = under[0].session_on if under else None
            pre = [d for d in doses if first_ds is None or d <= first_ds]
            after = [d for d in doses if first_ds is not None and d > first_ds]
            tolerated = [x for x in under if x.outcome in TOLERATED]
            if tolerated:
                n = len(tolerated)
                outcome = f"{n} cycle" + ("s" if n > 1 else "")
                first_reactions = _session_reactions(s, tolerated[0])
                if first_reactions and all(r.grade == "mild" for r in first_reactions):
                    outcome += " (MCR at first)" if n > 1 else " (MCR)"
                elif first_reactions:
                    outcome += " (reactions at first)"
            else:
                outcome = "Discontinued" if c.status == "stopped" else "no cycle tolerated yet"
            age = None
            if p.birth_date is not None:
                day = date.fromisoformat(str(index["date"]))
                age = (
                    day.year
                    - p.birth_date.year
                    - ((day.month, day.day) < (p.birth_date.month, p.birth_date.day))
                )
            elif p.age_years is not None:
                age = p.age_years
            rows.append(
                {
                    "course_id": c.id,
                    "patient": p.pseudo_id,
                    "sex_age": f"{(p.sex or '?')[:1].upper()}/{age if age is not None else '?'}",
                    "context": index.get("context") or "",
                    "culprit_drug": (c.drug or "").capitalize(),
                    "severity": f"Grade {index.get('grade_number')}",
                    "scale": index.get("scale"),
                    "skin_test": _skin_text(index),
                    "phenotype": PHENOTYPE_LABEL.get(
                        str(index.get("phenotype")), str(index.get("phenotype") or "")
                    ),
                    "omalizumab_before_next_ds": f"{len(pre)} dose" + ("s" if len(pre) != 1 else ""),
                    "omalizumab_maintenance": _maintenance(pre[-1] if pre else None, after, c.status),
                    "outcome": outcome,
                    "tolerated_cycles": len(tolerated),
                    "omalizumab_doses": len(doses),
                    "cycles": len(sessions),
                    "adjuvant_off_label": bool((adjuvant_plan(c) or {}).get("off_label")),
                }
            )
    return rows
