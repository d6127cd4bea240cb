"""Shared pieces of the assessment engines: rules-as-data conditions, fired rules, bands and input checks
(the plausibility bounds themselves are the field-limit catalogue, `immunoplan.reference.limits`).

Conditions in the ``assess_*`` reference files are small JSON trees::

    {"field": "ratio_percent", "op": ">=", "value": "10"}
    {"all": [cond, ...]}      {"any": [cond, ...]}

They are evaluated with three-valued logic: a missing input gives ``None`` (unknown), so eligibility can say
"insufficient data" instead of guessing. Numbers in the data are strings and compared as ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from immunoplan.errors import InvalidInput
from immunoplan.reference import Basis, basis, limits
from immunoplan.validation import check_choice, to_decimal

Facts = Mapping[str, Any]


def _as_comparable(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return Decimal(value)
        except ArithmeticError:
            return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Decimal(str(value))
    return value


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == "in":
        return _as_comparable(left) in [_as_comparable(v) for v in right]
    a, b = _as_comparable(left), _as_comparable(right)
    if op == "==":
        return bool(a == b)
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    if op == ">=":
        return bool(a >= b)
    raise ValueError(f"unknown operator {op!r} in reference data")


def evaluate(condition: Mapping[str, Any], facts: Facts) -> bool | None:
    """Evaluate a data condition against ``facts``: True, False, or None when an input is missing."""
    if "all" in condition:
        results = [evaluate(c, facts) for c in condition["all"]]
        if any(r is False for r in results):
            return False
        return None if any(r is None for r in results) else True
    if "any" in condition:
        results = [evaluate(c, facts) for c in condition["any"]]
        if any(r is True for r in results):
            return True
        return None if any(r is None for r in results) else False
    value = facts.get(condition["field"])
    if value is None:
        return None
    return _compare(value, condition["op"], condition["value"])


@dataclass(frozen=True)
class FiredRule:
    """One rule that fired, with the table, version, source and evidence status it came from."""

    rule: str
    finding: str
    basis: Basis
    action: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "rule": self.rule,
            "finding": self.finding,
            "table": self.basis.id,
            "version": self.basis.version,
            "source": self.basis.source,
            "status": self.basis.status,
        }
        if self.action is not None:
            d["action"] = self.action
        return d


def fire(
    table: str, item: Mapping[str, Any], rule: str, finding: str, action: str | None = None
) -> FiredRule:
    """A `FiredRule` for ``item`` of reference file ``table``; the item's own status/source win."""
    b = basis(table, rule, status=item.get("status"), source=item.get("source"))
    return FiredRule(rule=rule, finding=finding, basis=b, action=action)


def in_band(value: Decimal, band: Mapping[str, Any]) -> bool:
    """Is ``value`` in a band ``{"min", "max", "min_inclusive"=true, "max_inclusive"=true}`` (null = open)?"""
    lo, hi = band.get("min", band.get("lower")), band.get("max", band.get("upper"))
    if lo is not None:
        lo_d = Decimal(lo)
        if value < lo_d or (
            value == lo_d and not band.get("min_inclusive", band.get("lower_inclusive", True))
        ):
            return False
    if hi is not None:
        hi_d = Decimal(hi)
        if value > hi_d or (
            value == hi_d and not band.get("max_inclusive", band.get("upper_inclusive", True))
        ):
            return False
    return True


def find_band(value: Decimal, bands: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The first band containing ``value`` (None when no band does)."""
    for band in bands:
        if in_band(value, band):
            return band
    return None


def _fmt(x: Decimal | None, default: str) -> str:
    # validation._fmt strips zeros from integral Decimals (300 -> "3"), so ranges are formatted here.
    if x is None:
        return default
    if x != 0 and not Decimal("1e-6") < abs(x) < Decimal("1e12"):
        return f"{x:.4E}"
    return format(x.normalize(), "f")


def range_text(
    low: Decimal | None, high: Decimal | None, *, unit: str = "", low_inclusive: bool = True
) -> str:
    """Accepted-range text, e.g. ``[0, 120] years`` or ``(0, 100000] IU/mL``."""
    text = f"{'[' if low_inclusive else '('}{_fmt(low, '-inf')}, {_fmt(high, 'inf')}]"
    return f"{text} {unit}".rstrip()


def number(
    field: str,
    value: Any,
    low: Decimal | None,
    high: Decimal | None,
    *,
    unit: str = "",
    low_inclusive: bool = True,
) -> Decimal:
    """Convert ``value`` to Decimal and check it lies in [low, high]; raise `InvalidInput` naming ``field``
    and the accepted range."""
    accepted = range_text(low, high, unit=unit, low_inclusive=low_inclusive)
    try:
        d = to_decimal(field, value)
    except InvalidInput as exc:
        raise InvalidInput(field, exc.reason, accepted) from None
    if low is not None and (d < low or (d == low and not low_inclusive)):
        raise InvalidInput(field, f"{_fmt(d, '')} is below the accepted range", accepted)
    if high is not None and d > high:
        raise InvalidInput(field, f"{_fmt(d, '')} is above the accepted range", accepted)
    return d


def optional_number(
    field: str,
    value: Any,
    low: Decimal | None,
    high: Decimal | None,
    *,
    unit: str = "",
    low_inclusive: bool = True,
) -> Decimal | None:
    """Like `number`, but ``None`` passes through (input not given)."""
    if value is None:
        return None
    return number(field, value, low, high, unit=unit, low_inclusive=low_inclusive)


def age_years(value: Any, field: str = "age_years") -> Decimal:
    """An age in years checked against the field limit ``age_years`` (`immunoplan.reference.limits`)."""
    return limits.check("age_years", value, field)


def choice(field: str, value: Any, choices: Sequence[str]) -> str:
    """`check_choice` that ignores case and surrounding spaces (``"Male "`` -> ``"male"``)."""
    if isinstance(value, str):
        value = value.strip().lower()
    return check_choice(field, value, tuple(choices))


def optional_choice(field: str, value: Any, choices: Sequence[str]) -> str | None:
    """Like `choice`, but ``None`` passes through (input not given)."""
    return None if value is None else choice(field, value, choices)


class InputRecord:
    """Base of the frozen validated-input dataclasses: ``to_dict`` gives the field values."""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)
