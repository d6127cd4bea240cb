"""Patients: register a pseudonymous patient with coded diagnoses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from immunoplan.errors import InvalidInput
from immunoplan.registry import checks as ck
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.records.common import (
    as_row,
    int_or_none,
)


def register_patient(
    reg: Registry,
    actor: str,
    *,
    pseudo_id: str,
    sex: str = "unknown",
    birth_date: Any = None,
    age_years: Any = None,
    age_group: str | None = None,
    height_cm: Any = None,
    display_name: str | None = None,
    smoking: str | None = None,
    asthma_step: Any = None,
    cohort: str = "clinic",
    study_group: str | None = None,
    enrolled_on: Any = None,
    diagnoses: Iterable[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Register a pseudonymous patient (with optional coded diagnoses)."""
    pid = ck.not_empty("pseudo_id", pseudo_id)
    values = dict(
        pseudo_id=pid,
        display_name=display_name or None,
        sex=ck.choice("sex", sex, m.SEXES),
        birth_date=ck.to_date("birth_date", birth_date) if birth_date else None,
        age_years=int_or_none(ck.patient_number("age_years", age_years)),
        age_group=ck.optional_choice("age_group", age_group, m.AGE_GROUPS),
        height_cm=ck.patient_number("height_cm", height_cm),
        smoking=ck.optional_choice("smoking", smoking, m.SMOKING),
        asthma_step=int_or_none(ck.patient_number("asthma_step", asthma_step)),
        cohort=ck.not_empty("cohort", cohort),
        study_group=study_group or None,
        enrolled_on=ck.to_date("enrolled_on", enrolled_on) if enrolled_on else None,
    )
    with reg.transaction(actor, "register_patient") as s:
        if s.scalar(select(m.Patient.id).where(m.Patient.pseudo_id == pid)) is not None:
            raise InvalidInput("pseudo_id", f"patient {pid!r} already exists")
        p = m.Patient(**values)
        s.add(p)
        s.flush()
        for d in diagnoses:
            s.add(
                m.Diagnosis(
                    patient_id=p.id,
                    code=ck.not_empty("diagnosis.code", d.get("code")),
                    system=d.get("system", "immunoplan"),
                    label=d.get("label"),
                    allergen=d.get("allergen"),
                    severity=d.get("severity"),
                )
            )
        s.flush()
        return as_row(p)
