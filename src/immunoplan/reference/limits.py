"""Field limits with units: the one catalogue of input plausibility bounds.

Every number a user types (CLI option, form field, API body, import cell) is checked against the entry of
the same name here, so the clinical validators, the services, the forms, the API and the CLI accept exactly
the same values and print the same accepted range. The bounds live in ``reference/data/field_limits.json``;
the measurement kinds (total IgE, sIgE, FeNO, FEV1, ...) keep theirs in ``registry_measurements.json`` and
are read from there, so each concept has one value.

These are engineering plausibility bounds that catch unit and typing errors (``weight_kg=6500`` typed in
grams, ``dose_ml=5`` for 0.5 mL). They are not clinical thresholds and never dose a patient: the engines
apply their own rules (label tables, product schedules, protocol limits) inside these bounds.

`check` converts exactly (``str``/``int``/``float``/``Decimal`` to ``Decimal``; floats via their shortest
``repr``) and does bounded work on hostile text (see `immunoplan.validation.to_decimal`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

from immunoplan.errors import InvalidInput, ReferenceDataError
from immunoplan.reference import load
from immunoplan.validation import to_decimal

DATA = "field_limits"
MEASUREMENTS = "registry_measurements"


def _fmt(x: Decimal) -> str:
    """A bound as plain text: ``500``, ``0.1``, ``1000000`` (never ``5E+2``)."""
    text = format(x.normalize(), "f")
    return text if len(text) <= 24 else f"{x:.4E}"


@dataclass(frozen=True)
class FieldLimit:
    """Plausibility bounds of one input field, with its unit (``""`` for counts and scores)."""

    name: str
    unit: str
    low: Decimal | None
    high: Decimal | None
    low_inclusive: bool = True
    high_inclusive: bool = True
    integer: bool = False
    label: str = ""

    @property
    def accepted(self) -> str:
        """The accepted range as printed in errors and help: ``[0, 120] years``, ``(0, 500] kg``."""
        lo = "-inf" if self.low is None else _fmt(self.low)
        hi = "inf" if self.high is None else _fmt(self.high)
        text = f"{'[' if self.low_inclusive else '('}{lo}, {hi}{']' if self.high_inclusive else ')'}"
        return f"{text} {self.unit}".rstrip()

    def check(self, value: Any, field: str | None = None) -> Decimal:
        """``value`` as an exact Decimal inside the bounds; else `InvalidInput` naming ``field`` (default:
        this limit's name) with `accepted`."""
        name = field or self.name
        accepted = self.accepted
        try:
            d = to_decimal(name, value)
        except InvalidInput as exc:
            raise InvalidInput(name, exc.reason, accepted) from None
        if self.low is not None and (d < self.low or (d == self.low and not self.low_inclusive)):
            raise InvalidInput(name, f"{_fmt(d)} is below the accepted range", accepted)
        if self.high is not None and (d > self.high or (d == self.high and not self.high_inclusive)):
            raise InvalidInput(name, f"{_fmt(d)} is above the accepted range", accepted)
        if self.integer and d != d.to_integral_value():
            raise InvalidInput(name, f"must be a whole number, got {_fmt(d)}", accepted)
        return d

    def check_optional(self, value: Any, field: str | None = None) -> Decimal | None:
        """Like `check`, but ``None`` and empty text mean "not given" and give ``None``."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return self.check(value, field)

    def pydantic(self, default: Any = ..., **kw: Any) -> Any:
        """A ``pydantic.Field`` with these bounds, ``description="<label> (<unit>)"`` and the unit in the
        JSON schema (``json_schema_extra={"unit": ...}``). Extra keywords go to ``Field``."""
        from pydantic import Field

        def num(x: Decimal) -> int | float:
            return int(x) if x == x.to_integral_value() else float(x)

        bounds: dict[str, Any] = {}
        if self.low is not None:
            bounds["ge" if self.low_inclusive else "gt"] = num(self.low)
        if self.high is not None:
            bounds["le" if self.high_inclusive else "lt"] = num(self.high)
        label = self.label or self.name
        kw.setdefault("description", f"{label} ({self.unit})" if self.unit else label)
        extra: dict[str, Any] = {"unit": self.unit, "accepted": self.accepted}
        extra.update(kw.pop("json_schema_extra", None) or {})
        return Field(default, **bounds, json_schema_extra=extra, **kw)

    def help(self, text: str = "") -> str:
        """Help text for a form field or CLI option: ``text`` (default ``<label> (<unit>).``) + the range."""
        text = text or (f"{self.label or self.name} ({self.unit})." if self.unit else f"{self.label}.")
        return f"{text} Accepted: {self.accepted}."

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "unit": self.unit,
            "low": None if self.low is None else _fmt(self.low),
            "high": None if self.high is None else _fmt(self.high),
            "low_inclusive": self.low_inclusive,
            "high_inclusive": self.high_inclusive,
            "integer": self.integer,
            "accepted": self.accepted,
        }


def _bound(name: str, spec: dict[str, Any], key: str) -> Decimal | None:
    v = spec.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise ReferenceDataError(f"{DATA}: {name}.{key} is not a number: {v!r}")
    return Decimal(repr(v)) if isinstance(v, float) else Decimal(v)


def _entry(name: str, spec: dict[str, Any]) -> FieldLimit:
    return FieldLimit(
        name=name,
        unit=str(spec.get("unit", "")),
        low=_bound(name, spec, "low"),
        high=_bound(name, spec, "high"),
        low_inclusive=bool(spec.get("low_inclusive", True)),
        high_inclusive=bool(spec.get("high_inclusive", True)),
        integer=bool(spec.get("integer", False)),
        label=str(spec.get("label", "")),
    )


@cache
def _catalogue() -> dict[str, FieldLimit]:
    out: dict[str, FieldLimit] = {}
    for name, spec in load(MEASUREMENTS)["kinds"].items():
        out[name] = _entry(name, spec)
    for name, spec in load(DATA)["limits"].items():
        if name in out:
            where = f"its bounds live in {MEASUREMENTS}"
            raise ReferenceDataError(f"{DATA}: {name!r} is a measurement kind: {where}")
        out[name] = _entry(name, spec)
    return out


def catalogue() -> dict[str, FieldLimit]:
    """Every field limit by name (a copy; the entries are frozen)."""
    return dict(_catalogue())


def limit(name: str) -> FieldLimit:
    """The limit named ``name`` (a `KeyError` names the catalogue: asking for an unknown field is a bug)."""
    try:
        return _catalogue()[name]
    except KeyError:
        raise KeyError(f"no field limit {name!r} in {DATA} or {MEASUREMENTS}") from None


def check(name: str, value: Any, field: str | None = None) -> Decimal:
    """``limit(name).check(value, field)``."""
    return limit(name).check(value, field)


def check_optional(name: str, value: Any, field: str | None = None) -> Decimal | None:
    """``limit(name).check_optional(value, field)``."""
    return limit(name).check_optional(value, field)
