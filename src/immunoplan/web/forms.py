"""Form handling: read fields, collect `InvalidInput` per field so the page shows each message next to its
field (HTTP 422, nothing saved)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from fastapi import Request

from immunoplan.errors import InvalidInput


def message(exc: InvalidInput) -> str:
    return exc.reason + (f" (accepted: {exc.accepted})" if exc.accepted else "")


class FormState:
    """Raw values as typed, parsed values and per-field error messages."""

    def __init__(self, raw: dict[str, str]) -> None:
        self.raw = raw
        self.values: dict[str, Any] = {}
        self.errors: dict[str, str] = {}

    def get(self, name: str, default: str = "") -> str:
        return self.raw.get(name, default)

    def parse(self, name: str, fn: Callable[[str], Any]) -> Any:
        """Parse field ``name`` with ``fn``; an `InvalidInput` becomes that field's error message."""
        try:
            value = fn(self.raw.get(name, "").strip())
        except InvalidInput as exc:
            self.errors.setdefault(name, message(exc))
            value = None
        self.values[name] = value
        return value

    def fail(self, exc: InvalidInput, known: tuple[str, ...] = ()) -> None:
        """Attach a service-level error to its field (or to the form when the field is not on it)."""
        field = exc.field if exc.field in self.raw or exc.field in known else "form"
        self.errors.setdefault(field, f"{exc.field}: {message(exc)}" if field == "form" else message(exc))

    @property
    def ok(self) -> bool:
        return not self.errors


async def read_form(request: Request) -> FormState:
    form = await request.form()
    raw = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    state = FormState(raw)
    state.raw.update(
        {f"{k}[]": ",".join(str(x) for x in form.getlist(k)) for k in form if len(form.getlist(k)) > 1}
    )
    return state


# ---------------------------------------------------------------- field parsers (raise InvalidInput)


def required(field: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if not text:
            raise InvalidInput(field, "is required")
        return text

    return parse


def optional_text(text: str) -> str | None:
    return text or None


def date_field(field: str, optional: bool = False) -> Callable[[str], date | None]:
    def parse(text: str) -> date | None:
        if not text:
            if optional:
                return None
            raise InvalidInput(field, "is required", "YYYY-MM-DD")
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(field, f"cannot read {text!r} as a date", "YYYY-MM-DD") from None

    return parse


def choice(field: str, choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise InvalidInput(field, f"unknown value {text!r}", ", ".join(choices))
        return text

    return parse


def optional_choice(field: str, choices: tuple[str, ...]) -> Callable[[str], str | None]:
    """Like `choice`, but an empty value means "not stated" (None)."""
    pick = choice(field, choices)
    return lambda text: None if text == "" else pick(text)


def number_text(field: str, optional: bool = False) -> Callable[[str], str | None]:
    """Keep a number as typed (the service converts it exactly); only checks presence and syntax."""
    from immunoplan.validation import to_decimal

    def parse(text: str) -> str | None:
        if not text:
            if optional:
                return None
            raise InvalidInput(field, "is required", "a number")
        to_decimal(field, text)
        return text

    return parse


# ---------------------------------------------------------------- idempotency (one write per form render)

IDEMPOTENCY_FIELD = "idempotency_key"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def new_idempotency_key() -> str:
    """A fresh key for a form about to be shown (hidden field ``idempotency_key``)."""
    import uuid

    return uuid.uuid4().hex


def idempotency_key(request: Request, f: FormState | None = None) -> str | None:
    """The client's key for this write: the form's hidden field, else the ``Idempotency-Key`` header."""
    if f is not None and f.get(IDEMPOTENCY_FIELD):
        return f.get(IDEMPOTENCY_FIELD)
    return request.headers.get(IDEMPOTENCY_HEADER) or None
