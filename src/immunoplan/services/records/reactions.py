"""Reactions, linked to the dose that caused them and graded on a named scale."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from immunoplan.errors import InvalidInput
from immunoplan.registry import checks as ck
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.records.common import (
    basis_json,
    find_patient,
    find_visit,
    save_row,
)


def _grade(scale: str, findings: list[str], treatments: list[str]) -> dict[str, Any] | None:
    """Grade with `immunoplan.clinical.reactions.grade` when it knows ``scale`` (else None)."""
    try:
        from immunoplan.clinical import reactions
    except ImportError:  # pragma: no cover - engine not installed
        return None
    if scale not in reactions.SCALES:
        return None
    g = reactions.grade(
        scale, reactions.Findings(symptoms=frozenset(findings), treatments=frozenset(treatments))
    )
    return {"grade": g.grade, "scale_version": g.scale_version, "basis": g.basis.to_dict()}


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
) -> dict[str, Any]:
    """Record a reaction linked to its cause. Timing is derived: minutes after the causing dose and days from
    the course's first dose. Without ``grade``, the findings (symptom codes) and ``treatments`` are graded on
    ``scale`` by `immunoplan.clinical.reactions.grade` (wao2010, wao2017, brown2004, ctcae-*, seed001), which
    also supplies the scale version and basis; otherwise the caller's grade on its named scale is stored."""
    kind = ck.choice("kind", kind, m.REACTION_KINDS)
    onset = ck.to_datetime("onset_at", onset_at) if onset_at else None
    if grade in (None, "") and findings and scale:
        graded = _grade(scale, findings, treatments or [])
        if graded is not None:
            grade, scale_version = graded["grade"], graded["scale_version"]
            basis = basis or graded["basis"]
    if treatment is None and treatments:
        treatment = ", ".join(treatments)
    if grade not in (None, "") and not scale:
        raise InvalidInput("scale", "a grade needs the name of its scale", "e.g. wao2010, brown2004, seed001")
    with reg.transaction(actor, "record_reaction") as s:
        p = find_patient(s, pseudo_id)
        course_id, dose_time = None, None
        if injection_id not in (None, ""):
            inj = s.get(m.Injection, int(ck.to_float("injection_id", injection_id)))
            if inj is None or inj.patient_id != p.id:
                raise InvalidInput("injection_id", f"no injection {injection_id!r} for patient {p.pseudo_id}")
            course_id, dose_time = inj.course_id, inj.given_at
        if omalizumab_administration_id not in (None, ""):
            om = s.get(
                m.OmalizumabAdministration,
                int(ck.to_float("omalizumab_administration_id", omalizumab_administration_id)),
            )
            if om is None or om.patient_id != p.id:
                raise InvalidInput("omalizumab_administration_id", "no such administration for this patient")
            course_id, dose_time = course_id or om.course_id, dose_time or om.given_at
        step_id = None
        if desensitization_step_id not in (None, ""):
            st = s.get(
                m.DesensitizationStep, int(ck.to_float("desensitization_step_id", desensitization_step_id))
            )
            if st is None:
                raise InvalidInput("desensitization_step_id", "no such desensitization step")
            sess = s.get(m.DesensitizationSession, st.session_id)
            if sess is None or sess.patient_id != p.id:
                raise InvalidInput("desensitization_step_id", "step belongs to another patient")
            step_id, course_id, dose_time = st.id, course_id or sess.course_id, dose_time or st.started_at
        minutes = days = None
        if onset is not None and dose_time is not None:
            dt = dose_time if dose_time.tzinfo else dose_time.replace(tzinfo=onset.tzinfo)
            minutes = int((onset - dt).total_seconds() // 60)
            if minutes < 0:
                raise InvalidInput("onset_at", "is before the dose that caused it")
        if onset is not None and course_id is not None:
            first = s.scalar(select(func.min(m.Injection.given_at)).where(m.Injection.course_id == course_id))
            if first is not None:
                days = (onset.date() - first.date()).days
        visit = find_visit(s, p, visit_code)
        row = m.Reaction(
            patient_id=p.id,
            course_id=course_id,
            visit_id=visit.id if visit else None,
            injection_id=int(injection_id) if injection_id not in (None, "") else None,
            omalizumab_administration_id=int(omalizumab_administration_id)
            if omalizumab_administration_id not in (None, "")
            else None,
            desensitization_step_id=step_id,
            kind=kind,
            onset_at=onset,
            minutes_after_dose=minutes,
            days_from_first_dose=days,
            findings=findings,
            grade=None if grade in (None, "") else str(grade),
            scale=scale,
            scale_version=scale_version,
            treatment=treatment,
            outcome=outcome,
            basis=basis_json(basis),
        )
        return save_row(s, row)
