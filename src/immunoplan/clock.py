"""Clinic time: one clock and one time zone for every layer.

- Times are stored timezone-aware in UTC; they are entered and shown in the clinic's time zone
  (``IMMUNOPLAN_TIMEZONE``, an IANA name such as ``Europe/Oslo``; default the server's own zone).
- "Today" is the clinic's date, never the server's or UTC's.
- A naive time typed by a user ("2026-03-10T17:30") is clinic-local wall time.
- Tests pin the clock with `frozen(...)` (or `set_now`), so no test depends on the real date.

Neutral module: imports nothing of immunoplan but the errors, so the core, services, web and CLI all use it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from immunoplan.errors import InvalidInput

#: The earliest and latest dates the registry accepts for any recorded time or date (typing-error guard).
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2100, 12, 31)
DATE_RANGE = f"{EARLIEST_DATE.isoformat()} to {LATEST_DATE.isoformat()}"

_pinned: datetime | None = None


def _server_zone_name() -> str:
    """The server's IANA zone: $TZ, /etc/timezone or the /etc/localtime link; UTC when none is readable."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz and _valid(tz):
        return tz
    try:
        name = Path("/etc/timezone").read_text(encoding="utf-8").strip()
        if _valid(name):
            return name
    except OSError:
        pass
    try:
        target = os.readlink("/etc/localtime")
        if "zoneinfo/" in target:
            name = target.split("zoneinfo/", 1)[1]
            if _valid(name):
                return name
    except OSError:
        pass
    return "UTC"


def _valid(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def zone_name() -> str:
    """The clinic's IANA time-zone name (``IMMUNOPLAN_TIMEZONE``, else the server's zone)."""
    name = os.environ.get("IMMUNOPLAN_TIMEZONE", "").strip()
    if not name:
        return _server_zone_name()
    if not _valid(name):
        raise InvalidInput(
            "IMMUNOPLAN_TIMEZONE", f"unknown time zone {name!r}", "an IANA name, e.g. Europe/Oslo"
        )
    return name


def zone() -> tzinfo:
    return ZoneInfo(zone_name())


def check_zone_name(name: str) -> str:
    """Validate an IANA zone name (settings, admin pages)."""
    if name not in available_timezones() and not _valid(name):
        raise InvalidInput("timezone", f"unknown time zone {name!r}", "an IANA name, e.g. Europe/Oslo")
    return name


def now() -> datetime:
    """The current instant, aware, in UTC (pinned in tests)."""
    return _pinned if _pinned is not None else datetime.now(UTC)


def today() -> date:
    """The clinic's date now."""
    return now().astimezone(zone()).date()


def set_now(at: datetime | None) -> None:
    """Pin the clock at ``at`` (aware, or naive clinic-local); None releases it."""
    global _pinned
    _pinned = None if at is None else to_utc(at)


@contextmanager
def frozen(at: datetime | str) -> Iterator[datetime]:
    """Pin the clock for a block: ``with clock.frozen("2026-03-10T09:00"): ...`` (clinic-local if naive)."""
    global _pinned
    before = _pinned
    _pinned = parse_local("at", at) if isinstance(at, str) else to_utc(at)
    try:
        yield _pinned
    finally:
        _pinned = before


def to_utc(dt: datetime) -> datetime:
    """An aware UTC datetime; a naive one is clinic-local wall time."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone())
    return dt.astimezone(UTC)


def local(dt: datetime) -> datetime:
    """``dt`` in the clinic's zone (a naive value is taken as UTC, as stored by SQLite)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(zone())


def local_date(dt: datetime | date) -> date:
    """The clinic-local calendar date of a stored instant (a date stays as it is)."""
    return local(dt).date() if isinstance(dt, datetime) else dt


def check_date(field: str, day: date) -> date:
    """Refuse a date outside the registry's range (typing errors such as 0001-01-01 or 9999-12-31)."""
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise InvalidInput(field, f"{day.isoformat()} is outside the accepted range", DATE_RANGE)
    return day


def parse_local(field: str, value: Any) -> datetime:
    """A user's date-time (ISO text, datetime or date) as an aware UTC instant.

    Naive text is clinic-local wall time; an explicit offset (``+01:00``, ``Z``) is honoured. Years outside
    `DATE_RANGE` are refused (InvalidInput naming the field).
    """
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > 40:
            raise InvalidInput(field, "is too long for a date-time", "YYYY-MM-DDTHH:MM")
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        except ValueError:
            raise InvalidInput(
                field, f"cannot read {value!r} as a date and time", "YYYY-MM-DDTHH:MM (clinic time)"
            ) from None
    else:
        raise InvalidInput(field, f"not a date-time: {value!r}", "YYYY-MM-DDTHH:MM (clinic time)")
    check_date(field, dt.date())
    return to_utc(dt)


def parse_date(field: str, value: Any) -> date:
    """A user's date (ISO text, date or datetime; a datetime gives its clinic-local date), range-checked."""
    if isinstance(value, datetime):
        day = local_date(value)
    elif isinstance(value, date):
        day = value
    elif isinstance(value, str) and len(value.strip()) <= 40:
        try:
            day = date.fromisoformat(value.strip()[:10])
        except ValueError:
            raise InvalidInput(field, f"cannot read {value!r} as a date", "YYYY-MM-DD") from None
    else:
        raise InvalidInput(field, f"not a date: {value!r}", "YYYY-MM-DD")
    return check_date(field, day)


def format_local(dt: datetime | None, *, seconds: bool = False) -> str:
    """Clinic-local time with the zone shown, e.g. ``2026-03-10 17:30 PDT (America/Los_Angeles)``."""
    if dt is None:
        return ""
    loc = local(dt)
    return f"{loc.strftime('%Y-%m-%d %H:%M' + (':%S' if seconds else ''))} {loc.tzname()} ({zone_name()})"


def iso_local(dt: datetime | None) -> str | None:
    """Clinic-local ISO text with its offset (what --json and the API print)."""
    return None if dt is None else local(dt).isoformat(timespec="seconds")


def minutes_between(earlier: datetime, later: datetime) -> float:
    return (to_utc_stored(later) - to_utc_stored(earlier)) / timedelta(minutes=1)


def to_utc_stored(dt: datetime) -> datetime:
    """A stored value as aware UTC (SQLite returns naive UTC wall time)."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
