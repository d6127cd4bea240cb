"""What every amendment shares (`services.records.corrections` dispatches to the owner of each kind of
entry): only the amendable fields, a value set only when it differs, the correction stamp."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from immunoplan import clock
from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable

NOTHING_TO_CHANGE = "nothing to change: every value is the one already recorded"


def refuse_unknown_fields(
    changes: Mapping[str, Any], allowed: tuple[str, ...], what: str, accepted: str | None = None
) -> None:
    """`InvalidInput` naming the first field of ``changes`` that ``what`` (e.g. "a reaction") does not
    have."""
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise InvalidInput(unknown[0], f"is not a field of {what}", accepted or ", ".join(allowed))


def _is_number(x: Any) -> bool:
    return isinstance(x, (Decimal, float, int)) and not isinstance(x, bool)


def same_value(old: Any, new: Any) -> bool:
    """Instants compared in UTC, numbers exactly (0.1 stored as a float is 0.1 typed)."""
    if isinstance(old, datetime) and isinstance(new, datetime):
        return clock.to_utc_stored(old) == clock.to_utc_stored(new)
    if _is_number(old) and _is_number(new):
        return Decimal(str(old)) == Decimal(str(new))
    return bool(old == new)


def apply_changes(row: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    """Set the columns whose value changes; returns ``{column: {"before", "after"}}``."""
    changed: dict[str, Any] = {}
    for column, new in values.items():
        old = getattr(row, column)
        if not same_value(old, new):
            changed[column] = {"before": to_jsonable(old), "after": to_jsonable(new)}
            setattr(row, column, new)
    return changed


def stamp_amended(row: Any, actor: str, reason: str, at: datetime) -> None:
    """Who amended the entry, when and why (the ORM audit hook keeps the before/after)."""
    row.amended_at, row.amended_by, row.amend_reason = at, actor, reason


def refuse_nothing_changed(*changes: Mapping[str, Any]) -> None:
    if not any(changes):
        raise InvalidInput("changes", NOTHING_TO_CHANGE)
