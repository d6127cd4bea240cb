"""Small helpers shared by the route modules: the registry and the actor of a request, the clinic's date,
and service answers that mean "not found" turned into HTTP 404."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any, TypeVar

from fastapi import HTTPException, Request

from immunoplan import clock
from immunoplan.errors import Conflict, InvalidInput

T = TypeVar("T")


def registry_of(request: Request) -> Any:
    return request.app.state.ctx.registry


def actor_of(request: Request) -> str:
    """The logged-in user's name: the actor of every write (audit trail)."""
    from immunoplan.web.auth import current_user

    user = current_user(request)
    if user is None:  # pragma: no cover - every writing route requires a role
        raise HTTPException(401, "not authenticated")
    return user.username


def today() -> date:
    """The clinic's date (`immunoplan.clock`), never the server's."""
    return clock.today()


def found_or_404(value: T | None, detail: str) -> T:
    """A service read's answer, or 404 when it found nothing (None)."""
    if value is None:
        raise HTTPException(404, detail)
    return value


@contextmanager
def lookup_as_404() -> Iterator[None]:
    """A service's `LookupError` (an unknown course, one of another patient) as 404."""
    try:
        yield
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None


def patient_or_404(request: Request, patient_id: int) -> dict[str, Any]:
    """The patient as `services.records.patients.show_patient` reads it (age on the clinic's today, courses),
    or 404."""
    from immunoplan.services.records import patients

    try:
        return patients.show_patient(registry_of(request), patient_id)
    except InvalidInput:
        raise HTTPException(404, f"no patient {patient_id}") from None


def conflict_message(exc: Conflict) -> str:
    """A `Conflict` as a page shows it: the reason and the record it conflicts with."""
    return f"{exc.reason}" + (f" ({exc.record})" if exc.record else "")
