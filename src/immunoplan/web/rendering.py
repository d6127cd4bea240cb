"""Template rendering: Jinja2 with block (fragment) rendering for htmx, and the globals every page uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from jinja2_fragments.fastapi import Jinja2Blocks

from immunoplan import clock
from immunoplan.web.forms import new_idempotency_key
from immunoplan.web.security import allowed

templates = Jinja2Blocks(directory=str(Path(__file__).parent / "templates"))
#: ``{{ at|clinic_time }}`` -> "2026-03-10 17:30 PDT (America/Los_Angeles)"; ``clinic_clock`` -> "17:30"
templates.env.filters["clinic_time"] = clock.format_local
templates.env.filters["clinic_clock"] = lambda dt: clock.local(dt).strftime("%H:%M") if dt else ""
templates.env.filters["clinic_date"] = lambda dt: clock.local_date(dt).isoformat() if dt else ""


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    block: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Render ``name`` (or only its ``block`` for htmx) with user, CSRF token and a ``can`` helper."""
    from immunoplan.web.auth import current_user

    user = current_user(request)
    ctx: dict[str, Any] = {
        "request": request,
        "user": user,
        "csrf_token": request.state.session.csrf,
        "can": lambda permission: allowed(user.role if user else None, permission),
        "errors": {},
        "clinic_zone": clock.zone_name(),
        "clinic_today": clock.today(),
        "new_idempotency_key": new_idempotency_key,
    }
    ctx.update(context or {})
    kwargs: dict[str, Any] = {"block_name": block} if block else {}
    return templates.TemplateResponse(request, name, ctx, status_code=status_code, headers=headers, **kwargs)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"
