"""Patients: register a patient (pseudonym, MRN, coded diagnoses, the weight at registration) and read one.

``pseudo_id`` is the pseudonym used on every screen and in research exports; it is generated when not given,
at random (never derived from the MRN). ``mrn`` (the clinic's medical record number) and ``display_name``
are the direct identifiers: the de-identified export drops them (``registry_deidentification``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, AliasChoices, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from immunoplan import clock
from immunoplan.clinical import vocabularies as vocab
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.reference.limits import limit
from immunoplan.registry import checks as ck
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services import unit_of_work
from immunoplan.services.inputs import InputModel, validate
from immunoplan.services.records.common import as_input
from immunoplan.services.records.fields import (
    OptionalClinicDate,
    choice_field,
    local_row,
    not_future,
    one_of,
)

USE_CASE = "register_patient"
#: pseudonyms made here: "P-" + 10 characters without look-alikes (0/O, 1/I/L), about 50 bits at random
PSEUDO_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
PSEUDO_LENGTH = 10


class DiagnosisIn(InputModel):
    """A coded diagnosis (e.g. ``allergic_asthma``, system ``immunoplan``/ICD-10/SNOMED CT)."""

    code: str = Field(min_length=1, max_length=64)
    system: str = Field("immunoplan", min_length=1, max_length=64)
    label: str | None = Field(None, max_length=200)
    allergen: str | None = Field(None, max_length=64)
    severity: str | None = Field(None, max_length=32)


BirthDate = Annotated[OptionalClinicDate, AfterValidator(not_future("birth_date"))]


class PatientIn(InputModel):
    """A new patient, as typed on the form, sent to the API or given on the command line.

    ``display_name`` is also accepted as ``name`` (the CLI's ``--name``). ``weight_kg`` is stored as a
    ``weight_kg`` measurement dated the clinic's today, in the same transaction.
    """

    mrn: str | None = Field(None, min_length=1, max_length=64, description="medical record number (unique)")
    display_name: str | None = Field(
        None, max_length=200, validation_alias=AliasChoices("display_name", "name"), description="name"
    )
    pseudo_id: str | None = Field(
        None, min_length=1, max_length=64, description="pseudonym; generated at random when not given"
    )
    birth_date: BirthDate = Field(None, json_schema_extra={"accepted": "1900-01-01 to today (clinic date)"})
    sex: Annotated[str, one_of(vocab.SEXES)] = choice_field(vocab.SEXES, "unknown")
    weight_kg: Decimal | None = limit("weight_kg").pydantic(None)
    height_cm: float | None = limit("height_cm").pydantic(None)
    age_years: int | None = limit("age_years").pydantic(None, description="age when no birth date is held")
    age_group: Annotated[str | None, one_of(vocab.AGE_GROUPS)] = choice_field(vocab.AGE_GROUPS, None)
    smoking: Annotated[str | None, one_of(m.SMOKING)] = choice_field(m.SMOKING, None)
    asthma_step: int | None = limit("asthma_step").pydantic(None)
    cohort: str = Field("clinic", min_length=1, max_length=32)
    study_group: str | None = Field(None, max_length=32)
    enrolled_on: OptionalClinicDate = None
    diagnoses: tuple[DiagnosisIn, ...] = Field((), max_length=50)

    @field_validator("diagnoses")
    @classmethod
    def _one_row_per_code(cls, value: tuple[DiagnosisIn, ...]) -> tuple[DiagnosisIn, ...]:
        codes = [d.code for d in value]
        if len(codes) != len(set(codes)):
            raise InvalidInput("diagnoses", "lists the same diagnosis code twice", "one entry per code")
        return value


def _new_pseudo_id(s: Session) -> str:
    """A fresh random pseudonym not yet in the registry (never derived from the MRN or the name)."""
    while True:
        pid = "P-" + "".join(secrets.choice(PSEUDO_ALPHABET) for _ in range(PSEUDO_LENGTH))
        if s.scalar(select(m.Patient.id).where(m.Patient.pseudo_id == pid)) is None:
            return pid


def _registered(s: Session, column: Any, value: str | None) -> m.Patient | None:
    return None if value is None else s.scalar(select(m.Patient).where(column == value))


def _refuse_duplicates(s: Session, data: PatientIn) -> None:
    """An MRN or pseudonym already registered: `Conflict` naming that patient."""
    if same := _registered(s, m.Patient.mrn, data.mrn):
        message = f"MRN {data.mrn} already exists: it is patient {same.pseudo_id}"
        raise Conflict("mrn", message, f"patient {same.id} ({same.pseudo_id})")
    if same := _registered(s, m.Patient.pseudo_id, data.pseudo_id):
        message = f"patient {data.pseudo_id!r} already exists"
        raise Conflict("pseudo_id", message, f"patient {same.id} ({same.pseudo_id})")


def add_patient(
    reg: Registry, actor: str, data: PatientIn | Mapping[str, Any], *, idempotency_key: Any = None
) -> dict[str, Any]:
    """Register a patient in one transaction: the patient, its diagnoses and the weight at registration.

    Refused (nothing written): invalid fields (`InvalidInput`); an MRN or pseudonym already registered
    (`Conflict` naming that patient). Returns the patient row (plus ``weight_kg`` and, when a weight was
    given, ``weight_measurement_id``).
    """
    p = as_input(PatientIn, data)

    def fn(s: Session) -> dict[str, Any]:
        _refuse_duplicates(s, p)
        row = m.Patient(
            pseudo_id=p.pseudo_id or _new_pseudo_id(s),
            mrn=p.mrn,
            display_name=p.display_name,
            sex=p.sex,
            birth_date=p.birth_date,
            age_years=p.age_years,
            age_group=p.age_group,
            height_cm=p.height_cm,
            smoking=p.smoking,
            asthma_step=p.asthma_step,
            cohort=p.cohort,
            study_group=p.study_group,
            enrolled_on=p.enrolled_on,
        )
        s.add(row)
        s.flush()
        for d in p.diagnoses:
            s.add(m.Diagnosis(patient_id=row.id, **d.model_dump()))
        out = local_row(row)
        out["weight_kg"] = None
        if p.weight_kg is not None:
            kind, value, allergen, unit = ck.measurement("weight_kg", p.weight_kg)
            weight = m.Measurement(
                patient_id=row.id,
                kind=kind,
                allergen=allergen,
                value=value,
                unit=unit,
                measured_on=clock.today(),
            )
            s.add(weight)
            s.flush()
            out["weight_kg"], out["weight_measurement_id"] = value, weight.id
        s.flush()
        return out

    return unit_of_work.write(reg, actor, USE_CASE, fn, idempotency_key=idempotency_key)


def register_patient(
    reg: Registry,
    actor: str,
    *,
    pseudo_id: str | None = None,
    mrn: str | None = None,
    sex: str = "unknown",
    birth_date: Any = None,
    age_years: Any = None,
    age_group: str | None = None,
    height_cm: Any = None,
    weight_kg: Any = None,
    display_name: str | None = None,
    smoking: str | None = None,
    asthma_step: Any = None,
    cohort: str = "clinic",
    study_group: str | None = None,
    enrolled_on: Any = None,
    diagnoses: Iterable[Mapping[str, Any]] = (),
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """`add_patient` with keyword arguments (importer, demo, tests). A ``pseudo_id`` given blank is refused;
    one not given is generated."""
    if pseudo_id is not None:
        ck.not_empty("pseudo_id", pseudo_id)
    values = {
        "pseudo_id": pseudo_id,
        "mrn": mrn,
        "sex": sex,
        "birth_date": birth_date,
        "age_years": age_years,
        "age_group": age_group,
        "height_cm": height_cm,
        "weight_kg": weight_kg,
        "display_name": display_name,
        "smoking": smoking,
        "asthma_step": asthma_step,
        "cohort": cohort,
        "study_group": study_group,
        "enrolled_on": enrolled_on,
        "diagnoses": [dict(d) for d in diagnoses],
    }
    data = validate(PatientIn, {k: v for k, v in values.items() if v is not None})
    return add_patient(reg, actor, data, idempotency_key=idempotency_key)


# ------------------------------------------------------------------------------------------------ reading


def age_on(birth_date: date | None, age_years: int | None, on: date) -> int | None:
    """Age in whole years on ``on`` (from the birth date; else the age recorded at enrolment)."""
    if birth_date is not None:
        return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))
    return age_years


def patient_by_id(s: Session, patient_id: Any) -> m.Patient:
    """The patient with registry id ``patient_id`` (`InvalidInput` naming ``patient`` when there is none)."""
    try:
        pid = int(str(patient_id).strip())
    except ValueError:
        raise InvalidInput(
            "patient", f"not a patient id: {patient_id!r}", "the registry id (a number)"
        ) from None
    p = s.get(m.Patient, pid)
    if p is None:
        raise InvalidInput("patient", f"no patient {pid} in the registry", "the id printed by `patient add`")
    return p


def latest_measurement(s: Session, patient_id: int, kind: str) -> float | None:
    """The most recent value of measurement ``kind`` recorded for the patient (entries not voided)."""
    return s.scalar(
        select(m.Measurement.value)
        .where(
            m.Measurement.patient_id == patient_id,
            m.Measurement.kind == kind,
            m.Measurement.voided_at.is_(None),
        )
        .order_by(m.Measurement.measured_on.desc(), m.Measurement.id.desc())
        .limit(1)
    )


def latest_weight_kg(s: Session, patient_id: int) -> float | None:
    """The most recent weight recorded (entries not voided)."""
    return latest_measurement(s, patient_id, "weight_kg")


def course_label(c: m.Course) -> str:
    return c.allergen or c.drug or c.product or ""


def summary(s: Session, p: m.Patient) -> dict[str, Any]:
    """The patient as shown on its page, the API and ``patient show`` (age on the clinic's today)."""
    return {
        "id": p.id,
        "pseudo_id": p.pseudo_id,
        "mrn": p.mrn,
        "display_name": p.display_name,
        "birth_date": p.birth_date,
        "age_years": age_on(p.birth_date, p.age_years, clock.today()),
        "sex": p.sex,
        "height_cm": p.height_cm,
        "weight_kg": latest_weight_kg(s, p.id),
        "cohort": p.cohort,
        "diagnoses": [
            {"code": d.code, "system": d.system, "label": d.label, "allergen": d.allergen}
            for d in p.diagnoses
        ],
    }


def show_patient(reg: Registry, patient_id: Any) -> dict[str, Any]:
    """A patient with its courses (newest first): `summary` plus ``courses`` and ``drug_allergy_alerts``
    (each desensitization course's index reaction, each ``drug_allergy`` diagnosis)."""
    from immunoplan.services.records.desensitization.course import drug_allergy_alerts

    with reg.session() as s:
        p = patient_by_id(s, patient_id)
        out = summary(s, p)
        out["drug_allergy_alerts"] = drug_allergy_alerts(s, p)
        courses = sorted(p.courses, key=lambda c: (c.created_at, c.id), reverse=True)
        out["courses"] = [
            {
                "id": c.id,
                "kind": c.kind,
                "label": course_label(c),
                "product_id": c.product_id,
                "regimen_id": c.regimen_id,
                "status": c.status,
                "with_omalizumab": c.with_omalizumab,
                "omalizumab_timing": c.omalizumab_timing,
                "started_on": c.started_on,
                "next_due_on": c.next_due_on,
            }
            for c in courses
        ]
        return out
