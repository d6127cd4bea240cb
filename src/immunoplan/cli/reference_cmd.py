"""CLI commands: ``immunoplan reference list|show`` — the versioned reference data behind every answer."""

from __future__ import annotations

import typer
from rich.table import Table

from immunoplan import reference
from immunoplan.cli.output import JSON_OPTION_HELP, console, emit
from immunoplan.errors import InvalidInput, ReferenceDataError

ref_app = typer.Typer(
    help="The versioned reference data (tables, rules, coefficients) with source and status."
)


def catalogue() -> list[dict[str, str]]:
    """One row per shipped reference file: name, id, version, status, title, source."""
    rows = []
    for name in reference.available():
        d = reference.load(name)
        rows.append(
            {
                "name": name,
                "id": d["id"],
                "version": d["version"],
                "status": d["status"],
                "title": d["title"],
                "source": d["source"],
            }
        )
    return rows


@ref_app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """List every reference file with its version and status."""
    rows = catalogue()

    def render(_: object) -> None:
        t = Table(title="immunoplan reference data")
        for col in ("name", "version", "status", "title"):
            t.add_column(col)
        for r in rows:
            style = "red" if r["status"] == "UNVERIFIED" else None
            t.add_row(r["name"], r["version"], r["status"], r["title"], style=style)
        console.print(t)

    emit({"reference": rows}, as_json, render)


@ref_app.command("show")
def show_cmd(
    name: str = typer.Argument(..., help="Reference file name, as printed by 'immunoplan reference list'."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Print one reference file in full (every number with its source and status)."""
    if name not in reference.available():
        raise InvalidInput("name", f"no reference file {name!r}", ", ".join(reference.available()))
    try:
        data = reference.load(name)
    except ReferenceDataError as exc:  # pragma: no cover - packaging defect
        raise InvalidInput("name", str(exc)) from None
    emit(data, as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(ref_app, name="reference")
