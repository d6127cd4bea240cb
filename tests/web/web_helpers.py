"""Helpers for the web tests (a uniquely named module: importable from every test file in this folder)."""

from __future__ import annotations

import re
import warnings
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def password_for(role: str) -> str:
    return f"{role}-password-1"


class WebClient:
    """TestClient that remembers the session's CSRF token and sends it on every unsafe request."""

    def __init__(self, app: Any) -> None:
        self.http = TestClient(app, follow_redirects=False)
        self.csrf = ""

    def refresh_csrf(self, html: str | None = None) -> str:
        if html is None:
            html = self.http.get("/login").text
        m = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert m, "no CSRF token in page"
        self.csrf = m.group(1)
        return self.csrf

    def login(self, username: str, password: str) -> Any:
        self.refresh_csrf()
        r = self.http.post(
            "/login", data={"username": username, "password": password, "csrf_token": self.csrf}
        )
        if r.status_code == 303:
            self.csrf = self.http.get("/api/me").json()["csrf_token"]
        return r

    def login_as(self, role: str) -> WebClient:
        r = self.login(f"{role}1", password_for(role))
        assert r.status_code == 303, r.text
        return self

    def get(self, url: str, **kw: Any) -> Any:
        return self.http.get(url, **kw)

    def post(self, url: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
        if "json" in kw:
            headers = {"X-CSRF-Token": self.csrf, **kw.pop("headers", {})}
            return self.http.post(url, headers=headers, **kw)
        form = {"csrf_token": self.csrf, **(data or {})}
        return self.http.post(url, data=form, **kw)

    def request(self, method: str, url: str, **kw: Any) -> Any:
        headers = {"X-CSRF-Token": self.csrf, **kw.pop("headers", {})}
        return self.http.request(method, url, headers=headers, **kw)


def html_text(html: str) -> str:
    """Visible-ish text of a page (tags stripped, whitespace collapsed) for assertions."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def start_server(db_path: Any, secret: str = "server-secret-" + "s" * 32) -> tuple[str, Any]:
    """Start uvicorn (own thread) on 127.0.0.1 and a free port over ``db_path``; returns (base URL, stop)."""
    import socket
    import threading

    import uvicorn

    from immunoplan.web.app import create_app
    from immunoplan.web.settings import WebSettings

    application = create_app(WebSettings(db=str(db_path), secret_key=secret, fast_password_hashing=True))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        thread.join(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(10)
        application.state.ctx.registry.dispose()

    return f"http://127.0.0.1:{port}", stop
