"""CLI commands: ``immunoplan serve`` (the web app) and ``immunoplan user add|passwd|disable|enable|list``."""

from __future__ import annotations

import getpass
import sys

import typer
from rich.table import Table

from immunoplan.cli.output import JSON_OPTION_HELP, console, emit, err_console
from immunoplan.errors import InvalidInput
from immunoplan.services import auth
from immunoplan.validation import check_choice, check_range

user_app = typer.Typer(
    help="Manage web-app accounts (roles: admin, clinician, nurse, pharmacist, researcher)."
)

DB_HELP = "Registry database: SQLite path or SQLAlchemy URL."


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # pragma: no cover - no login name in some containers
        return "cli"


def _store(db: str) -> auth.UserStore:
    from immunoplan.registry.users import open_storage

    return open_storage(db)[1]


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = typer.prompt("New password", hide_input=True)
    second = typer.prompt("Repeat password", hide_input=True)
    if first != second:
        raise InvalidInput("password", "the two entries differ")
    return str(first)


def _show(user: auth.User, as_json: bool, action: str) -> None:
    def render(_: object) -> None:
        state = "disabled" if user.disabled else "enabled"
        console.print(f"{action}: [bold]{user.username}[/bold] ({user.role}, {state})")

    emit({"action": action, "user": user.to_dict()}, as_json, render)


PASSWORD_STDIN_HELP = "Read the password from the first line of stdin instead of prompting."
ACTOR_HELP = "Who makes the change (audit trail); default cli:<login name>."


@user_app.command("add")
def user_add(
    username: str = typer.Argument(..., help="Login name (lower-case letters, digits, . _ -)."),
    role: str = typer.Option(..., "--role", help="admin, clinician, nurse, pharmacist or researcher."),
    db: str = typer.Option(..., "--db", help=DB_HELP),
    password_stdin: bool = typer.Option(False, "--password-stdin", help=PASSWORD_STDIN_HELP),
    actor: str = typer.Option(None, "--actor", help=ACTOR_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Create an account."""
    auth.check_username(username)
    check_choice("role", role, auth.ROLES)
    password = _read_password(password_stdin)
    user = auth.add_user(_store(db), auth.Passwords(), username, password, role, actor or _default_actor())
    _show(user, as_json, "added")


@user_app.command("passwd")
def user_passwd(
    username: str = typer.Argument(...),
    db: str = typer.Option(..., "--db", help=DB_HELP),
    password_stdin: bool = typer.Option(False, "--password-stdin", help=PASSWORD_STDIN_HELP),
    actor: str = typer.Option(None, "--actor", help=ACTOR_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Set a new password (ends the user's open sessions)."""
    auth.check_username(username)
    store = _store(db)
    if store.get(username) is None:
        raise InvalidInput("username", f"no user {username!r}")
    password = _read_password(password_stdin)
    user = auth.change_password(store, auth.Passwords(), username, password, actor or _default_actor())
    _show(user, as_json, "password changed")


@user_app.command("disable")
def user_disable(
    username: str = typer.Argument(...),
    db: str = typer.Option(..., "--db", help=DB_HELP),
    actor: str = typer.Option(None, "--actor", help=ACTOR_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Disable an account (it can no longer log in; open sessions end)."""
    user = auth.set_disabled(_store(db), username, True, actor or _default_actor())
    _show(user, as_json, "disabled")


@user_app.command("enable")
def user_enable(
    username: str = typer.Argument(...),
    db: str = typer.Option(..., "--db", help=DB_HELP),
    actor: str = typer.Option(None, "--actor", help=ACTOR_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Re-enable a disabled account."""
    user = auth.set_disabled(_store(db), username, False, actor or _default_actor())
    _show(user, as_json, "enabled")


@user_app.command("list")
def user_list(
    db: str = typer.Option(..., "--db", help=DB_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """List accounts (never the password hashes)."""
    users = _store(db).list()

    def render(_: object) -> None:
        table = Table("user", "role", "state", "created")
        for u in users:
            table.add_row(
                u.username, u.role, "disabled" if u.disabled else "enabled", str(u.created_at or "")
            )
        console.print(table)

    emit({"users": [u.to_dict() for u in users]}, as_json, render)


#: Demo accounts created by ``serve --demo-accounts`` (publicly known passwords: demo databases only).
DEMO_ACCOUNTS = {role: (f"demo-{role}", f"demo-{role}-pass") for role in auth.ROLES}


def ensure_demo_accounts(store: auth.UserStore) -> list[tuple[str, str, str]]:
    """Create the demo accounts that do not exist yet; returns (role, user, password) for all of them."""
    pw = auth.Passwords()
    out = []
    for role, (name, password) in DEMO_ACCOUNTS.items():
        if store.get(name) is None:
            auth.add_user(store, pw, name, password, role, "demo-setup")
        out.append((role, name, password))
    return out


def serve(
    db: str = typer.Option(..., "--db", help=DB_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    demo_accounts: bool = typer.Option(
        False, "--demo-accounts", help="Create one demo account per role (known passwords: demo data only)."
    ),
) -> None:
    """Serve the web application (pages and the JSON API under /api) with uvicorn."""
    check_range("--port", port, 1, 65535)
    import uvicorn

    from immunoplan.web.app import create_app
    from immunoplan.web.settings import WebSettings

    app = create_app(WebSettings(db=db))
    if demo_accounts:
        table = Table("role", "user", "password", title="demo accounts (demo data only)")
        for row in ensure_demo_accounts(app.state.ctx.users):
            table.add_row(*row)
        err_console.print(table)
    elif not app.state.ctx.users.list():
        err_console.print("no accounts yet: create one with `immunoplan user add NAME --role admin --db ...`")
    err_console.print(f"immunoplan web app on http://{host}:{port}/ (database {db}); Ctrl+C stops it")
    uvicorn.run(app, host=host, port=port, log_level="info")


def register(app: typer.Typer) -> None:
    """Add ``serve`` and the ``user`` group to the root app."""
    app.command("serve")(serve)
    app.add_typer(user_app, name="user")
