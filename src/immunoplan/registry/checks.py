"""Edge validation for registry records: vocabularies, units and plausible ranges (the field-limit catalogue
`immunoplan.reference.limits`: measurement kinds from ``registry_measurements``, patient numbers from
``field_limits``). Every failure is an `InvalidInput` naming the field; shared by the service layer
and the CSV/XLSX importer so both accept exactly the same values.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from immunoplan.errors import InvalidInput
from immunoplan.reference import limits as field_limits
from immunoplan.reference import load
from immunoplan.validation import check_choice, check_range, to_decimal


def limits() -> dict[str, Any]:
    return load("registry_measurements")


def measurement_kinds() -> tuple[str, ...]:
    return tuple(limits()["kinds"])


def to_date(field: str, value: Any) -> date:
    """A date from a `date`, a `datetime` or ISO text (YYYY-MM-DD)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise InvalidInput(field, f"not a date: {value!r}", "YYYY-MM-DD")


def to_datetime(field: str, value: Any) -> datetime:
    """An aware UTC datetime from a datetime, a date or ISO text (UTC assumed when no offset is given; other
    offsets are converted, because SQLite keeps only the wall time)."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(
                field, f"not a date-time: {value!r}", "YYYY-MM-DDTHH:MM[:SS][+HH:MM]"
            ) from None
    else:
        raise InvalidInput(field, f"not a date-time: {value!r}", "YYYY-MM-DDTHH:MM")
    return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)


def to_float(field: str, value: Any) -> float:
    return float(to_decimal(field, value))


def to_bool(field: str, value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "y"):
        return True
    if text in ("0", "false", "no", "n"):
        return False
    raise InvalidInput(field, f"not a yes/no value: {value!r}", "true/false, yes/no, 1/0")


def not_empty(field: str, value: Any) -> str:
    text = "" if value is None else str(value).strip()
    if not text:
        raise InvalidInput(field, "is required")
    return text


def measurement(kind: Any, value: Any, allergen: Any = "", unit: Any = None) -> tuple[str, float, str, str]:
    """Validate one measurement; returns (kind, value, allergen, unit). The unit must be the kind's unit."""
    spec_all = limits()["kinds"]
    kind = check_choice("kind", kind, tuple(spec_all))
    spec = spec_all[kind]
    v = float(field_limits.check(kind, value, "value"))
    allergen = "" if allergen is None else str(allergen).strip()
    if spec.get("allergen_required") and not allergen:
        raise InvalidInput("allergen", f"is required for {kind}", "an allergen code, e.g. d1, d2")
    if unit not in (None, "") and str(unit).strip() != spec["unit"]:
        raise InvalidInput("unit", f"{unit!r} is not the unit of {kind}", spec["unit"])
    return kind, v, allergen, spec["unit"]


def questionnaire_score(instrument: Any, score: Any) -> tuple[str, float]:
    spec_all = limits()["questionnaires"]
    instrument = check_choice("instrument", instrument, tuple(spec_all))
    s = to_float("score", score)
    check_range("score", s, spec_all[instrument]["low"], spec_all[instrument]["high"])
    return instrument, s


def patient_number(field: str, value: Any) -> float | None:
    """A patient number (``age_years``, ``height_cm``, ``asthma_step``, ...) checked against its field limit;
    ``None`` or empty text give ``None``."""
    d = field_limits.check_optional(field, value)
    return None if d is None else float(d)


def positive_decimal(field: str, value: Any, *, allow_zero: bool = False) -> Decimal:
    d = to_decimal(field, value)
    check_range(field, d, Decimal(0), None, low_inclusive=allow_zero)
    return d


def choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
    return check_choice(field, value, choices)


def optional_choice(field: str, value: Any, choices: tuple[str, ...]) -> str | None:
    if value is None or value == "":
        return None
    return check_choice(field, value, choices)
