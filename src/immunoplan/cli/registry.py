"""CLI commands for the registry: ``db init|migrate|backup|restore|info``, ``demo``, ``import``, ``export``,
``due``. Each takes ``--db PATH`` or ``--url URL`` (default: the settings, IMMUNOPLAN_DB /
IMMUNOPLAN_DATABASE_URL) and ``--json``."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from immunoplan.cli.output import JSON_OPTION_HELP, console, emit
from immunoplan.errors import InvalidInput

db_app = typer.Typer(help="Create, migrate, back up and restore the registry database.", no_args_is_help=True)
export_app = typer.Typer(help="Export the registry: CSV/XLSX tables, de-identified research set, FHIR R4.",
                         no_args_is_help=True)

DB_OPT = typer.Option(None, "--db", help="SQLite registry file.")
URL_OPT = typer.Option(None, "--url", help="Database URL (postgresql+psycopg://... or sqlite:///...).")
JSON_OPT = typer.Option(False, "--json", help=JSON_OPTION_HELP)
ACTOR_OPT = typer.Option(None, "--actor", help="Who makes the change (audit trail); default cli:<login>.")


def target(db: Path | None, url: str | None) -> str | Path | None:
    """The registry chosen by ``--db``/``--url`` (None: the settings)."""
    if db is not None and url is not None:
        raise InvalidInput("--db", "give either --db or --url, not both")
    return url if url is not None else db


def default_actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # pragma: no cover - containers without a login name
        return "cli"


def _kv(title: str) -> Any:
    def render(result: dict[str, Any]) -> None:
        t = Table(title=title, show_header=False)
        for k, v in result.items():
            if not isinstance(v, (dict, list)):
                t.add_row(str(k), str(v))
        console.print(t)

    return render


@db_app.command("init")
def db_init(db: Path = DB_OPT, url: str = URL_OPT, as_json: bool = JSON_OPT) -> None:
    """Create the registry (if missing) and bring its schema to the newest revision."""
    from immunoplan.registry.db import current_revision, open_registry

    reg = open_registry(target(db, url))
    try:
        result = {"url": _safe_url(reg.url), "dialect": reg.dialect, "revision": current_revision(reg.engine)}
    finally:
        reg.dispose()
    emit(result, as_json, _kv("registry ready"))


@db_app.command("migrate")
def db_migrate(
    db: Path = DB_OPT,
    url: str = URL_OPT,
    revision: str = typer.Option("head", "--revision", help="Target revision (default: newest)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Apply pending migrations."""
    from immunoplan.registry.db import current_revision, make_engine, migrate, to_url

    engine = make_engine(to_url(target(db, url)))
    try:
        before = current_revision(engine)
        after = migrate(engine, revision)
    finally:
        engine.dispose()
    emit({"url": _safe_url(str(engine.url)), "from_revision": before, "revision": after}, as_json,
         _kv("migrated"))


@db_app.command("backup")
def db_backup(
    out: Path = typer.Option(..., "--out", help="Backup file to write."),
    db: Path = DB_OPT,
    url: str = URL_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Write a consistent copy (safe while the app is writing)."""
    from immunoplan.registry.backup import backup

    emit(backup(target(db, url), out), as_json, _kv("backup written"))


@db_app.command("restore")
def db_restore(
    source: Path = typer.Option(..., "--from", help="Backup file made by `db backup`."),
    db: Path = DB_OPT,
    url: str = URL_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Replace the registry with a verified backup, then migrate it to the newest schema."""
    from immunoplan.registry.backup import restore

    emit(restore(target(db, url), source), as_json, _kv("registry restored"))


@db_app.command("info")
def db_info(db: Path = DB_OPT, url: str = URL_OPT, as_json: bool = JSON_OPT) -> None:
    """Row counts per table and patients per cohort/study group."""
    from immunoplan.registry.db import open_registry
    from immunoplan.registry.summary import registry_summary

    reg = open_registry(target(db, url))
    try:
        result = registry_summary(reg)
    finally:
        reg.dispose()
    emit(result, as_json, render_summary)


def render_summary(result: dict[str, Any]) -> None:
    t = Table(title="registry tables")
    t.add_column("table")
    t.add_column("rows", justify="right")
    for name, n in result["tables"].items():
        t.add_row(name, str(n))
    console.print(t)
    g = Table(title="patients by cohort and study group")
    for col in ("cohort", "study group", "patients"):
        g.add_column(col)
    for row in result["groups"]:
        g.add_row(row["cohort"], str(row["study_group"]), str(row["patients"]))
    console.print(g)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(db_app, name="db")
