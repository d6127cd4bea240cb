"""Options and helpers shared by every command that reads or writes the registry: ``--db``/``--url`` (default
the settings: IMMUNOPLAN_DB / IMMUNOPLAN_DATABASE_URL), ``--by USER`` (the actor in the audit trail),
``--idempotency-key`` and ``--json``."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from immunoplan.cli.output import JSON_OPTION_HELP
from immunoplan.errors import InvalidInput

if TYPE_CHECKING:
    from immunoplan.registry.db import Registry

DB_OPT = typer.Option(None, "--db", help="SQLite registry file (default: IMMUNOPLAN_DB).")
URL_OPT = typer.Option(None, "--url", help="Database URL (postgresql+psycopg://... or sqlite:///...).")
JSON_OPT = typer.Option(False, "--json", help=JSON_OPTION_HELP)
BY_OPT = typer.Option(None, "--by", help="Who does it (the actor in the audit trail); default cli:<login>.")
IDEMPOTENCY_OPT = typer.Option(
    None,
    "--idempotency-key",
    help="A key for this write: repeating the command with the same key writes nothing twice.",
)


def target(db: Path | None, url: str | None) -> str | Path | None:
    """The registry chosen by ``--db``/``--url`` (None: the settings)."""
    if db is not None and url is not None:
        raise InvalidInput("--db", "give either --db or --url, not both")
    if url is not None and "://" not in url:
        raise InvalidInput(
            "--url", f"not a database URL: {url!r}", "sqlite:///PATH or postgresql+psycopg://..."
        )
    return url if url is not None else db


def default_actor(actor: str | None) -> str:
    """``--by`` as given, else ``cli:<login name>``."""
    if actor and actor.strip():
        return actor.strip()
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # pragma: no cover - containers without a login name
        return "cli"


@contextmanager
def opened(db: Path | None, url: str | None = None) -> Iterator[Registry]:
    """The registry chosen by ``--db``/``--url``, disposed of when the block ends."""
    from immunoplan.registry.db import open_registry

    reg = open_registry(target(db, url))
    try:
        yield reg
    finally:
        reg.dispose()
