"""Log in / log out, the home page, health check and the OpenAPI schema."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from immunoplan.services.auth import authenticate
from immunoplan.web.auth import current_user, permit
from immunoplan.web.rendering import render
from immunoplan.web.security import AUTHENTICATED, PUBLIC, Session, allowed, hash_fingerprint, new_csrf_token

router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def home_for(role: str) -> str:
    if allowed(role, "patient.read"):
        return "/patients"
    if allowed(role, "research.read"):
        return "/research"
    return "/account"


@router.get("/", dependencies=[permit(AUTHENTICATED)], include_in_schema=False)
async def home(request: Request) -> Response:
    user = current_user(request)
    assert user is not None
    return RedirectResponse(home_for(user.role), status_code=303)


@router.get("/login", dependencies=[permit(PUBLIC)], include_in_schema=False)
async def login_form(request: Request, next: str = "/") -> Response:
    return render(request, "login.html", {"next": _safe_next(next), "title": "Log in"})


@router.post("/login", dependencies=[permit(PUBLIC)], include_in_schema=False)
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=100)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    ctx = request.app.state.ctx
    client = request.client.host if request.client else "unknown"
    keys = (f"user:{username.strip().lower()}", f"addr:{client}")
    context: dict[str, Any] = {"next": _safe_next(next), "username": username, "title": "Log in"}
    if ctx.limiter.blocked(*keys):
        wait = ctx.limiter.retry_after_s(*keys)
        context["errors"] = {"form": f"Too many failed attempts. Try again in {wait} seconds."}
        return render(request, "login.html", context, status_code=429, headers={"Retry-After": str(wait)})
    user = authenticate(ctx.users, ctx.passwords, username, password)
    if user is None:
        ctx.limiter.failure(*keys)
        context["errors"] = {"form": "Unknown user name or wrong password, or the account is disabled."}
        return render(request, "login.html", context, status_code=401)
    ctx.limiter.success(*keys)
    # A fresh session (new CSRF token) at login: no session fixation.
    request.state.new_session = Session(new_csrf_token(), user.id, hash_fingerprint(user.password_hash))
    return RedirectResponse(
        context["next"] if context["next"] != "/" else home_for(user.role), status_code=303
    )


@router.post("/logout", dependencies=[permit(AUTHENTICATED)], include_in_schema=False)
async def logout(request: Request) -> Response:
    request.state.new_session = Session(new_csrf_token())
    return RedirectResponse("/login", status_code=303)


@router.get("/account", dependencies=[permit(AUTHENTICATED)], include_in_schema=False)
async def account(request: Request) -> Response:
    return render(request, "account.html", {"title": "Your account"})


@router.get("/healthz", dependencies=[permit(PUBLIC)], tags=["meta"])
async def healthz() -> dict[str, str]:
    """Liveness probe."""
    return {"status": "ok"}


@router.get("/api/openapi.json", dependencies=[permit(PUBLIC)], include_in_schema=False)
async def openapi(request: Request) -> Response:
    return JSONResponse(request.app.openapi())


@router.get("/api/me", dependencies=[permit(AUTHENTICATED)], tags=["meta"])
async def me(request: Request) -> dict[str, Any]:
    """The logged-in user and the CSRF token to send as ``X-CSRF-Token`` on writes."""
    user = current_user(request)
    assert user is not None
    return {"username": user.username, "role": user.role, "csrf_token": request.state.session.csrf}
