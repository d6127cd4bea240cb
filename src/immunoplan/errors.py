"""Errors shared by every layer.

`InvalidInput` is the one exception for bad user input: it names the field and the accepted range, so the
CLI can print one line and exit 2, and the web layer can answer HTTP 422 with the message next to the field.
Results that are clinical answers (``outside-table``, ``do-not-dose`` ...) are values, never exceptions.
"""

from __future__ import annotations


class InvalidInput(ValueError):
    """Invalid user input: ``field`` names the input, ``accepted`` the accepted range or values."""

    def __init__(self, field: str, message: str, accepted: str | None = None) -> None:
        self.field = field
        self.reason = message
        self.accepted = accepted
        text = f"{field}: {message}"
        if accepted:
            text += f" (accepted: {accepted})"
        super().__init__(text)

    def to_dict(self) -> dict[str, str | None]:
        return {"field": self.field, "message": self.reason, "accepted": self.accepted}


class ReferenceDataError(RuntimeError):
    """A shipped reference data file is malformed (a packaging defect, not user error)."""


class Conflict(RuntimeError):
    """A write refused because of another record: a duplicate clinical act, a concurrent change, a step
    already taken. ``record`` names the existing record (e.g. ``injection 12``); the CLI exits 2 and the web
    answers HTTP 409 with the message. Nothing was written."""

    def __init__(self, field: str, message: str, record: str | None = None) -> None:
        self.field = field
        self.reason = message
        self.record = record
        super().__init__(f"{field}: {message}" + (f" ({record})" if record else ""))

    def to_dict(self) -> dict[str, str | None]:
        return {"field": self.field, "message": self.reason, "record": self.record}
