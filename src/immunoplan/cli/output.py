"""Shared output helpers for CLI commands: one JSON object on stdout with --json, Rich otherwise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from immunoplan.jsonable import dumps, to_jsonable  # noqa: F401  (re-exported for commands)

console = Console()
err_console = Console(stderr=True)

JSON_OPTION_HELP = "Print one JSON object to stdout instead of a table."


def emit(result: Any, as_json: bool, render: Callable[[Any], None] | None = None) -> None:
    """Print ``result``: as one JSON object with ``as_json``, otherwise through ``render`` (Rich)."""
    if as_json:
        print(dumps(result))
    elif render is not None:
        render(result)
    else:
        console.print_json(dumps(result))


def print_warnings(warnings: list[str]) -> None:
    """One ``warning:`` line per warning of a result."""
    for w in warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")


def progress_bar(*, disable: bool = False, percent: bool = False, counts: bool = False) -> Progress:
    """The one Rich progress bar for long work: on stderr (stdout stays one JSON object), gone when done.

    ``percent`` adds a percentage column (fractional progress), ``counts`` an "M/N" column (items done).
    """
    columns: list[Any] = [TextColumn("[bold]{task.description}"), BarColumn()]
    if percent:
        columns.append(TaskProgressColumn())
    if counts:
        columns.append(MofNCompleteColumn())
    columns.append(TimeElapsedColumn())
    return Progress(*columns, console=err_console, transient=True, disable=disable)
