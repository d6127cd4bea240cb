"""CLI commands for the registry: ``db init|migrate|backup|restore|info``, ``demo``, ``import``, ``export``
(``due`` is in `immunoplan.cli.front_desk`). Each takes ``--db PATH`` or ``--url URL`` (default: the
settings, IMMUNOPLAN_DB / IMMUNOPLAN_DATABASE_URL) and ``--json``; those that write take ``--by USER``
(``--actor`` also accepted). The options and the registry opening are `immunoplan.cli.registry_options`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from immunoplan.cli.output import console, emit
from immunoplan.cli.registry_options import (
    BY_OR_ACTOR_OPT,
    DB_OPT,
    JSON_OPT,
    URL_OPT,
    default_actor,
    opened,
    target,
)
from immunoplan.errors import InvalidInput

if TYPE_CHECKING:
    from rich.console import Console

db_app = typer.Typer(help="Create, migrate, back up and restore the registry database.", no_args_is_help=True)
export_app = typer.Typer(
    help="Export the registry: CSV/XLSX tables, de-identified research set, FHIR R4.", no_args_is_help=True
)


def _print_table(
    title: str,
    columns: Iterable[str],
    rows: Iterable[Iterable[Any]],
    *,
    right: tuple[str, ...] = (),
    out: Console | None = None,
) -> None:
    """Print a Rich table (cells as text; the ``right`` columns right-aligned)."""
    t = Table(title=title)
    for col in columns:
        t.add_column(col, justify="right" if col in right else "left")
    for row in rows:
        t.add_row(*(str(x) for x in row))
    (out or console).print(t)


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
    from immunoplan.registry.db import current_revision

    with opened(db, url) as reg:
        result = {"url": _safe_url(reg.url), "dialect": reg.dialect, "revision": current_revision(reg.engine)}
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
    emit(
        {"url": _safe_url(str(engine.url)), "from_revision": before, "revision": after},
        as_json,
        _kv("migrated"),
    )


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
    actor: str = BY_OR_ACTOR_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Replace the registry with a verified backup, then migrate it to the newest schema."""
    from immunoplan.registry.backup import restore

    emit(restore(target(db, url), source, default_actor(actor)), as_json, _kv("registry restored"))


@db_app.command("info")
def db_info(db: Path = DB_OPT, url: str = URL_OPT, as_json: bool = JSON_OPT) -> None:
    """Row counts per table and patients per cohort/study group."""
    from immunoplan.registry.summary import registry_summary

    with opened(db, url) as reg:
        result = registry_summary(reg)
    emit(result, as_json, render_summary)


