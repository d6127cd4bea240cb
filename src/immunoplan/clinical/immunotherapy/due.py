"""Due or late: the one definition, used by the web patient list, ``immunoplan due`` and reminders.

The due date itself is clinical (the next-injection engine computes it from the schedule and stores it as
``courses.next_due_on``). Whether a due date counts as "due" or "late" on a given clinic day is the clinic's
own working policy, not a clinical threshold: ``grace_days`` (days past the due date before it is "late") and
``window_days`` (how far ahead an upcoming injection is already listed as "due") are the caller's parameters,
0 by default. What a missed dose does to the next dose is decided by the missed-dose rules of the engine
(``scit_adjustment``), never here.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

DUE_STATUSES = ("due", "late")
DueStatus = Literal["due", "late"]


def due_status(
    next_due_on: date | None, today: date, grace_days: int = 0, window_days: int = 0
) -> DueStatus | None:
    """``late`` when ``today`` is more than ``grace_days`` past ``next_due_on``; ``due`` from ``window_days``
    before the due date up to the end of the grace; None otherwise (or without a due date). ``today`` is the
    clinic's date (`immunoplan.clock.today`)."""
    if next_due_on is None:
        return None
    if grace_days < 0 or window_days < 0:
        raise ValueError("grace_days and window_days must not be negative")
    overdue = (today - next_due_on).days
    if overdue > grace_days:
        return "late"
    if overdue >= -window_days:
        return "due"
    return None
