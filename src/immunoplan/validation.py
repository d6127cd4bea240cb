"""Range checks used at the edges (CLI, API, import) and inside the core's public entry points."""

from __future__ import annotations

import math
import re
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


# Bounded work on hostile input: Decimal keeps any exponent exactly, and a later int()/quantize() of
# ``1e1000000`` takes seconds (``1e9999999``: most of an hour). No input the product accepts needs more than
# a few dozen characters or an exponent beyond a float's (about 1e308), so longer text, more digits and
# larger exponents are refused before any arithmetic.
MAX_TEXT_CHARS = 40
MAX_DIGITS = 60
MAX_EXPONENT = 400
_EXPONENT = re.compile(r"[eE]\s*([+-]?)\s*0*(\d*)")


def _too_big(field: str, value: Any) -> InvalidInput:
    shown = value if not isinstance(value, str) or len(value) <= MAX_TEXT_CHARS else value[:20] + "..."
    return InvalidInput(field, f"is not a plausible number: {shown!r}")


def to_decimal(field: str, value: Any) -> Decimal:
    """Convert a user-supplied number to Decimal exactly (floats via their shortest repr).

    Refuses, before converting, text longer than `MAX_TEXT_CHARS`, an exponent of magnitude over
    `MAX_EXPONENT`, integers and Decimals with more than `MAX_DIGITS` digits, NaN and infinities."""
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, bool):
        raise InvalidInput(field, f"must be a number, got {value!r}")
    elif isinstance(value, int):
        if value.bit_length() > MAX_DIGITS * 4:
            raise _too_big(field, f"an integer of {value.bit_length()} bits")
        d = Decimal(value)
    elif isinstance(value, float):
        d = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_TEXT_CHARS:
            raise _too_big(field, value)
        m = _EXPONENT.search(text)
        if m and len(m.group(2)) > len(str(MAX_EXPONENT)):
            raise _too_big(field, value)
        try:
            d = Decimal(text)
        except InvalidOperation:
            raise InvalidInput(field, f"must be a number, got {value!r}") from None
    else:
        raise InvalidInput(field, f"must be a number, got {value!r}")
    if not d.is_finite():
        raise InvalidInput(field, f"must be finite, got {value!r}")
    t = d.as_tuple()
    if len(t.digits) > MAX_DIGITS or abs(int(t.exponent)) > MAX_EXPONENT or abs(d.adjusted()) > MAX_EXPONENT:
        raise _too_big(field, value if isinstance(value, str) else str(value)[:30])
    return d


def check_choice(field: str, value: Any, choices: list[str] | tuple[str, ...]) -> str:
    if value not in choices:
        raise InvalidInput(field, f"unknown value {value!r}", ", ".join(choices))
    return str(value)
