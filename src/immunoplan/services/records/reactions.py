"""Reactions, linked to the dose that caused them and graded on a named scale.

- `record_reaction` (keyword style: injection day, desensitization, tests, FHIR) validates with `ReactionIn`
  and writes in one transaction (`unit_of_work.write`).
- `add_reaction` is the same write inside a caller's transaction (a use case that records a reaction together
  with something else, e.g. a desensitization step stopped by a breakthrough reaction).
- `amend_reaction` re-validates an amendment with `ReactionIn` (called by `services.records.corrections`).

Timing is derived in clinic time (`immunoplan.clock`): minutes after the causing dose and days from the
course's first live injection (clinic-local dates). A voided injection, omalizumab dose or desensitization
step is never a cause. Vocabularies from `immunoplan.clinical.vocabularies`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from immunoplan import clock
from immunoplan.clinical.vocabularies import (
    DESENSITIZATION_SYMPTOMS,
    REACTION_KINDS,
    REACTION_SYMPTOMS,
    VISIT_CODES,
)
from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.inputs import InputModel, validate
from immunoplan.services.records.amending import (
    apply_changes,
    refuse_nothing_changed,
    refuse_unknown_fields,
    stamp_amended,
)
from immunoplan.services.records.common import as_row, basis_json, find_patient, find_visit
from immunoplan.services.records.fields import (
    OptionalClinicInstant,
    choice_field,
    one_of,
    refuse_future_instant,
)
from immunoplan.services.unit_of_work import write

#: Findings a reaction may record: the symptom codes every grading scale reads (``grading_symptoms``) and the
#: symptoms recorded with a desensitization breakthrough reaction.
FINDINGS: tuple[str, ...] = tuple(dict.fromkeys((*REACTION_SYMPTOMS, *DESENSITIZATION_SYMPTOMS)))
#: The columns an amendment may change.
AMENDABLE = ("kind", "grade", "scale", "scale_version", "findings", "onset_at", "treatment", "outcome")


class ReactionIn(InputModel):
    """A reaction as recorded (the causing dose by id; the patient by the caller)."""

    kind: Annotated[str, one_of(REACTION_KINDS)] = choice_field(REACTION_KINDS)
    grade: str | None = Field(None, max_length=32)
    scale: str | None = Field(None, max_length=32)
    scale_version: str | None = Field(None, max_length=200)
    findings: list[Annotated[str, one_of(FINDINGS)]] | None = Field(
        None, max_length=len(FINDINGS), json_schema_extra={"accepted": ", ".join(FINDINGS)}
    )
    treatments: list[str] | None = Field(None, max_length=20)
    onset_at: OptionalClinicInstant = Field(
        None,
        description="onset (clinic time unless an offset is given)",
        json_schema_extra={"accepted": "YYYY-MM-DDTHH:MM (clinic time)"},
    )
    injection_id: int | None = Field(None, ge=1)
    omalizumab_administration_id: int | None = Field(None, ge=1)
    desensitization_step_id: int | None = Field(None, ge=1)
    visit_code: Annotated[str | None, one_of(VISIT_CODES)] = choice_field(VISIT_CODES, None)
    treatment: str | None = Field(None, max_length=2000)
    outcome: str | None = Field(None, max_length=32)
    basis: Any = None

    @field_validator("findings", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [x.strip() for x in v.replace(";", ",").split(",") if x.strip()] or None
        return v or None


def _grade(scale: str, findings: list[str], treatments: list[str]) -> dict[str, Any] | None:
    """Grade with `immunoplan.clinical.reactions.grade` when it knows ``scale`` (else None)."""
    from immunoplan.clinical import reactions

    if scale not in reactions.SCALES:
        return None
    g = reactions.grade(
        scale, reactions.Findings(symptoms=frozenset(findings), treatments=frozenset(treatments))
    )
    return {"grade": g.grade, "scale_version": g.scale_version, "basis": g.basis.to_dict()}


def _graded(r: ReactionIn) -> tuple[str | None, str | None, Any]:
    """(grade, scale_version, basis): the caller's, or the grading engine's for the findings on ``scale``."""
    grade, version, basis = r.grade, r.scale_version, r.basis
    if not grade and r.findings and r.scale:
        g = _grade(r.scale, r.findings, r.treatments or [])
        if g is not None:
            grade, version, basis = g["grade"], g["scale_version"], basis or g["basis"]
    if grade and not r.scale:
        raise InvalidInput("scale", "a grade needs the name of its scale", "e.g. wao2010, brown2004, seed001")
    return grade or None, version, basis


def _cause(
    s: Session, p: m.Patient, r: ReactionIn, *, live: bool = True
) -> tuple[int | None, Any, int | None]:
    """(course id, time of the causing dose, step id) from the linked injection, omalizumab dose or step
    (``live``: refuse a voided one, for a new link)."""
    course_id, dose_time, step_id = None, None, None

    def _not_voided(row: Any, field: str, what: str) -> None:
        if live and row.voided_at is not None:
            raise InvalidInput(
                field, f"{what} was voided ({row.void_reason}): link the reaction to a dose that was given"
            )

    if r.injection_id is not None:
        inj = s.get(m.Injection, r.injection_id)
        if inj is None or inj.patient_id != p.id:
            raise InvalidInput("injection_id", f"no injection {r.injection_id} for patient {p.pseudo_id}")
        _not_voided(inj, "injection_id", f"injection {inj.id}")
        course_id, dose_time = inj.course_id, inj.given_at
    if r.omalizumab_administration_id is not None:
        om = s.get(m.OmalizumabAdministration, r.omalizumab_administration_id)
        if om is None or om.patient_id != p.id:
            raise InvalidInput("omalizumab_administration_id", "no such administration for this patient")
        _not_voided(om, "omalizumab_administration_id", f"omalizumab administration {om.id}")
        course_id, dose_time = course_id or om.course_id, dose_time or om.given_at
    if r.desensitization_step_id is not None:
        st = s.get(m.DesensitizationStep, r.desensitization_step_id)
        if st is None:
            raise InvalidInput("desensitization_step_id", "no such desensitization step")
        sess = s.get(m.DesensitizationSession, st.session_id)
        if sess is None or sess.patient_id != p.id:
            raise InvalidInput("desensitization_step_id", "step belongs to another patient")
        _not_voided(st, "desensitization_step_id", f"desensitization step {st.id}")
        step_id, course_id, dose_time = st.id, course_id or sess.course_id, dose_time or st.started_at
    return course_id, dose_time, step_id


def _timing(s: Session, course_id: int | None, dose_time: Any, onset: datetime | None) -> tuple[Any, Any]:
    """(minutes after the causing dose, days from the course's first live injection), clinic-local dates."""
    minutes = days = None
    if onset is not None and dose_time is not None:
        minutes = math.floor(clock.minutes_between(dose_time, onset))
        if minutes < 0:
            raise InvalidInput("onset_at", "is before the dose that caused it")
    if onset is not None and course_id is not None:
        first = s.scalar(
            select(func.min(m.Injection.given_at)).where(
                m.Injection.course_id == course_id, m.Injection.voided_at.is_(None)
            )
        )
        if first is not None:
            days = (clock.local_date(clock.to_utc_stored(onset)) - clock.local_date(first)).days
    return minutes, days


def add_reaction(s: Session, p: m.Patient, r: ReactionIn) -> m.Reaction:
    """Write reaction ``r`` of patient ``p`` in the caller's transaction (flushed: it has its id)."""
    grade, version, basis = _graded(r)
    course_id, dose_time, step_id = _cause(s, p, r)
    refuse_future_instant("onset_at", r.onset_at)
    minutes, days = _timing(s, course_id, dose_time, r.onset_at)
    visit = find_visit(s, p, r.visit_code)
    treatment = (
        r.treatment if r.treatment is not None else (", ".join(r.treatments) if r.treatments else None)
    )
    row = m.Reaction(
        patient_id=p.id,
        course_id=course_id,
        visit_id=visit.id if visit else None,
        injection_id=r.injection_id,
        omalizumab_administration_id=r.omalizumab_administration_id,
        desensitization_step_id=step_id,
        kind=r.kind,
        onset_at=r.onset_at,
        minutes_after_dose=minutes,
        days_from_first_dose=days,
        findings=r.findings,
        grade=grade,
        scale=r.scale,
        scale_version=version,
        treatment=treatment,
        outcome=r.outcome,
        basis=basis_json(basis),
    )
    s.add(row)
    s.flush()
    return row


def record_reaction(
    reg: Registry,
    actor: str,
    *,
    pseudo_id: str,
    kind: str,
    grade: str | None = None,
    scale: str | None = None,
    scale_version: str | None = None,
    findings: list[str] | None = None,
    onset_at: Any = None,
    injection_id: Any = None,
    omalizumab_administration_id: Any = None,
    desensitization_step_id: Any = None,
    visit_code: str | None = None,
    treatment: str | None = None,
    treatments: list[str] | None = None,
    outcome: str | None = None,
    basis: Any = None,
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Record a reaction linked to its cause. Timing is derived: minutes after the causing dose and days from
    the course's first dose. Without ``grade``, the findings (symptom codes) and ``treatments`` are graded on
    ``scale`` by `immunoplan.clinical.reactions.grade` (wao2010, wao2017, brown2004, ctcae-*, seed001), which
    also supplies the scale version and basis; otherwise the caller's grade on its named scale is stored."""
    r = validate(
        ReactionIn,
        {
            "kind": kind,
            "grade": None if grade in (None, "") else str(grade),
            "scale": scale,
            "scale_version": scale_version,
            "findings": findings,
            "treatments": treatments,
            "onset_at": onset_at,
            "injection_id": injection_id,
            "omalizumab_administration_id": omalizumab_administration_id,
            "desensitization_step_id": desensitization_step_id,
            "visit_code": visit_code,
            "treatment": treatment,
            "outcome": outcome,
            "basis": to_jsonable(basis),
        },
    )
    _graded(r)  # refuse a grade without its scale before opening the transaction

    def run(s: Session) -> dict[str, Any]:
        return as_row(add_reaction(s, find_patient(s, pseudo_id), r))

    return write(reg, actor, "record_reaction", run, idempotency_key=idempotency_key)


def amend_reaction(
    s: Session, actor: str, row: m.Reaction, changes: Mapping[str, Any], reason: str, at: datetime
) -> dict[str, Any]:
    """Amend a live reaction (any of `AMENDABLE`), re-validated with `ReactionIn`; new findings on a grading
    scale are re-graded unless a grade is given; a new onset re-derives the timing."""
    refuse_unknown_fields(changes, AMENDABLE, "a reaction")
    current = {c: getattr(row, c) for c in AMENDABLE if getattr(row, c) is not None}
    merged = {**current, **changes}
    if "findings" in changes and "grade" not in changes:
        merged.pop("grade", None)  # re-grade the new findings on the scale (when the engine knows it)
    r = validate(ReactionIn, merged)
    grade, version, _basis = _graded(r)
    new = {
        "kind": r.kind,
        "grade": grade if grade is not None or "grade" in changes else row.grade,
        "scale": r.scale,
        "scale_version": version,
        "findings": r.findings,
        "onset_at": r.onset_at,
        "treatment": r.treatment,
        "outcome": r.outcome,
    }
    changed = apply_changes(row, new)
    refuse_nothing_changed(changed)
    if "onset_at" in changed:
        p = s.get(m.Patient, row.patient_id)
        assert p is not None
        cause = ReactionIn.model_validate(
            {
                "kind": row.kind,
                "injection_id": row.injection_id,
                "omalizumab_administration_id": row.omalizumab_administration_id,
                "desensitization_step_id": row.desensitization_step_id,
            }
        )
        course_id, dose_time, _ = _cause(s, p, cause, live=False)
        row.minutes_after_dose, row.days_from_first_dose = _timing(s, course_id, dose_time, r.onset_at)
    stamp_amended(row, actor, reason, at)
    return {"changed": changed}