def render_summary(result: dict[str, Any]) -> None:
    _print_table("registry tables", ("table", "rows"), result["tables"].items(), right=("rows",))
    _print_table(
        "patients by cohort and study group",
        ("cohort", "study group", "patients"),
        ((row["cohort"], row["study_group"], row["patients"]) for row in result["groups"]),
    )


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def demo(
    db: Path = typer.Option(..., "--db", help="SQLite file to create (or a new, empty registry file)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same cohorts)."),
    patients: int = typer.Option(None, "--patients", help="Size of the seed-000 cohort (default 202)."),
    replace: bool = typer.Option(False, "--replace", help="Delete an existing file at --db first."),
    clinic: bool = typer.Option(
        True,
        "--clinic/--no-clinic",
        help="Also add 12 clinic patients with due and late injections (cohort 'clinic').",
    ),
    actor: str = BY_OR_ACTOR_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Create the two synthetic demo cohorts (seed 000: RIT vs RIT+Omb-pre; seed 001: SCIT vs Omb+SCIT)."""
    from immunoplan.cli.output import progress_bar
    from immunoplan.registry.db import open_registry
    from immunoplan.registry.summary import registry_summary
    from immunoplan.synthetic import create_demo

    if patients is not None and not 2 <= patients <= 10**6:
        raise InvalidInput("--patients", f"{patients} is outside the accepted range", "[2, 1000000]")
    if replace:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    reg = open_registry(db)
    try:
        with progress_bar(disable=as_json, counts=True) as bar:
            task = bar.add_task("demo cohorts", total=None)

            def tick(advance: int, total: int, what: str) -> None:
                bar.update(task, total=total, advance=advance, description=f"demo cohorts ({what})")

            result = create_demo(
                reg,
                seed=seed,
                patients=patients,
                actor=default_actor(actor) if actor else "demo",
                progress=tick,
                clinic=clinic,
            )
        result["registry"] = registry_summary(reg)
    finally:
        reg.dispose()
    result["db"] = str(db)

    def render(r: dict[str, Any]) -> None:
        console.print(
            f"[bold]demo registry[/bold] {r['db']} (seed {r['seed']}, {r['seconds']} s): "
            f"seed001 {r['cohorts']['seed001']} patients, seed000 {r['cohorts']['seed000']} patients"
        )
        render_summary(r["registry"])

    emit(result, as_json, render)


def import_cmd(
    file: Path = typer.Argument(..., help="CSV file (one table) or XLSX workbook (one sheet per table)."),
    table: str = typer.Option(
        None,
        "--table",
        help="patients, visits, measurements, questionnaires, courses or injections "
        "(default: the CSV file name or the XLSX sheet names).",
    ),
    db: Path = DB_OPT,
    url: str = URL_OPT,
    actor: str = BY_OR_ACTOR_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Import a CSV/XLSX file atomically (docs/data-dictionary.md); re-importing never duplicates rows."""
    import sys

    from immunoplan.cli.output import dumps, err_console
    from immunoplan.registry.importing import ImportRejected, import_file

    with opened(db, url) as reg:
        try:
            report = import_file(reg, file, default_actor(actor), table=table)
        except ImportRejected as exc:
            errors = [e.to_dict() for e in exc.errors]
            if as_json:
                print(dumps({"file": str(file), "status": "rejected", "errors": errors}))
            else:
                columns = ("table", "row", "column", "reason")
                _print_table(
                    f"{len(errors)} problem(s) in {file.name}: nothing imported",
                    columns,
                    ([e[k] for k in columns] for e in errors),
                    out=err_console,
                )
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from None

    def render(r: dict[str, Any]) -> None:
        _print_table(
            f"imported {r['file']}",
            ("table", "inserted", "updated", "unchanged"),
            ((name, c["inserted"], c["updated"], c["unchanged"]) for name, c in r["tables"].items()),
        )

    emit(report, as_json, render)


@export_app.command("tables")
def export_tables_cmd(
    out: Path = typer.Option(..., "--out", help="Folder for CSV files, or the .xlsx workbook to write."),
    fmt: str = typer.Option("csv", "--format", help="csv or xlsx."),
    table: list[str] = typer.Option(None, "--table", help="Only these tables (repeatable)."),
    db: Path = DB_OPT,
    url: str = URL_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Export registry tables (all but users) as CSV files or one XLSX workbook."""
    from immunoplan.registry.exporting import export_tables

    with opened(db, url) as reg:
        result = export_tables(reg, out, fmt, list(table) if table else None)
    emit(result, as_json, _rows_table("exported"))


@export_app.command("research")
def export_research_cmd(
    out: Path = typer.Option(..., "--out", help="Folder for the de-identified CSV files."),
    db: Path = DB_OPT,
    url: str = URL_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """De-identified research export: no names, birth dates or ids; dates shifted per patient; ages capped."""
    from immunoplan.registry.exporting import export_research

    with opened(db, url) as reg:
        result = export_research(reg, out)
    result["rows"] = result.pop("tables")
    emit(result, as_json, _rows_table("de-identified export"))


@export_app.command("fhir")
def export_fhir_cmd(
    out: Path = typer.Option(..., "--out", help="Bundle JSON file to write."),
    patient: list[str] = typer.Option(None, "--patient", help="Only these pseudo_ids (repeatable)."),
    db: Path = DB_OPT,
    url: str = URL_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """FHIR R4 collection Bundle (Patient, Observation, AllergyIntolerance, Procedure,
    MedicationAdministration, AdverseEvent), validated with fhir.resources."""
    import json

    from immunoplan.registry.fhir import export_bundle

    with opened(db, url) as reg:
        bundle = export_bundle(reg, pseudo_ids=list(patient) if patient else None)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(bundle, indent=1))
    counts: dict[str, int] = {}
    for e in bundle["entry"]:
        counts[e["resource"]["resourceType"]] = counts.get(e["resource"]["resourceType"], 0) + 1
    emit({"out": str(out), "rows": counts, "valid": True}, as_json, _rows_table("FHIR bundle written"))


def import_fhir_cmd(
    file: Path = typer.Argument(..., help="FHIR R4 Bundle JSON made by `export fhir`."),
    db: Path = DB_OPT,
    url: str = URL_OPT,
    actor: str = BY_OR_ACTOR_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Load a FHIR R4 Bundle into the registry (one transaction)."""
    import json

    from immunoplan.registry.fhir import import_bundle

    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput("file", f"cannot read a JSON bundle: {exc}") from None
    with opened(db, url) as reg:
        counts = import_bundle(reg, data, default_actor(actor))
    emit({"file": str(file), "rows": counts}, as_json, _rows_table("FHIR bundle imported"))


def _rows_table(title: str) -> Any:
    def render(r: dict[str, Any]) -> None:
        _print_table(
            f"{title}: {r.get('out') or r.get('file')}",
            ("table / resource", "rows"),
            r["rows"].items(),
            right=("rows",),
        )

    return render


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(db_app, name="db")
    app.command("demo")(demo)
    app.command("import")(import_cmd)
    app.command("import-fhir")(import_fhir_cmd)
    app.add_typer(export_app, name="export")
