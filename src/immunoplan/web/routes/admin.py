"""User administration (admin only): list accounts, add, disable/enable, set a new password; each change is
audited under the administrator's name (``services.auth`` over the registry's users table)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from immunoplan.errors import InvalidInput
from immunoplan.services import auth
from immunoplan.web import forms
from immunoplan.web.auth import permit
from immunoplan.web.deps import actor_of
from immunoplan.web.rendering import render

router = APIRouter()


def _context(request: Request, **extra: Any) -> dict[str, Any]:
    ctx = {
        "title": "Users",
        "users": request.app.state.ctx.users.list(),
        "roles": auth.ROLES,
        "form": forms.FormState({}),
        "message": None,
    }
    ctx.update(extra)
    return ctx


@router.get("/admin/users", dependencies=[permit("user.admin")], include_in_schema=False)
async def users_page(request: Request) -> Response:
    return render(request, "admin_users.html", _context(request))


@router.post("/admin/users", dependencies=[permit("user.admin")], include_in_schema=False)
async def users_add(request: Request) -> Response:
    f = await forms.read_form(request)
    ctx = request.app.state.ctx
    try:
        user = auth.add_user(
            ctx.users, ctx.passwords, f.get("username"), f.get("password"), f.get("role"), actor_of(request)
        )
    except InvalidInput as exc:
        f.fail(exc, known=("username", "password", "role"))
        return render(request, "admin_users.html", _context(request, form=f), status_code=422)
    return render(
        request, "admin_users.html", _context(request, message=f"Added {user.username} ({user.role}).")
    )


@router.post("/admin/users/{username}/disable", dependencies=[permit("user.admin")], include_in_schema=False)
async def users_disable(request: Request, username: str) -> Response:
    return _toggle(request, username, True)


@router.post("/admin/users/{username}/enable", dependencies=[permit("user.admin")], include_in_schema=False)
async def users_enable(request: Request, username: str) -> Response:
    return _toggle(request, username, False)


def _toggle(request: Request, username: str, disabled: bool) -> Response:
    if disabled and username == actor_of(request):
        return render(
            request,
            "admin_users.html",
            _context(request, message="You cannot disable yourself."),
            status_code=422,
        )
    try:
        user = auth.set_disabled(request.app.state.ctx.users, username, disabled, actor_of(request))
    except InvalidInput as exc:
        return render(request, "admin_users.html", _context(request, message=str(exc)), status_code=422)
    state = "disabled" if user.disabled else "enabled"
    return render(request, "admin_users.html", _context(request, message=f"{user.username} {state}."))


@router.post("/admin/users/{username}/password", dependencies=[permit("user.admin")], include_in_schema=False)
async def users_password(request: Request, username: str) -> Response:
    f = await forms.read_form(request)
    ctx = request.app.state.ctx
    try:
        auth.change_password(ctx.users, ctx.passwords, username, f.get("password"), actor_of(request))
    except InvalidInput as exc:
        return render(request, "admin_users.html", _context(request, message=str(exc)), status_code=422)
    return render(request, "admin_users.html", _context(request, message=f"New password set for {username}."))
