"""Typed fields for the input models of the record use cases (pydantic ``Annotated`` types), and rows as
clinic-local JSON (`local_row`).

Dates and times go through the clinic clock (`immunoplan.clock`: naive text is clinic-local wall time, years
outside 1900-2100 are typing errors); coded values through a vocabulary. A refusal is an `InvalidInput` raised
inside the validator, which `immunoplan.services.inputs.validate` reports with its own message and range.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo

from immunoplan import clock
from immunoplan.errors import InvalidInput
from immunoplan.validation import check_choice

HHMM = "HH:MM (24 h, clinic time)"
#: how a time typed in clinic time is written (the ``accepted`` text of every such field)
CLINIC_TIME = "YYYY-MM-DDTHH:MM (clinic time)"


def _name(info: ValidationInfo) -> str:
    return info.field_name or "value"


def _date(value: Any, info: ValidationInfo) -> date | None:
    return None if value is None else clock.parse_date(_name(info), value)


def _instant(value: Any, info: ValidationInfo) -> datetime | None:
    return None if value is None else clock.parse_local(_name(info), value)


def _clock_time(value: Any, info: ValidationInfo) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    parts = text.split(":")
    ok = len(parts) in (2, 3) and all(p.isdigit() and len(p) == 2 for p in parts)
    if not ok or int(parts[0]) > 23 or int(parts[1]) > 59 or (len(parts) == 3 and int(parts[2]) > 59):
        raise InvalidInput(_name(info), f"cannot read {text[:40]!r} as a clock time", HHMM)
    return f"{parts[0]}:{parts[1]}"


#: a calendar date (ISO text or date), range-checked by the clinic clock
ClinicDate = Annotated[date, BeforeValidator(_date)]
OptionalClinicDate = Annotated[date | None, BeforeValidator(_date)]
#: an instant typed in clinic-local time (or with an explicit offset), stored as aware UTC
ClinicInstant = Annotated[datetime, BeforeValidator(_instant)]
OptionalClinicInstant = Annotated[datetime | None, BeforeValidator(_instant)]
#: a clinic clock time of day, ``HH:MM``
ClockTime = Annotated[str | None, BeforeValidator(_clock_time), Field(json_schema_extra={"accepted": HHMM})]


def not_future(field: str) -> Callable[[date | None], date | None]:
    """A date that is not after the clinic's today (a birth date, a result date)."""

    def check(day: date | None) -> date | None:
        if day is not None and day > clock.today():
            raise InvalidInput(
                field, f"{day.isoformat()} is in the future", f"{clock.EARLIEST_DATE} to today (clinic date)"
            )
        return day

    return check


def future_tolerance_minutes() -> int:
    """How far after the clinic clock a time recorded as done may be (project rule ``registry_recording``:
    clock differences between a nurse's device and the server)."""
    from immunoplan import reference

    return int(reference.load("registry_recording")["future_tolerance_minutes"]["value"])


def refuse_future_instant(field: str, when: datetime | None) -> None:
    """A time recorded as done (a dose given, a reaction's onset) at most `future_tolerance_minutes` after
    the clinic clock; a later one is a typing error or a dose not given yet."""
    from datetime import timedelta

    if when is None:
        return
    now, tol = clock.now(), future_tolerance_minutes()
    if clock.to_utc_stored(when) > now + timedelta(minutes=tol):
        raise InvalidInput(
            field,
            f"{clock.format_local(when)} is in the future (clinic clock {clock.format_local(now)})",
            f"at most {tol} min after the clinic clock (project rule, registry_recording)",
        )


def one_of(choices: tuple[str, ...]) -> Any:
    """``Annotated[str, one_of(VOCABULARY)]`` (or ``str | None``): a value of a vocabulary, the accepted list
    in the error."""

    def check(value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else check_choice(_name(info), value, choices)

    return AfterValidator(check)


def choice_field(choices: tuple[str, ...], default: Any = ..., **kw: Any) -> Any:
    """A ``pydantic.Field`` listing the accepted values in the schema (with `one_of` on the type)."""
    return Field(default, json_schema_extra={"accepted": ", ".join(choices), "enum": list(choices)}, **kw)


def local_row(row: Any) -> dict[str, Any]:
    """A stored row as a JSON-able dict whose instants are clinic-local ISO text with their offset (what the
    API and ``--json`` print); dates stay calendar dates."""
    from immunoplan.services.records.common import as_row

    out = as_row(row)
    for c in row.__mapper__.column_attrs:
        value = getattr(row, c.key)
        if isinstance(value, datetime):
            out[c.key] = clock.iso_local(value)
    return out
