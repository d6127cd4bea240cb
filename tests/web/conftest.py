"""Web test harness: an app over a throw-away registry with one account per role, an in-process client that
logs in and sends the CSRF token, and (browser tests) a real uvicorn server on a free port."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")

from web_helpers import WebClient, password_for, start_server

from immunoplan.registry.users import open_storage
from immunoplan.services.auth import ROLES, Passwords, add_user
from immunoplan.web.app import create_app
from immunoplan.web.settings import WebSettings

SECRET = "test-secret-key-" + "x" * 32


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated registry with one account per role (``<role>1``), copied for each test."""
    path = tmp_path_factory.mktemp("webdb") / "template.sqlite"
    registry, users = open_storage(str(path))
    pw = Passwords(fast=True)
    for role in ROLES:
        add_user(users, pw, f"{role}1", password_for(role), role, "test-setup")
    registry.dispose()
    return path


@pytest.fixture
def db_path(template_db: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "registry.sqlite"
    shutil.copy(template_db, dest)
    return dest


@pytest.fixture
def app(db_path: Path) -> Any:
    application = create_app(WebSettings(db=str(db_path), secret_key=SECRET, fast_password_hashing=True))
    yield application
    application.state.ctx.registry.dispose()


@pytest.fixture
def client(app: Any) -> WebClient:
    return WebClient(app)


@pytest.fixture
def as_role(app: Any):
    """``as_role("nurse")`` -> a logged-in WebClient (a fresh client per call)."""

    def make(role: str) -> WebClient:
        return WebClient(app).login_as(role)

    return make


@pytest.fixture
def clinician(as_role: Any) -> WebClient:
    return as_role("clinician")


@pytest.fixture
def nurse(as_role: Any) -> WebClient:
    return as_role("nurse")


@pytest.fixture
def registry(app: Any) -> Any:
    return app.state.ctx.registry


@pytest.fixture
def live_server(db_path: Path) -> Iterator[str]:
    """A real uvicorn server (own thread) on 127.0.0.1 and a free port over a tmp registry: its base URL."""
    url, stop = start_server(db_path)
    yield url
    stop()


CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian chromium is not installed (scripts/install-test-deps.sh installs it)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any, live_server: str) -> Iterator[Any]:
    context = chromium.new_context(base_url=live_server, viewport={"width": 1180, "height": 900})
    pg = context.new_page()
    yield pg
    context.close()
