"""Range checks used at the edges (CLI, API, import) and inside the core's public entry points."""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any

from immunoplan.errors import InvalidInput

Number = int | float | Decimal


def _fmt(x: Number | None) -> str:
    if x is None:
        return ""
    if isinstance(x, Decimal):
        text = format(x, "f")
        text = text.rstrip("0").rstrip(".") if "." in text else text
        return text if len(text) <= 24 else format(x, ".6g")  # 1e300 stays readable
    return f"{x:g}"


def check_range(
    field: str,
    value: Any,
    low: Number | None = None,
    high: Number | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    unit: str = "",
) -> Any:
    """Return ``value`` if it is a finite number within [low, high]; raise `InvalidInput` naming the field."""
    lo_br = "[" if low_inclusive else "("
    hi_br = "]" if high_inclusive else ")"
    lo_text = _fmt(low) if low is not None else "-inf"
    hi_text = _fmt(high) if high is not None else "inf"
    accepted = f"{lo_br}{lo_text}, {hi_text}{hi_br}"
    if unit:
        accepted += f" {unit}"
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise InvalidInput(field, f"must be a number, got {value!r}", accepted)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(field, f"must be finite, got {value!r}", accepted)
    if isinstance(value, Decimal) and not value.is_finite():
        raise InvalidInput(field, f"must be finite, got {value!r}", accepted)
    if low is not None and (value < low or (not low_inclusive and value == low)):
        raise InvalidInput(field, f"{_fmt(value)} is below the accepted range", accepted)
    if high is not None and (value > high or (not high_inclusive and value == high)):
        raise InvalidInput(field, f"{_fmt(value)} is above the accepted range", accepted)
    return value


def to_decimal(field: str, value: Any) -> Decimal:
    """Convert a user-supplied number to Decimal exactly (floats via their shortest repr)."""
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, bool):
        raise InvalidInput(field, f"must be a number, got {value!r}")
    elif isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, float):
        d = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            d = Decimal(value.strip())
        except InvalidOperation:
            raise InvalidInput(field, f"must be a number, got {value!r}") from None
    else:
        raise InvalidInput(field, f"must be a number, got {value!r}")
    if not d.is_finite():
        raise InvalidInput(field, f"must be finite, got {value!r}")
    return d


def check_choice(field: str, value: Any, choices: list[str] | tuple[str, ...]) -> str:
    if value not in choices:
        raise InvalidInput(field, f"unknown value {value!r}", ", ".join(choices))
    return str(value)
