"""Request authentication and authorisation: the `Permission` dependency every route declares.

``dependencies=[permit("patient.read")]`` on a route (or ``user = Depends(Permission(...))``) resolves the
signed session to an enabled user, checks the role against `security.PERMISSIONS`, and for unsafe methods
checks the CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``). Order: 401 (not logged in) ->
403 (role) -> 403 (CSRF), so a role can never learn more by omitting the token.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request

from immunoplan.services.auth import User
from immunoplan.web.security import PERMISSIONS, PUBLIC, Session, allowed, csrf_matches, hash_fingerprint

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class NotAuthenticated(Exception):
    """No valid session: pages redirect to the login form, the API answers 401."""


class Forbidden(Exception):
    """The user's role may not use this route (or the CSRF token is missing/wrong)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def session_of(request: Request) -> Session:
    return request.state.session  # set by the session middleware in app.py


def current_user(request: Request) -> User | None:
    """The logged-in, enabled user whose password has not changed since the session began, else None."""
    if hasattr(request.state, "user"):
        return request.state.user  # type: ignore[no-any-return]
    sess = session_of(request)
    user = None
    if sess.user_id is not None:
        u = request.app.state.ctx.users.get_by_id(sess.user_id)
        if u is not None and not u.disabled and sess.fingerprint == hash_fingerprint(u.password_hash):
            user = u
    request.state.user = user
    return user


async def check_csrf(request: Request) -> None:
    expected = session_of(request).csrf
    given = request.headers.get(CSRF_HEADER)
    if not given and "form" in request.headers.get("content-type", ""):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not csrf_matches(expected, given):
        raise Forbidden("CSRF token missing or invalid: reload the page and try again")


class Permission:
    """FastAPI dependency guarding a route with one permission of the role matrix."""

    def __init__(self, name: str) -> None:
        if name not in PERMISSIONS:
            raise KeyError(f"undeclared permission {name!r}")
        self.name = name

    def __repr__(self) -> str:
        return f"Permission({self.name!r})"

    async def __call__(self, request: Request) -> User | None:
        user = current_user(request)
        if self.name != PUBLIC:
            if user is None:
                raise NotAuthenticated()
            if not allowed(user.role, self.name):
                raise Forbidden(f"your role ({user.role}) may not do this ({self.name})")
        if request.method not in SAFE_METHODS:
            await check_csrf(request)
        return user


def permit(name: str) -> Any:
    """``dependencies=[permit("...")]`` for a route."""
    return Depends(Permission(name))


def route_permission(route: Any) -> str | None:
    """The permission a route declares (None if it declares none): used by the role-matrix test."""
    dependant = getattr(route, "dependant", None)
    stack = list(dependant.dependencies) if dependant is not None else []
    found = []
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, Permission):
            found.append(dep.call.name)
        stack.extend(dep.dependencies)
    if len(set(found)) > 1:
        raise AssertionError(f"route {route.path} declares several permissions: {found}")
    return found[0] if found else None
