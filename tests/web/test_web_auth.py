"""Accounts, sessions, CSRF and login rate limiting."""

from __future__ import annotations

from typing import Any

import pytest
from web_helpers import WebClient, password_for

from immunoplan.errors import InvalidInput
from immunoplan.services import auth


def test_login_sets_httponly_samesite_cookie_and_redirects_home(client: WebClient) -> None:
    r = client.login("nurse1", password_for("nurse"))
    assert r.status_code == 303
    assert r.headers["location"] == "/patients"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_researcher_lands_on_research(client: WebClient) -> None:
    r = client.login("researcher1", password_for("researcher"))
    assert r.headers["location"] == "/research"


def test_wrong_password_is_401_and_no_session(client: WebClient) -> None:
    r = client.login("nurse1", "not-the-password")
    assert r.status_code == 401
    assert "wrong password" in r.text
    assert client.get("/api/me").status_code == 401


def test_login_without_csrf_token_is_refused(client: WebClient) -> None:
    r = client.http.post("/login", data={"username": "nurse1", "password": password_for("nurse")})
    assert r.status_code == 403
    assert client.get("/api/me").status_code == 401


def test_login_rotates_the_csrf_token(client: WebClient) -> None:
    before = client.refresh_csrf()
    client.login_as("nurse")
    assert client.csrf != before


def test_unauthenticated_page_redirects_to_login_with_next(client: WebClient) -> None:
    r = client.get("/account")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/account"


def test_next_parameter_cannot_redirect_off_site(client: WebClient) -> None:
    client.refresh_csrf()
    r = client.post(
        "/login", {"username": "nurse1", "password": password_for("nurse"), "next": "//evil.example/x"}
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/patients"


def test_rate_limit_blocks_after_max_failures_even_with_right_password(app: Any, client: WebClient) -> None:
    limiter = app.state.ctx.limiter
    now = [1000.0]
    limiter.clock = lambda: now[0]
    for _ in range(limiter.max_failures):
        assert client.login("clinician1", "wrong-password!").status_code == 401
    r = client.login("clinician1", password_for("clinician"))
    assert r.status_code == 429
    assert "Too many failed attempts" in r.text
    assert int(r.headers["retry-after"]) >= 1
    now[0] += limiter.window_s + 1  # the window has passed
    assert client.login("clinician1", password_for("clinician")).status_code == 303


def test_logout_ends_the_session(nurse: WebClient) -> None:
    assert nurse.get("/api/me").status_code == 200
    assert nurse.post("/logout").status_code == 303
    assert nurse.get("/api/me").status_code == 401


def test_logout_needs_csrf(nurse: WebClient) -> None:
    r = nurse.http.post("/logout", data={})
    assert r.status_code == 403
    assert nurse.get("/api/me").status_code == 200


def test_disabling_a_user_ends_their_session(app: Any, nurse: WebClient) -> None:
    auth.set_disabled(app.state.ctx.users, "nurse1", True, "admin1")
    assert nurse.get("/api/me").status_code == 401
    assert WebClient(app).login("nurse1", password_for("nurse")).status_code == 401


def test_password_change_ends_sessions_and_new_password_works(app: Any, nurse: WebClient) -> None:
    ctx = app.state.ctx
    auth.change_password(ctx.users, ctx.passwords, "nurse1", "a-brand-new-pass", "admin1")
    assert nurse.get("/api/me").status_code == 401
    assert WebClient(app).login("nurse1", "a-brand-new-pass").status_code == 303


def test_tampered_cookie_is_anonymous(app: Any, nurse: WebClient) -> None:
    value = nurse.http.cookies.get("immunoplan_session")
    nurse.http.cookies.set("immunoplan_session", value[:-3] + "AAA")
    assert nurse.get("/api/me").status_code == 401


def test_password_hashes_are_argon2_and_verify() -> None:
    pw = auth.Passwords(fast=True)
    h = pw.hash("long enough password")
    assert h.startswith("$argon2id$")
    assert pw.verify(h, "long enough password")
    assert not pw.verify(h, "long enough passworD")
    assert not pw.verify(None, "anything at all")


@pytest.mark.parametrize(
    ("username", "password", "role", "field"),
    [
        ("Bad Name", "long enough password", "nurse", "username"),
        ("x", "long enough password", "nurse", "username"),
        ("okname", "short", "nurse", "password"),
        ("okname", "long enough password", "surgeon", "role"),
    ],
)
def test_add_user_rejects_bad_input(username: str, password: str, role: str, field: str) -> None:
    store = auth.InMemoryUserStore()
    with pytest.raises(InvalidInput) as exc:
        auth.add_user(store, auth.Passwords(fast=True), username, password, role, "t")
    assert exc.value.field == field
    assert store.list() == []


def test_user_changes_are_audited_with_the_actor(app: Any) -> None:
    from sqlalchemy import select

    from immunoplan.registry.models import AuditEntry

    ctx = app.state.ctx
    auth.add_user(ctx.users, ctx.passwords, "newnurse", "long enough password", "nurse", "admin1")
    auth.set_disabled(ctx.users, "newnurse", True, "admin1")
    with ctx.registry.session() as s:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.table_name == "users")).all()
    mine = [(r.actor, r.use_case) for r in rows if r.actor == "admin1"]
    assert mine == [("admin1", "user.add"), ("admin1", "user.disable")]


