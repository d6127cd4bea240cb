"""Fuzz the JSON API from its OpenAPI schema (schemathesis): no request, valid or not, may cause a 5xx.

The schema comes from the app itself; requests go over real HTTP to a uvicorn server on a throw-away
registry, as an administrator (every API operation allowed) with the session cookie and CSRF header.
Examples per operation are kept modest so the module runs in about a minute.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from web_helpers import password_for, start_server

from immunoplan.services.auth import InMemoryUserStore
from immunoplan.web.app import create_app

pytestmark = pytest.mark.slow

# The schema only (no database): the same route declarations as the served app.
schema = schemathesis.openapi.from_dict(
    create_app(users=InMemoryUserStore(), registry=object()).openapi()
).exclude(
    path="/research/export/tables.xlsx"  # builds the whole report (~10 s a call): see test_web_research
)


@pytest.fixture(scope="module")
def fuzz_server(template_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    db = tmp_path_factory.mktemp("fuzz") / "registry.sqlite"
    shutil.copy(template_db, db)
    url, stop = start_server(db)
    with httpx.Client(base_url=url) as c:
        token = c.get("/login").text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        r = c.post(
            "/login", data={"username": "admin1", "password": password_for("admin"), "csrf_token": token}
        )
        assert r.status_code == 303
        me = c.get("/api/me").json()
        auth = {"url": url, "cookies": dict(c.cookies), "headers": {"X-CSRF-Token": me["csrf_token"]}}
    yield auth
    stop()


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_never_answers_5xx(case: Any, fuzz_server: dict[str, Any]) -> None:
    headers = {**(case.headers or {}), **fuzz_server["headers"]}
    response = case.call(base_url=fuzz_server["url"], headers=headers, cookies=fuzz_server["cookies"])
    where = f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
    assert response.status_code < 500, where
    assert response.status_code not in (401, 403), "the fuzzing session must stay logged in: " + where
