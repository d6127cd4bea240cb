"""Helpers shared by the protocol commands (`desensitization`, `scit`, `oit`, `grade`): JSON input files,
Rich tables, warnings and basis lines, record sheets."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from immunoplan.cli.output import console, err_console
from immunoplan.sheets.render import num


def read_json(field: str, path: str) -> Any:
    import json
    from pathlib import Path

    from immunoplan.errors import InvalidInput

    p = Path(path)
    if not p.is_file():
        raise InvalidInput(field, f"file {path!r} not found", "a JSON file")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            field, f"{path!r} is not valid JSON ({exc.__class__.__name__})", "a JSON file"
        ) from None


def table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(
            c, justify="right" if c not in ("dilution", "when", "text", "rule", "status") else "left"
        )
    for r in rows:
        t.add_row(
            *[num(x, 4) if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x) for x in r]
        )
    return t


def columns(items: list[dict[str, Any]], keys: tuple[str, ...]) -> list[list[Any]]:
    """Table rows: the values of ``keys`` from each item, in order."""
    return [[item[k] for k in keys] for item in items]


def print_warnings(warnings: list[str]) -> None:
    for w in warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")


def write_sheet_file(sheet: str, kind: str, data: dict[str, Any], page_size: str, as_json: bool) -> str:
    """Write the ``kind`` sheet(s) for ``data`` to ``sheet`` (.pdf or .html); say where unless ``--json``."""
    from immunoplan.sheets import write_sheet

    path = write_sheet(sheet, kind, data, page_size=page_size)
    if not as_json:
        err_console.print(f"sheet written: {path}")
    return str(path)


def print_basis_and_warnings(d: dict[str, Any]) -> None:
    for b in d.get("basis", []) or []:
        console.print(
            f"[dim]basis: {b['id']} v{b['version']} {b.get('rule') or ''} [{b['status']}] {b['source']}[/dim]"
        )
    print_warnings(d.get("warnings", []) or [])
