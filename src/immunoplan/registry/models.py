"""Registry schema: SQLAlchemy 2 typed models (same code on SQLite and PostgreSQL 15).

Schema overview (one row = one fact; every clinical row belongs to a patient; names carry units)::

  patients
    diagnoses          coded diagnoses (allergic asthma, rhinitis, drug allergy ...)
    visits             code baseline/week12/week24/week48/month12/...; date; asthma step;
                       medication burden score
    measurements       kind (total_ige_iu_ml, sige_kua_l + allergen, eosinophils_10e9_l, feno_ppb,
                       tryptase_ug_l, fev1_l, fev1_pct_pred, fvc_l, fev1_fvc_pct, pef_pct_pred,
                       weight_kg ...), value, unit, date, optional visit; GLI z-score/% predicted
    questionnaires     instrument (ACT, C-ACT, ACQ-5/6/7, AQLQ, mini-AQLQ), items, score
    risk_assessments   the assessment shown: sIgE class ("grade"), sIgE/total ratio %, age group,
                       risk tier, advice, result JSON, basis (rule/table id + version)
    courses            SCIT/RIT/cluster/OIT/drug desensitization/omalizumab; stored plan; target
                       (peak) dose reached; next dose due
      injections                  dose, unit, vial, volume, site, lot
      omalizumab_administrations  dose_mg, interval
      desensitization_sessions -> desensitization_steps (bag, rate_ml_h, dose_mg)
      dose_decisions              decision shown (dose/do-not-dose/outside-table/override)
    reactions          local/systemic, grade + scale + scale_version, minutes after dose, days from
                       first dose, findings, treatment, outcome; linked to the injection, step or
                       omalizumab dose that caused it
  users                web-app accounts (auth written by the web engineer)
  audit_log            append-only: who/when/what/before/after of every change

Study data of seeds 000/001 live in ordinary columns: ``patients.cohort`` (e.g. ``seed000``, ``seed001``,
``clinic``), ``patients.study_group`` (``RIT`` / ``RIT+Omb-pre`` for seed 000, ``SCIT`` / ``Omb+SCIT`` for
seed 001), ``patients.age_group``; mite sIgE grade and sIgE/T-IgE ratio in ``risk_assessments``; target-dose
completion in ``courses.target_reached``; per-visit outcomes in ``measurements``/``questionnaires`` joined on
``visit_id`` (``visits.code``). Doses, volumes and rates are exact `Decimal` (`ExactDecimal`).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from immunoplan.clinical.vocabularies import (  # noqa: F401  (re-exported: registry vocabularies)
    AGE_GROUPS,
    COURSE_KINDS,
    COURSE_STATUSES,
    INJECTION_PHASES,
    OMALIZUMAB_MODES,
    QUESTIONNAIRES,
    REACTION_KINDS,
    SEXES,
    VISIT_CODES,
)
from immunoplan.registry.types import ExactDecimal

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Controlled vocabularies: the clinical ones are the core's (`immunoplan.clinical.vocabularies`); validated by
# the service layer and the importer; documented in data-dictionary.md.
OMALIZUMAB_TIMINGS = OMALIZUMAB_MODES
SMOKING = ("never", "former", "current")
ROLES = ("admin", "clinician", "nurse", "pharmacist", "researcher")
AUDIT_ACTIONS = ("insert", "update", "delete", "bulk_insert", "restore")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {Decimal: ExactDecimal(), dict[str, Any]: JSON(), list[Any]: JSON()}


def _now() -> datetime:
    from immunoplan import clock

    return clock.now()


def _live(*columns: str, name: str) -> Index:
    """A unique index over ``columns`` for rows that are not voided (a voided entry may be re-entered)."""
    from sqlalchemy import text

    where = text("voided_at IS NULL")
    return Index(name, *columns, unique=True, sqlite_where=where, postgresql_where=where)


class Correctable:
    """Corrections, never deletions: an entry is amended (in place; the audit trail keeps the original) or
    voided, each with who, when and why. Analyses and next-dose rules read only entries not voided."""

    voided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    voided_by: Mapped[str | None] = mapped_column(String(64))
    void_reason: Mapped[str | None] = mapped_column(Text)
    amended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    amended_by: Mapped[str | None] = mapped_column(String(64))
    amend_reason: Mapped[str | None] = mapped_column(Text)

    @property
    def voided(self) -> bool:
        return self.voided_at is not None


class Patient(Base):
    """A pseudonymous patient; ``mrn`` and ``display_name`` are the direct identifiers (research exports drop
    them; ``pseudo_id`` is never derived from the MRN)."""

    __tablename__ = "patients"
    __table_args__ = (
        Index(
            "uq_patients_mrn",
            "mrn",
            unique=True,
            sqlite_where=text("mrn IS NOT NULL"),
            postgresql_where=text("mrn IS NOT NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pseudo_id: Mapped[str] = mapped_column(String(64), unique=True)
    mrn: Mapped[str | None] = mapped_column(String(64))  # the clinic's medical record number (unique)
    display_name: Mapped[str | None] = mapped_column(String(200))
    birth_date: Mapped[date | None] = mapped_column(Date)
    age_years: Mapped[int | None] = mapped_column(Integer)  # age at enrolment when no birth date is held
    age_group: Mapped[str | None] = mapped_column(String(16))
    sex: Mapped[str] = mapped_column(String(16), default="unknown")
    height_cm: Mapped[float | None] = mapped_column(Float)
    smoking: Mapped[str | None] = mapped_column(String(16))
    family_history_asthma: Mapped[bool | None] = mapped_column(Boolean)
    comorbid_allergies: Mapped[bool | None] = mapped_column(Boolean)
    previous_biologics: Mapped[bool | None] = mapped_column(Boolean)
    asthma_step: Mapped[int | None] = mapped_column(Integer)  # GINA step at enrolment
    cohort: Mapped[str] = mapped_column(String(32), default="clinic", index=True)
    study_group: Mapped[str | None] = mapped_column(String(32), index=True)
    enrolled_on: Mapped[date | None] = mapped_column(Date)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    diagnoses: Mapped[list[Diagnosis]] = relationship(back_populates="patient", cascade="all, delete-orphan")
    courses: Mapped[list[Course]] = relationship(back_populates="patient", cascade="all, delete-orphan")
    visits: Mapped[list[Visit]] = relationship(back_populates="patient", cascade="all, delete-orphan")


class Diagnosis(Base):
    __tablename__ = "diagnoses"
    __table_args__ = (UniqueConstraint("patient_id", "code", name="uq_diagnoses_patient_code"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64))  # e.g. allergic_asthma, allergic_rhinitis, drug_allergy
    system: Mapped[str] = mapped_column(String(64), default="immunoplan")  # or ICD-10, SNOMED CT
    label: Mapped[str | None] = mapped_column(String(200))
    allergen: Mapped[str | None] = mapped_column(String(64))  # e.g. d1 (D. pteronyssinus), a drug name
    severity: Mapped[str | None] = mapped_column(String(32))
    onset_on: Mapped[date | None] = mapped_column(Date)
    patient: Mapped[Patient] = relationship(back_populates="diagnoses")


class Visit(Correctable, Base):
    __tablename__ = "visits"
    __table_args__ = (_live("patient_id", "code", "visit_on", name="uq_visits_patient_code_date"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    course_id: Mapped[int | None] = mapped_column(ForeignKey("courses.id", ondelete="SET NULL"), index=True)
    code: Mapped[str] = mapped_column(String(16))
    visit_on: Mapped[date] = mapped_column(Date)
    week: Mapped[int | None] = mapped_column(Integer)  # weeks since course start
    asthma_step: Mapped[int | None] = mapped_column(Integer)
    medication_score: Mapped[float | None] = mapped_column(Float)  # daily medication burden score
    notes: Mapped[str | None] = mapped_column(Text)
    patient: Mapped[Patient] = relationship(back_populates="visits")


class Measurement(Correctable, Base):
    """One laboratory or functional result. ``allergen`` is '' unless the kind is allergen-specific."""

    __tablename__ = "measurements"
    __table_args__ = (
        _live("patient_id", "kind", "allergen", "measured_on", name="uq_measurements_natural"),
        Index("ix_measurements_kind_visit", "kind", "visit_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    allergen: Mapped[str] = mapped_column(String(64), default="")
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(16))
    measured_on: Mapped[date] = mapped_column(Date)
    pct_predicted: Mapped[float | None] = mapped_column(Float)
    z_score: Mapped[float | None] = mapped_column(Float)
    reference_equation: Mapped[str | None] = mapped_column(String(32))  # e.g. GLI-2012
    method: Mapped[str | None] = mapped_column(String(64))  # e.g. ImmunoCAP


class Questionnaire(Correctable, Base):
    __tablename__ = "questionnaires"
    __table_args__ = (_live("patient_id", "instrument", "completed_on", name="uq_questionnaires_natural"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id", ondelete="SET NULL"), index=True)
    instrument: Mapped[str] = mapped_column(String(16))
    completed_on: Mapped[date] = mapped_column(Date)
    items: Mapped[list[Any] | None] = mapped_column(JSON)
    score: Mapped[float] = mapped_column(Float)


class RiskAssessment(Base):
    """The risk assessment that was shown, with the inputs, result and basis (rule/table id and version)."""

    __tablename__ = "risk_assessments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    course_id: Mapped[int | None] = mapped_column(ForeignKey("courses.id", ondelete="SET NULL"))
    assessed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    actor: Mapped[str] = mapped_column(String(64))
    age_group: Mapped[str | None] = mapped_column(String(16))
    sige_kua_l: Mapped[float | None] = mapped_column(Float)
    total_ige_iu_ml: Mapped[float | None] = mapped_column(Float)
    sige_class: Mapped[int | None] = mapped_column(Integer)  # ImmunoCAP class 0-6 ("sIgE grade")
    sige_total_ratio_pct: Mapped[float | None] = mapped_column(Float)
    risk_tier: Mapped[str | None] = mapped_column(String(32))
    advice: Mapped[str | None] = mapped_column(Text)
    inputs: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    basis: Mapped[list[Any] | None] = mapped_column(JSON)  # [{id, version, source, status, rule}]


class Course(Base):
    """A treatment course and its stored plan (SCIT/RIT/cluster/OIT/drug desensitization/omalizumab)."""

    __tablename__ = "courses"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    product: Mapped[str | None] = mapped_column(String(120))  # e.g. Alutard SQ D. pteronyssinus
    allergen: Mapped[str | None] = mapped_column(String(64))
    drug: Mapped[str | None] = mapped_column(String(120))  # drug desensitized to
    regimen: Mapped[str | None] = mapped_column(String(120))  # regimen name as shown / protocol scheme
    product_id: Mapped[str | None] = mapped_column(String(64))  # scit_products id, e.g. alutard-sq-hdm
    regimen_id: Mapped[str | None] = mapped_column(String(32))  # scit_products regimen id, e.g. cluster
    start_time: Mapped[str | None] = mapped_column(String(5))  # first visit's clock time, HH:MM (clinic)
    maintenance_interval_weeks: Mapped[int | None] = mapped_column(Integer)
    omalizumab_lead_weeks: Mapped[int | None] = mapped_column(Integer)
    with_omalizumab: Mapped[bool] = mapped_column(Boolean, default=False)
    omalizumab_timing: Mapped[str] = mapped_column(String(16), default="none")
    status: Mapped[str] = mapped_column(String(16), default="planned")
    started_on: Mapped[date | None] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date)
    stop_reason: Mapped[str | None] = mapped_column(Text)
    target_dose: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    dose_unit: Mapped[str | None] = mapped_column(String(16))  # SQ-U, mg, ...
    target_reached: Mapped[bool | None] = mapped_column(Boolean)  # reached the target (peak) dose
    target_reached_on: Mapped[date | None] = mapped_column(Date)
    interval_days: Mapped[int | None] = mapped_column(Integer)  # planned interval to the next dose
    next_due_on: Mapped[date | None] = mapped_column(Date, index=True)
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the stored plan as shown
    basis: Mapped[list[Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    patient: Mapped[Patient] = relationship(back_populates="courses")
    injections: Mapped[list[Injection]] = relationship(back_populates="course", cascade="all, delete-orphan")


class Injection(Correctable, Base):
    """One allergen-immunotherapy injection given."""

    __tablename__ = "injections"
    __table_args__ = (_live("course_id", "given_at", name="uq_injections_course_given"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    sequence: Mapped[int | None] = mapped_column(Integer)
    given_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    phase: Mapped[str | None] = mapped_column(String(16))
    dose: Mapped[Decimal] = mapped_column(ExactDecimal())
    dose_unit: Mapped[str] = mapped_column(String(16))
    vial: Mapped[str | None] = mapped_column(String(32))  # e.g. "4 (100000 SQ-U/mL)"
    volume_ml: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    site: Mapped[str | None] = mapped_column(String(32))
    lot: Mapped[str | None] = mapped_column(String(64))
    observed_minutes: Mapped[int | None] = mapped_column(Integer)
    given_by: Mapped[str | None] = mapped_column(String(64))
    override_reason: Mapped[str | None] = mapped_column(Text)  # given before the earliest time: why
    vial_id: Mapped[int | None] = mapped_column(ForeignKey("vials.id", ondelete="SET NULL"), index=True)
    new_vial: Mapped[bool | None] = mapped_column(Boolean)  # the new-vial rule applied (change of vial/lot)
    checks: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # pre-injection check: answers and outcome
    course: Mapped[Course] = relationship(back_populates="injections")


class Vial(Correctable, Base):
    """A patient's vial of an immunotherapy product (or an omalizumab syringe lot): what it holds, its lot
    and expiry. An injection names the vial it was drawn from; an expired vial is refused."""

    __tablename__ = "vials"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[str] = mapped_column(String(64))  # scit_products id, or "omalizumab"
    strength: Mapped[str | None] = mapped_column(String(16))  # the product's vial number (strength)
    concentration: Mapped[str | None] = mapped_column(String(64))  # e.g. "100000 SQ-U/mL"
    allergens: Mapped[str | None] = mapped_column(String(200))
    colour: Mapped[str | None] = mapped_column(String(32))
    lot: Mapped[str] = mapped_column(String(64))
    expiry_on: Mapped[date] = mapped_column(Date)
    opened_on: Mapped[date | None] = mapped_column(Date)
    volume_ml: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    created_by: Mapped[str | None] = mapped_column(String(64))


class NoShow(Correctable, Base):
    """A visit the patient did not come to: recorded so the front desk's recall list and the research
    exports see it (it changes no dose; the missed-dose rules read the interval when they come back)."""

    __tablename__ = "no_shows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    due_on: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    recorded_by: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)


class OmalizumabAdministration(Correctable, Base):
    __tablename__ = "omalizumab_administrations"
    __table_args__ = (_live("patient_id", "given_at", name="uq_omalizumab_patient_given"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    course_id: Mapped[int | None] = mapped_column(ForeignKey("courses.id", ondelete="SET NULL"), index=True)
    given_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    dose_mg: Mapped[Decimal] = mapped_column(ExactDecimal())
    interval_weeks: Mapped[int | None] = mapped_column(Integer)
    site: Mapped[str | None] = mapped_column(String(32))
    lot: Mapped[str | None] = mapped_column(String(64))
    expiry_on: Mapped[date | None] = mapped_column(Date)
    observed_minutes: Mapped[int | None] = mapped_column(Integer)
    basis: Mapped[list[Any] | None] = mapped_column(JSON)


class DesensitizationSession(Base):
    __tablename__ = "desensitization_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    session_on: Mapped[date] = mapped_column(Date)
    drug: Mapped[str] = mapped_column(String(120))
    target_dose_mg: Mapped[Decimal] = mapped_column(ExactDecimal())
    protocol: Mapped[str | None] = mapped_column(String(64))  # e.g. 12-step-3-bag
    completed: Mapped[bool | None] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16), default="in-progress", server_default="in-progress")
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(32))  # completed, completed-with-reactions, stopped
    dose_given_mg: Mapped[Decimal | None] = mapped_column(ExactDecimal())  # recorded when finished
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    basis: Mapped[list[Any] | None] = mapped_column(JSON)
    # before the first step: serum tryptase (ng/mL = ug/L) with its sampling time, and vital signs
    # ({"systolic_bp_mmhg", "diastolic_bp_mmhg", "heart_rate_bpm", "spo2_pct", "temperature_c"} as exact text)
    baseline_tryptase_ng_ml: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    baseline_tryptase_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    baseline_vital_signs: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class DesensitizationStep(Correctable, Base):
    __tablename__ = "desensitization_steps"
    __table_args__ = (_live("session_id", "replan_no", "step_no", name="uq_desensitization_steps_step"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("desensitization_sessions.id", ondelete="CASCADE"))
    # 0 = the original protocol; n = the n-th re-planned continuation after a breakthrough reaction, whose
    # steps keep their protocol numbers (resume at step 10: steps 10, 11, 12 of continuation 1)
    replan_no: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    step_no: Mapped[int] = mapped_column(Integer)
    bag: Mapped[int | None] = mapped_column(Integer)
    rate_ml_h: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    minutes: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    dose_mg: Mapped[Decimal] = mapped_column(ExactDecimal())
    cumulative_dose_mg: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="given")  # given, paused, skipped, stopped
    early_reason: Mapped[str | None] = mapped_column(Text)  # why a step was started before its earliest time


class DoseDecision(Base):
    """A dose decision that was shown (dose / do-not-dose / outside-table / override) with its basis."""

    __tablename__ = "dose_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    course_id: Mapped[int | None] = mapped_column(ForeignKey("courses.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    actor: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    dose: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    dose_unit: Mapped[str | None] = mapped_column(String(16))
    override_reason: Mapped[str | None] = mapped_column(Text)
    inputs: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    basis: Mapped[list[Any] | None] = mapped_column(JSON)


class Reaction(Correctable, Base):
    """An adverse reaction, graded on a named scale/version and linked to its cause when known."""

    __tablename__ = "reactions"
    __table_args__ = (
        CheckConstraint("kind in ('local', 'systemic')", name="kind"),
        Index("ix_reactions_patient_kind", "patient_id", "kind"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    course_id: Mapped[int | None] = mapped_column(ForeignKey("courses.id", ondelete="SET NULL"), index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id", ondelete="SET NULL"))
    injection_id: Mapped[int | None] = mapped_column(ForeignKey("injections.id", ondelete="SET NULL"))
    omalizumab_administration_id: Mapped[int | None] = mapped_column(
        ForeignKey("omalizumab_administrations.id", ondelete="SET NULL")
    )
    desensitization_step_id: Mapped[int | None] = mapped_column(
        ForeignKey("desensitization_steps.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(16))
    onset_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    minutes_after_dose: Mapped[int | None] = mapped_column(Integer)
    days_from_first_dose: Mapped[int | None] = mapped_column(Integer)
    findings: Mapped[list[Any] | None] = mapped_column(JSON)  # e.g. ["urticaria", "wheeze"]
    grade: Mapped[str | None] = mapped_column(String(32))  # e.g. "mild", "2"
    scale: Mapped[str | None] = mapped_column(String(32))  # e.g. wao2010, brown2004, seed001
    scale_version: Mapped[str | None] = mapped_column(String(200))
    treatment: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(32))  # resolved, ongoing, hospitalised ...
    basis: Mapped[list[Any] | None] = mapped_column(JSON)
    # vital signs at the reaction ({"systolic_bp_mmhg", "diastolic_bp_mmhg", "heart_rate_bpm", "spo2_pct",
    # "temperature_c"} as exact text); the treatments given ([{"drug", "dose", "unit", "route", "given_at"}]);
    # serum tryptase (ng/mL = ug/L) and when it was sampled; every scale graded ([{scale, grade, basis ...}],
    # the recorded one in grade/scale); the endophenotype (type I, cytokine release, mixed, undetermined)
    vital_signs: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    treatments_given: Mapped[list[Any] | None] = mapped_column(JSON)
    tryptase_ng_ml: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    tryptase_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    grades: Mapped[list[Any] | None] = mapped_column(JSON)
    phenotype: Mapped[str | None] = mapped_column(String(32))


class User(Base):
    """Web-app account (authentication code lives in the web layer)."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    __table_args__ = (
        CheckConstraint("role in ('admin', 'clinician', 'nurse', 'pharmacist', 'researcher')", name="role"),
    )


class AuditEntry(Base):
    """Append-only audit trail. The code has no update/delete path; triggers refuse them in the database."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), default=_now)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(16))
    table_name: Mapped[str] = mapped_column(String(64), index=True)
    row_id: Mapped[int | None] = mapped_column(Integer)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    use_case: Mapped[str | None] = mapped_column(String(64))


class IdempotencyKey(Base):
    """A write already done: the client's key, the use case and the result returned (a re-post, double
    submit or reload with the same key returns this result instead of writing again). Not clinical data,
    so not audited; written with Core statements."""

    __tablename__ = "idempotency_keys"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    use_case: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)


UNAUDITED_TABLES = ("audit_log", "idempotency_keys")
AUDITED_TABLES = tuple(t for t in Base.metadata.tables if t not in UNAUDITED_TABLES)
