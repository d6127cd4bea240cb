"""User administration page: add, disable/enable, set password, all audited under the admin."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from web_helpers import WebClient

from immunoplan.registry import models as m


def test_admin_adds_disables_and_resets(as_role: Any, app: Any, registry: Any) -> None:
    admin = as_role("admin")
    assert "nurse1" in admin.get("/admin/users").text
    r = admin.post("/admin/users", {"username": "newdoc", "role": "clinician", "password": "long enough pw"})
    assert r.status_code == 200 and "Added newdoc (clinician)" in r.text
    assert WebClient(app).login("newdoc", "long enough pw").status_code == 303
    assert admin.post("/admin/users/newdoc/disable").status_code == 200
    assert WebClient(app).login("newdoc", "long enough pw").status_code == 401
    admin.post("/admin/users/newdoc/enable")
    admin.post("/admin/users/newdoc/password", {"password": "another long pw"})
    assert WebClient(app).login("newdoc", "another long pw").status_code == 303
    with registry.session() as s:
        cases = [
            e.use_case
            for e in s.scalars(select(m.AuditEntry).where(m.AuditEntry.table_name == "users"))
            if e.actor == "admin1"
        ]
    assert cases == ["user.add", "user.disable", "user.enable", "user.passwd"]


def test_admin_bad_input_next_to_field(as_role: Any) -> None:
    admin = as_role("admin")
    r = admin.post("/admin/users", {"username": "Bad Name", "role": "nurse", "password": "long enough pw"})
    assert r.status_code == 422 and 'id="e-username"' in r.text
    r = admin.post("/admin/users", {"username": "okname", "role": "nurse", "password": "short"})
    assert r.status_code == 422 and 'id="e-password"' in r.text
    assert admin.post("/admin/users/admin1/disable").status_code == 422  # not yourself
    assert admin.post("/admin/users/nobody/disable").status_code == 422
    assert "okname" not in admin.get("/admin/users").text