def test_cli_user_add_passwd_disable(cli: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    db = str(tmp_path / "cli.sqlite")
    monkeypatch.setattr("sys.stdin", io.StringIO("first password 1\n"))
    r = cli("user", "add", "kim", "--role", "nurse", "--db", db, "--password-stdin", "--json")
    assert r.code == 0, r.stderr
    assert r.json["user"] == {**r.json["user"], "username": "kim", "role": "nurse", "disabled": False}
    assert "password_hash" not in r.stdout
    monkeypatch.setattr("sys.stdin", io.StringIO("second password 2\n"))
    r = cli("user", "passwd", "kim", "--db", db, "--password-stdin", "--json")
    assert r.code == 0 and r.json["action"] == "password changed"
    r = cli("user", "disable", "kim", "--db", db, "--json")
    assert r.code == 0 and r.json["user"]["disabled"] is True
    r = cli("user", "list", "--db", db, "--json")
    assert [u["username"] for u in r.json["users"]] == ["kim"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("user", "add", "kim", "--role", "surgeon"), "role"),
        (("user", "add", "Kim!", "--role", "nurse"), "username"),
        (("user", "passwd", "nobody"), "username"),
        (("user", "disable", "nobody"), "username"),
        (("serve", "--port", "70000"), "--port"),
    ],
)
def test_cli_user_bad_input_is_one_line_exit_2(
    cli: Any, tmp_path: Any, args: tuple[str, ...], needle: str
) -> None:
    r = cli(*args, "--db", str(tmp_path / "x.sqlite"))
    assert r.code == 2
    assert r.stderr.startswith("error: ") and needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_serve_starts_uvicorn_with_demo_accounts(
    cli: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from immunoplan.cli.web import DEMO_ACCOUNTS
    from immunoplan.registry.users import open_storage

    started: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.update(app=app, **kw))
    db = str(tmp_path / "serve.sqlite")
    r = cli("serve", "--db", db, "--port", "8123", "--demo-accounts")
    assert r.code == 0, r.stderr
    assert started["host"] == "127.0.0.1" and started["port"] == 8123
    assert "demo-nurse" in r.stderr and "http://127.0.0.1:8123/" in r.stderr
    registry, users = open_storage(db)
    try:
        assert {u.username for u in users.list()} == {name for name, _ in DEMO_ACCOUNTS.values()}
    finally:
        registry.dispose()


def test_rate_limiter_forgets_expired_keys() -> None:
    from immunoplan.web.security import LoginRateLimiter

    now = [0.0]
    limiter = LoginRateLimiter(max_failures=2, window_s=10, clock=lambda: now[0])
    limiter.MAX_KEYS = 5
    for i in range(6):
        limiter.failure(f"user:{i}")
    now[0] = 100.0  # all expired
    limiter.failure("user:new")
    assert set(limiter._failures) == {"user:new"}
    assert not limiter.blocked("user:0")


def test_audit_trail_never_holds_a_password_hash(app: Any) -> None:
    from sqlalchemy import select

    from immunoplan.registry.models import AuditEntry

    ctx = app.state.ctx
    user = auth.add_user(ctx.users, ctx.passwords, "hashcheck", "long enough password", "nurse", "admin1")
    auth.change_password(ctx.users, ctx.passwords, "hashcheck", "another long password", "admin1")
    new_hash = ctx.users.get("hashcheck").password_hash
    with ctx.registry.session() as s:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.table_name == "users")).all()
    text = repr([(r.before, r.after) for r in rows])
    assert user.password_hash not in text and new_hash not in text and "$argon2" not in text
    mine = [r for r in rows if r.row_id == user.id]
    assert [(r.action, r.actor) for r in mine] == [("insert", "admin1"), ("update", "admin1")]
    assert mine[1].after == {"password_hash": "(changed)"}
