"""Registry writes made by the web app, each one audited transaction under the logged-in user's name.

Thin: validation and clinical computation happen in the service layer before anything is written here.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from immunoplan.errors import InvalidInput
from immunoplan.registry import models as m


def create_patient(
    registry: Any,
    actor: str,
    *,
    pseudo_id: str,
    display_name: str | None,
    birth_date: date | None,
    sex: str,
) -> int:
    """Add a patient (pseudonym unique); returns its id."""
    if sex not in m.SEXES:
        raise InvalidInput("sex", f"unknown value {sex!r}", ", ".join(m.SEXES))
    if birth_date is not None and birth_date > date.today():
        raise InvalidInput("birth_date", "is in the future")
    with registry.transaction(actor=actor, use_case="create_patient") as s:
        if s.scalars(select(m.Patient.id).where(m.Patient.pseudo_id == pseudo_id)).first() is not None:
            raise InvalidInput("pseudo_id", f"a patient {pseudo_id!r} already exists")
        p = m.Patient(pseudo_id=pseudo_id, display_name=display_name, birth_date=birth_date, sex=sex)
        s.add(p)
        s.flush()
        return p.id
