"""Read-side queries for the pages: patient list with due/late flags, timeline and trend series.

Display read models only, each in its own read session (routes never open one); every write goes through the
service layer (`immunoplan.services.records`) so the audit trail names the user. Ages are
`services.records.patients.age_on` and due/late is `clinical.immunotherapy.due_status`: one definition each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from immunoplan.clinical.immunotherapy.due import due_status
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.records.patients import age_on

PAGE_SIZE = 50


def due_flag(next_due_on: date | None, today: date) -> str | None:
    """The patient list's flag: `immunoplan.clinical.immunotherapy.due_status` (the one definition of due /
    late) with the clinic's default policy (no grace, no look-ahead); ``today`` is the clinic's date."""
    return due_status(next_due_on, today)


@dataclass
class PatientRow:
    id: int
    pseudo_id: str
    display_name: str | None
    age_years: int | None
    sex: str
    next_due_on: date | None
    flag: str | None
    active_courses: list[str] = field(default_factory=list)


def patient_list(reg: Registry, q: str, today: date, only_flagged: bool = False) -> list[PatientRow]:
    """Patients matching ``q`` (pseudonym or name), earliest due first, with due/late flags."""
    with reg.session() as s:
        return _patient_list(s, q, today, only_flagged)


def _patient_list(s: Session, q: str, today: date, only_flagged: bool) -> list[PatientRow]:
    stmt = select(m.Patient)
    if q:
        like = f"%{q.strip().lower()}%"
        stmt = stmt.where(
            or_(func.lower(m.Patient.pseudo_id).like(like), func.lower(m.Patient.display_name).like(like))
        )
    patients = s.scalars(stmt.order_by(m.Patient.pseudo_id).limit(PAGE_SIZE * 10)).all()
    ids = [p.id for p in patients]
    courses: dict[int, list[m.Course]] = {}
    if ids:
        for c in s.scalars(
            select(m.Course).where(m.Course.patient_id.in_(ids), m.Course.status.in_(("planned", "active")))
        ):
            courses.setdefault(c.patient_id, []).append(c)
    rows = []
    for p in patients:
        cs = courses.get(p.id, [])
        dues = [c.next_due_on for c in cs if c.next_due_on is not None]
        nxt = min(dues) if dues else None
        flag = due_flag(nxt, today)
        if only_flagged and flag is None:
            continue
        rows.append(
            PatientRow(
                p.id,
                p.pseudo_id,
                p.display_name,
                age_on(p.birth_date, p.age_years, today),
                p.sex,
                nxt,
                flag,
                [f"{c.kind} {c.allergen or c.drug or ''}".strip() for c in cs],
            )
        )
    rows.sort(key=lambda r: (r.next_due_on is None, r.next_due_on or date.max, r.pseudo_id))
    return rows[:PAGE_SIZE]


@dataclass
class TimelineEvent:
    at: datetime | date
    kind: str
    title: str
    detail: str = ""
    href: str | None = None
    #: a correctable entry: (kind, id) for its correction form, and who voided/amended it when and why
    ref: tuple[str, int] | None = None
    correction: dict[str, Any] | None = None

    @property
    def voided(self) -> bool:
        return bool(self.correction and self.correction.get("voided_at"))

    @property
    def sort_key(self) -> datetime:
        if isinstance(self.at, datetime):
            return self.at.replace(tzinfo=None)
        return datetime.combine(self.at, datetime.min.time())


def _fmt_num(x: Any) -> str:
    if x is None:
        return ""
    text = format(x, "f") if not isinstance(x, float) else f"{x:g}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _stamp(row: Any) -> dict[str, Any] | None:
    """Who voided or amended an entry, when and why (None for an entry never corrected)."""
    names = ("voided_at", "voided_by", "void_reason", "amended_at", "amended_by", "amend_reason")
    stamp = {k: getattr(row, k) for k in names}
    return stamp if stamp["voided_at"] or stamp["amended_at"] else None


def timeline(reg: Registry, patient_id: int) -> list[TimelineEvent]:
    """Everything that happened to a patient, newest first. Voided entries are kept (a page strikes them
    through with the reason) and corrected ones carry who corrected them, when and why (``correction``)."""
    with reg.session() as s:
        return _timeline(s, patient_id)


def _timeline(s: Session, patient_id: int) -> list[TimelineEvent]:
    ev: list[TimelineEvent] = []
    for a in s.scalars(select(m.RiskAssessment).where(m.RiskAssessment.patient_id == patient_id)):
        ev.append(
            TimelineEvent(
                a.assessed_at,
                "assessment",
                f"Assessment: risk {a.risk_tier or '?'}",
                a.advice or "",
                f"/patients/{patient_id}/assessments/{a.id}",
            )
        )
    for c in s.scalars(select(m.Course).where(m.Course.patient_id == patient_id)):
        title = f"Course planned: {c.kind} {c.allergen or c.drug or ''}".strip()
        if c.with_omalizumab:
            title += f" with omalizumab ({c.omalizumab_timing})"
        ev.append(
            TimelineEvent(
                c.created_at, "course", title, f"status {c.status}", f"/patients/{patient_id}/courses/{c.id}"
            )
        )
    for i in s.scalars(select(m.Injection).where(m.Injection.patient_id == patient_id)):
        ev.append(
            TimelineEvent(
                i.given_at,
                "injection",
                f"Injection {_fmt_num(i.dose)} {i.dose_unit}",
                f"vial {i.vial or '-'}, {_fmt_num(i.volume_ml)} mL, by {i.given_by or '-'}",
                ref=("injection", i.id),
                correction=_stamp(i),
            )
        )
    for o in s.scalars(
        select(m.OmalizumabAdministration).where(m.OmalizumabAdministration.patient_id == patient_id)
    ):
        ev.append(
            TimelineEvent(
                o.given_at,
                "omalizumab",
                f"Omalizumab {_fmt_num(o.dose_mg)} mg",
                ref=("omalizumab", o.id),
                correction=_stamp(o),
            )
        )
    for d in s.scalars(
        select(m.DesensitizationSession).where(m.DesensitizationSession.patient_id == patient_id)
    ):
        ev.append(
            TimelineEvent(
                d.session_on,
                "desensitization",
                f"Desensitization {d.drug} {_fmt_num(d.target_dose_mg)} mg",
                "completed" if d.completed else "in progress / not completed",
                f"/desensitization/{d.id}",
            )
        )
    for r in s.scalars(select(m.Reaction).where(m.Reaction.patient_id == patient_id)):
        at: datetime | date | None = r.onset_at
        note = ""
        if at is None:  # onset not recorded: place it at the dose that caused it
            inj = s.get(m.Injection, r.injection_id) if r.injection_id else None
            step = (
                s.get(m.DesensitizationStep, r.desensitization_step_id) if r.desensitization_step_id else None
            )
            at = (inj.given_at if inj else None) or (step.started_at if step else None)
            note = " (onset time not recorded)"
        ev.append(
            TimelineEvent(
                at or datetime.min,
                "reaction",
                f"Reaction: {r.kind}, grade {r.grade or '?'} ({r.scale or '-'})",
                ", ".join(r.findings or []) + note,
                ref=("reaction", r.id),
                correction=_stamp(r),
            )
        )
    for v in s.scalars(select(m.Visit).where(m.Visit.patient_id == patient_id)):
        ev.append(
            TimelineEvent(
                v.visit_on,
                "visit",
                f"Visit {v.code}",
                v.notes or "",
                f"/patients/{patient_id}/visits/{v.id}",
                ref=("visit", v.id),
                correction=_stamp(v),
            )
        )
    ev.sort(key=lambda e: e.sort_key, reverse=True)
    return ev


TREND_MEASURES = {
    "ige": ("Total IgE (IU/mL)", ("total_ige_iu_ml",)),
    "fev1": ("FEV1 (% predicted)", ("fev1_pct_pred",)),
}
TREND_QUESTIONNAIRES = {"control": ("ACT / ACQ score", ("ACT", "C-ACT", "ACQ-5", "ACQ-6", "ACQ-7"))}


def trends(reg: Registry, patient_id: int) -> dict[str, dict[str, Any]]:
    """Chart series: IgE, FEV1 %pred, ACT/ACQ over time (labels = ISO dates), voided entries left out."""
    with reg.session() as s:
        return _trends(s, patient_id)


def _trends(s: Session, patient_id: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, (label, kinds) in TREND_MEASURES.items():
        rows = s.execute(
            select(m.Measurement.measured_on, m.Measurement.kind, m.Measurement.value)
            .where(
                m.Measurement.patient_id == patient_id,
                m.Measurement.kind.in_(kinds),
                m.Measurement.voided_at.is_(None),
            )
            .order_by(m.Measurement.measured_on)
        ).all()
        if rows:
            out[key] = _series(label, [(r[0], r[1], r[2]) for r in rows])
    for key, (label, instruments) in TREND_QUESTIONNAIRES.items():
        rows = s.execute(
            select(m.Questionnaire.completed_on, m.Questionnaire.instrument, m.Questionnaire.score)
            .where(
                m.Questionnaire.patient_id == patient_id,
                m.Questionnaire.instrument.in_(instruments),
                m.Questionnaire.voided_at.is_(None),
            )
            .order_by(m.Questionnaire.completed_on)
        ).all()
        if rows:
            out[key] = _series(label, [(r[0], r[1], r[2]) for r in rows])
    return out


def _series(label: str, points: list[tuple[date, str, float]]) -> dict[str, Any]:
    labels = sorted({p[0].isoformat() for p in points})
    names = sorted({p[1] for p in points})
    datasets = []
    for name in names:
        by_day = {p[0].isoformat(): p[2] for p in points if p[1] == name}
        datasets.append({"label": name, "data": [by_day.get(d) for d in labels]})
    return {"title": label, "labels": labels, "datasets": datasets, "y_label": label}
