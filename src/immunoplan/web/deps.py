"""Small helpers shared by the route modules."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import HTTPException, Request

from immunoplan import clock
from immunoplan.registry import models as m


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


def patient_or_404(s: Any, patient_id: int) -> m.Patient:
    p = s.get(m.Patient, patient_id)
    if p is None:
        raise HTTPException(404, f"no patient {patient_id}")
    return p


def course_or_404(s: Any, patient_id: int, course_id: int) -> m.Course:
    c = s.get(m.Course, course_id)
    if c is None or c.patient_id != patient_id:
        raise HTTPException(404, f"no course {course_id} for patient {patient_id}")
    return c
