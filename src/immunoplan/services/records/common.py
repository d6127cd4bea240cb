"""Helpers shared by the record use cases: look-ups that name the field, optional conversions, rows as
JSON-able dicts."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, TypeVar, cast

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import checks as ck
from immunoplan.registry import models as m
from immunoplan.services.inputs import validate

M = TypeVar("M", bound=BaseModel)


def as_input(model: type[M], data: M | Mapping[str, Any]) -> M:
    """``data`` when it already is a ``model`` (validated by the caller), else validated (`validate`)."""
    if isinstance(data, model):
        return data
    return validate(model, cast(Mapping[str, Any], data))


def plain_decimal(x: Decimal) -> Decimal:
    """An exact amount without trailing zeros and never in exponent form (100.0 -> 100, 0.110 -> 0.11,
    5E+2 -> 500)."""
    return Decimal(format(x.normalize(), "f"))


def lock_row(s: Session, row: m.Base) -> None:
    """Lock ``row`` for the rest of the transaction on PostgreSQL (``SELECT ... FOR UPDATE``), so concurrent
    writes of the same aggregate wait for each other; SQLite already holds the write lock from
    ``BEGIN IMMEDIATE``."""
    if s.get_bind().dialect.name == "postgresql":
        s.refresh(row, with_for_update=True)


def live_rows(s: Session, model: type[Any], *where: Any, order_by: tuple[Any, ...] = ()) -> list[Any]:
    """The rows of ``model`` matching ``where`` that are not voided: what analyses, next-dose rules and the
    duplicate checks read (a voided entry stays in the registry for the audit trail only)."""
    return list(s.scalars(select(model).where(*where, model.voided_at.is_(None)).order_by(*order_by)))


def find_patient(s: Session, pseudo_id: Any) -> m.Patient:
    pid = ck.not_empty("pseudo_id", pseudo_id)
    p = s.scalar(select(m.Patient).where(m.Patient.pseudo_id == pid))
    if p is None:
        raise InvalidInput("pseudo_id", f"no patient {pid!r} in the registry")
    return p


def find_course(s: Session, course_id: Any) -> m.Course:
    c = s.get(m.Course, int(ck.to_float("course_id", course_id)))
    if c is None:
        raise InvalidInput("course_id", f"no course {course_id!r} in the registry")
    return c


def find_visit(s: Session, patient: m.Patient, code: Any) -> m.Visit | None:
    if code in (None, ""):
        return None
    code = ck.choice("visit_code", code, m.VISIT_CODES)
    v = s.scalar(
        select(m.Visit)
        .where(m.Visit.patient_id == patient.id, m.Visit.code == code, m.Visit.voided_at.is_(None))
        .order_by(m.Visit.visit_on.desc())
    )
    if v is None:
        raise InvalidInput("visit_code", f"patient {patient.pseudo_id} has no {code} visit; record it first")
    return v


def columns(obj: m.Base) -> dict[str, Any]:
    """A row's columns with their Python values (dates and instants kept for clinic-time display)."""
    return {c.key: getattr(obj, c.key) for c in obj.__mapper__.column_attrs}


def as_row(obj: m.Base) -> dict[str, Any]:
    """A row's columns as JSON-able values."""
    return {c.key: to_jsonable(getattr(obj, c.key)) for c in obj.__mapper__.column_attrs}


def save_row(s: Session, row: m.Base) -> dict[str, Any]:
    """Add ``row``, flush (so it gets its id) and return it as a JSON-able dict."""
    s.add(row)
    s.flush()
    return as_row(row)


def is_blank(value: Any) -> bool:
    return value in (None, "")


def opt_int(field: str, value: Any) -> int | None:
    return None if is_blank(value) else int(ck.to_float(field, value))


def opt_float(field: str, value: Any) -> float | None:
    return None if is_blank(value) else ck.to_float(field, value)


def opt_decimal(field: str, value: Any, *, allow_zero: bool = False) -> Decimal | None:
    return None if is_blank(value) else ck.positive_decimal(field, value, allow_zero=allow_zero)


def opt_course_id(s: Session, course_id: Any) -> int | None:
    return None if is_blank(course_id) else find_course(s, course_id).id


def basis_json(basis: Any) -> Any:
    """The caller's basis as a JSON-able list (a single item is wrapped; None stays None)."""
    return to_jsonable(basis if isinstance(basis, list) or basis is None else [basis])


def result_basis(basis: Any) -> list[Any] | None:
    """The basis found in a stored result, as a list (None when empty)."""
    return basis if isinstance(basis, list) else ([basis] if basis else None)


def int_or_none(x: float | None) -> int | None:
    return None if x is None else int(x)


def float_or_none(x: Any) -> float | None:
    try:
        return None if x in (None, "") else float(x)
    except (TypeError, ValueError):
        return None
