"""The FastAPI application: `create_app(...)` wires settings, accounts, sessions, templates and routes.

Pages are server-rendered Jinja2 (htmx for partial updates); the JSON API lives under ``/api`` with its
OpenAPI schema at ``/api/openapi.json``. Static assets (htmx, Chart.js) are vendored in ``static/vendor``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from immunoplan import __version__
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.services.auth import InMemoryUserStore, Passwords, UserStore
from immunoplan.web.auth import Forbidden, NotAuthenticated
from immunoplan.web.rendering import render, templates
from immunoplan.web.security import LoginRateLimiter, Session, SessionCodec, new_csrf_token
from immunoplan.web.settings import WebSettings

HERE = Path(__file__).parent
SESSION_COOKIE = "immunoplan_session"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


@dataclass
class WebContext:
    """Everything a request handler needs; one per app (``request.app.state.ctx``)."""

    settings: WebSettings
    users: UserStore
    passwords: Passwords
    codec: SessionCodec
    limiter: LoginRateLimiter
    registry: Any = None  # the registry handle (immunoplan.registry), when configured
    extras: dict[str, Any] = field(default_factory=dict)


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"


def _install_session_middleware(app: FastAPI) -> None:
    @app.middleware("http")
    async def session_middleware(request: Request, call_next: Any) -> Response:
        ctx: WebContext = request.app.state.ctx
        sess = ctx.codec.loads(request.cookies.get(SESSION_COOKIE))
        fresh = sess is None
        request.state.session = sess or Session(csrf=new_csrf_token())
        response: Response = await call_next(request)
        new: Session | None = getattr(request.state, "new_session", None)
        if new is not None or fresh:
            response.set_cookie(
                SESSION_COOKIE,
                ctx.codec.dumps(new or request.state.session),
                max_age=ctx.settings.session_max_age_s,
                httponly=True,
                samesite="lax",
                secure=ctx.settings.cookie_secure,
                path="/",
            )
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if "text/html" in response.headers.get("content-type", ""):
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotAuthenticated)
    async def _not_authenticated(request: Request, exc: NotAuthenticated) -> Response:
        if is_api(request):
            return JSONResponse({"detail": "not authenticated"}, status_code=401)
        target = "/login"
        if request.method == "GET":
            target += f"?next={request.url.path}"
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if is_api(request) or exc.status_code < 400:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        title = "Not found" if exc.status_code == 404 else f"Error {exc.status_code}"
        return render(
            request, "error.html", {"title": title, "message": str(exc.detail)}, status_code=exc.status_code
        )

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        if is_api(request):
            return JSONResponse({"detail": exc.message}, status_code=403)
        return render(
            request, "error.html", {"title": "Not allowed", "message": exc.message}, status_code=403
        )

    @app.exception_handler(InvalidInput)
    async def _invalid(request: Request, exc: InvalidInput) -> Response:
        if is_api(request):
            return JSONResponse({"detail": [exc.to_dict()]}, status_code=422)
        return render(request, "error.html", {"title": "Invalid input", "message": str(exc)}, status_code=422)

    @app.exception_handler(Conflict)
    async def _conflict(request: Request, exc: Conflict) -> Response:
        # A duplicate clinical act or a concurrent change: HTTP 409 naming the record it conflicts with.
        if is_api(request):
            return JSONResponse({"detail": [exc.to_dict()]}, status_code=409)
        return render(request, "error.html", {"title": "Conflict", "message": str(exc)}, status_code=409)

    @app.exception_handler(ArithmeticError)
    async def _arithmetic(request: Request, exc: ArithmeticError) -> Response:
        # Safety net: an engine's exact Decimal arithmetic overflowed on extreme (but schema-valid) input.
        # Answer 422 like any other invalid input; nothing has been written at this point of a request.
        message = "the numbers entered are outside the range that can be computed exactly"
        if is_api(request):
            return JSONResponse({"detail": [{"field": "body", "message": message, "accepted": None}]}, 422)
        return render(request, "error.html", {"title": "Invalid input", "message": message}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        details = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ())[1:]) or "body",
                "message": e.get("msg", "invalid"),
                "accepted": None,
            }
            for e in exc.errors()
        ]
        if is_api(request):
            return JSONResponse({"detail": details}, status_code=422)
        message = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        return render(request, "error.html", {"title": "Invalid input", "message": message}, status_code=422)


def create_app(
    settings: WebSettings | None = None,
    *,
    users: UserStore | None = None,
    registry: Any = None,
    **overrides: Any,
) -> FastAPI:
    """Build the web application.

    ``settings`` (or keyword ``overrides`` of `WebSettings` fields) configure it; ``users`` and ``registry``
    inject storage (by default both come from the registry database named by ``settings.db``).
    """
    settings = settings or WebSettings(**overrides)
    if registry is None and users is None:
        from immunoplan.registry.users import open_storage

        registry, users = open_storage(settings.db)
    elif users is None:
        from immunoplan.registry.users import user_store_for

        users = user_store_for(registry)
    ctx = WebContext(
        settings=settings,
        users=users if users is not None else InMemoryUserStore(),
        passwords=Passwords(fast=settings.fast_password_hashing),
        codec=SessionCodec(settings.secret_key, settings.session_max_age_s),
        limiter=LoginRateLimiter(settings.login_max_failures, settings.login_window_s),
        registry=registry,
    )
    app = FastAPI(
        title="immunoplan",
        version=__version__,
        description="Immunotherapy, drug desensitization and omalizumab: clinic web app and JSON API.",
        docs_url=None,  # Swagger UI would load from a CDN; the schema is served at /api/openapi.json
        redoc_url=None,
        openapi_url=None,
    )
    app.state.ctx = ctx
    _install_session_middleware(app)
    _install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    from immunoplan.web.routes import include_all

    include_all(app)
    templates.env.globals["version"] = __version__
    return app


def all_routes(app: FastAPI) -> list[Any]:
    """Every route of the app, with included routers flattened (FastAPI >= 0.16x wraps them lazily)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - older FastAPI keeps routes flat
        return list(app.routes)
    return [ctx.original_route for ctx in iter_route_contexts(app.routes)]
