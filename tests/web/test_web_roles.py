"""The role matrix: every route declares one permission, and every route x role gets exactly its access.

``EXPECTED`` restates the matrix independently of ``immunoplan.web.security.PERMISSIONS`` so a change to
either one fails here. For every route (all methods) and every role plus an anonymous visitor, the test makes
a real request (with the CSRF token) and checks: allowed -> neither 401/403 nor a redirect to the login
page (and never a 500); not allowed -> 403; anonymous on a non-public route -> 401 (API) or 303 to /login.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount
from web_helpers import WebClient

from immunoplan.registry import models as m
from immunoplan.services.auth import ROLES
from immunoplan.web.app import all_routes
from immunoplan.web.auth import route_permission
from immunoplan.web.security import PERMISSIONS

ALL = set(ROLES)
EXPECTED: dict[str, set[str] | None] = {  # None = public (also anonymous)
    "public": None,
    "authenticated": ALL,
    "patient.read": {"admin", "clinician", "nurse", "pharmacist"},
    "patient.write": {"admin", "clinician"},
    "assessment.write": {"admin", "clinician"},
    "course.plan": {"admin", "clinician"},
    "injection.record": {"admin", "clinician", "nurse"},
    "desensitization.plan": {"admin", "clinician"},
    "desensitization.sheets": {"admin", "clinician", "nurse", "pharmacist"},
    "desensitization.record": {"admin", "clinician", "nurse"},
    "visit.record": {"admin", "clinician", "nurse"},
    "record.void": {"admin", "clinician", "nurse"},
    "record.amend": {"admin", "clinician", "nurse"},
    "front_desk.read": {"admin", "clinician", "nurse"},
    "front_desk.record": {"admin", "clinician", "nurse"},
    "vial.register": {"admin", "clinician", "nurse", "pharmacist"},
    "vial.labels": {"admin", "clinician", "nurse", "pharmacist"},
    "research.read": {"admin", "clinician", "researcher"},
    "user.admin": {"admin"},
}
NON_API_ROUTES = {"/static"}  # the vendored static files: public by design


def test_declared_matrix_is_the_expected_one() -> None:
    assert set(PERMISSIONS) == set(EXPECTED)
    for name, roles in EXPECTED.items():
        assert (set(PERMISSIONS[name]) if name != "public" else None) == roles, name


def test_researcher_never_sees_identifiable_data() -> None:
    for name, roles in PERMISSIONS.items():
        if name.startswith(
            (
                "patient.",
                "assessment.",
                "course.",
                "injection.",
                "desensitization.",
                "visit.",
                "record.",
                "front_desk.",
                "vial.",
            )
        ):
            assert "researcher" not in roles, name


def _routes(app: Any) -> list[tuple[str, str, str]]:
    out = []
    for route in all_routes(app):
        if isinstance(route, APIRoute):
            perm = route_permission(route)
            assert perm is not None, f"{route.path} declares no permission"
            for method in sorted(route.methods - {"HEAD"}):
                out.append((method, route.path, perm))
        elif isinstance(route, Mount):
            assert route.path in NON_API_ROUTES, f"unexpected mount {route.path}"
        else:
            raise AssertionError(f"route {getattr(route, 'path', route)} is not guarded by a permission")
    return out


def test_every_route_declares_a_permission(app: Any) -> None:
    routes = _routes(app)
    assert len(routes) > 10
    assert {p for _, _, p in routes} <= set(EXPECTED)


@pytest.fixture
def ids(registry: Any) -> dict[str, int]:
    """One row of each kind so path parameters resolve."""
    with registry.transaction(actor="test") as s:
        p = m.Patient(pseudo_id="ROLE-1", sex="female")
        s.add(p)
        s.flush()
        c = m.Course(patient_id=p.id, kind="RIT", status="active")
        d = m.Course(patient_id=p.id, kind="drug_desensitization", status="planned", drug="carboplatin")
        s.add_all([c, d])
        s.flush()
        ds = m.DesensitizationSession(
            course_id=d.id,
            patient_id=p.id,
            session_on=p.created_at.date(),
            drug="carboplatin",
            target_dose_mg=1,
        )
        ra = m.RiskAssessment(patient_id=p.id, actor="test")
        s.add_all([ds, ra])
        s.flush()
        return {
            "patient_id": p.id,
            "course_id": c.id,
            "session_id": ds.id,
            "assessment_id": ra.id,
            "desensitization_course_id": d.id,
            "username": 0,
        }


def _url(path: str, ids: dict[str, int]) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        if name == "username":
            return "ghost"  # a user that does not exist: admin actions must not lock out the test clients
        if name == "path":
            return "x"
        if name == "step_no":
            return "1"
        if name == "kind":
            return "visit"
        if name in ("visit_id", "record_id"):
            return "999999"  # no such entry: 404/422 for the allowed roles, 403 for the others
        if name == "sheet":
            return "rdd-nursing"
        if name == "token":
            return "0123456789abcdef"
        if name in ("name", "table_id"):
            return "table1"
        return str(ids[name])

    return re.sub(r"\{([^}]+)\}", sub, path)


def _call(client: WebClient, method: str, url: str) -> Any:
    if method == "GET":
        return client.get(url)
    if url.startswith("/api/"):
        return client.request(method, url, json={})
    return client.request(method, url, data={"csrf_token": client.csrf})


def _is_login_redirect(r: Any) -> bool:
    return r.status_code == 303 and r.headers.get("location", "").startswith("/login")


def test_every_route_enforces_its_roles(
    app: Any, as_role: Any, client: WebClient, ids: dict[str, int]
) -> None:
    routes = _routes(app)
    clients = {role: as_role(role) for role in ROLES}
    client.refresh_csrf()
    checked = 0
    for method, path, perm in routes:
        url = _url(path, ids)
        if path in ("/logout",):
            continue  # checked separately (it would end the session used by later requests)
        allowed = EXPECTED[perm]
        for role in ROLES:
            r = _call(clients[role], method, url)
            where = f"{method} {url} as {role} ({perm}) -> {r.status_code}"
            assert r.status_code < 500, where + r.text[:300]
            if allowed is None:
                assert r.status_code != 403, where  # public (a failed login answers 401 by design)
            elif role in allowed:
                assert r.status_code not in (401, 403) and not _is_login_redirect(r), where
            else:
                assert r.status_code == 403, where
            checked += 1
        r = _call(client, method, url)
        where = f"{method} {url} anonymous ({perm}) -> {r.status_code}"
        assert r.status_code < 500, where
        if allowed is None:
            assert r.status_code != 403, where
        elif path.startswith("/api"):
            assert r.status_code == 401, where
        else:
            assert _is_login_redirect(r), where
        checked += 1
    assert checked >= 6 * (len(routes) - 1)


@pytest.mark.parametrize("role", ROLES)
def test_logout_for_every_role(as_role: Any, role: str) -> None:
    c = as_role(role)
    assert c.post("/logout").status_code == 303
    assert c.get("/api/me").status_code == 401


def test_unsafe_request_without_csrf_is_refused_for_an_allowed_role(clinician: WebClient) -> None:
    r = clinician.http.post("/api/patients", json={"pseudo_id": "NO-CSRF"})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    r = clinician.http.post("/patients", data={"pseudo_id": "NO-CSRF", "sex": "male"})
    assert r.status_code == 403
