"""Options and helpers shared by every command that reads or writes the registry: ``--db``/``--url`` (default
the settings: IMMUNOPLAN_DB / IMMUNOPLAN_DATABASE_URL), ``--by USER`` (the actor in the audit trail),
``--idempotency-key`` and ``--json``; the registry id options (``--patient``, ``--course``, ...); and the one
body of a recording command: parse, call one service use case, print one JSON object or Rich text.

A recording command declares only its own options and takes a `RegistryCall`::

    @app.command("record")
    @writes  # --db, --url, --by, --idempotency-key, --json, where ``call`` stands
    def record(course: int = COURSE_OPT, ..., *, call: RegistryCall) -> None:
        data = validated(injections.InjectionIn, course_id=course, ...)
        call.emit(call.write(injections.record, data), _render)

Refusals are `InvalidInput`/`Conflict` from the CLI or the service: `immunoplan.cli.main` prints one stderr
line and exits 2.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from immunoplan.cli.option_groups import option, option_group
from immunoplan.cli.output import JSON_OPTION_HELP, emit, to_jsonable
from immunoplan.errors import InvalidInput

if TYPE_CHECKING:
    from pydantic import BaseModel

    from immunoplan.registry.db import Registry

M = TypeVar("M", bound="BaseModel")

BY_HELP = "Who does it (the actor in the audit trail); default cli:<login>."

DB_OPT = typer.Option(None, "--db", help="SQLite registry file (default: IMMUNOPLAN_DB).")
URL_OPT = typer.Option(None, "--url", help="Database URL (postgresql+psycopg://... or sqlite:///...).")
JSON_OPT = typer.Option(False, "--json", help=JSON_OPTION_HELP)
BY_OPT = typer.Option(None, "--by", help=BY_HELP)
# The registry administration commands (db restore, demo, import) took --actor before --by was the CLI
# contract (issue 10): both names are accepted there.
BY_OR_ACTOR_OPT = typer.Option(None, "--by", "--actor", help=BY_HELP)
IDEMPOTENCY_OPT = typer.Option(
    None,
    "--idempotency-key",
    help="A key for this write: repeating the command with the same key writes nothing twice.",
)

# Registry ids as the service input models accept them (InjectionIn.course_id, CorrectionIn.record_id:
# 1 to 2**31 - 1); a larger number would reach the database driver and fail there with a traceback.
ID_MAX = 2**31 - 1


def parse_registry_id(text: str) -> int:
    """``--patient``/``--course``/... text as a registry id: a whole number in [1, `ID_MAX`] (a `ValueError`
    becomes one stderr line naming the option, exit 2)."""
    value = str(text).strip()
    accepted = f"(accepted: a whole number in [1, {ID_MAX}])"
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"not a registry id: {value[:40]!r} {accepted}") from None
    if not 1 <= number <= ID_MAX:
        raise ValueError(f"{value[:40]} is not a registry id {accepted}")
    return number


def id_option(flag: str, help: str, *, required: bool = True) -> Any:
    """A registry id option (``--patient``, ``--course``, ``--session``, ``--id``), parsed by
    `parse_registry_id`."""
    return typer.Option(... if required else None, flag, help=help, parser=parse_registry_id)


PATIENT_OPT = id_option("--patient", "Patient id (as printed by `patient add`).")
COURSE_OPT = id_option("--course", "Course id.")
GIVEN_AT_OPT = typer.Option(
    ..., "--given-at", help="When it was given: YYYY-MM-DDTHH:MM, clinic time (or with an offset)."
)


def not_blank(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    """Callback of a required text option: empty text is refused (the input models read empty text as "not
    given": ``patient add --mrn ""`` stored a patient without an MRN)."""
    if value is not None and not value.strip():
        flag = param.opts[0] if param.opts else str(param.name)
        raise InvalidInput(flag, "is empty", "a value (this option is required)")
    return value


def given(**fields: Any) -> dict[str, Any]:
    """The fields that were given: options left out (None) and empty repeatable options ([]) are dropped,
    so the input model applies its defaults."""
    return {k: v for k, v in fields.items() if v is not None and v != []}


def validated(model: type[M], **fields: Any) -> M:
    """``model`` built from the given ``fields`` (`immunoplan.services.inputs.validate`: the first bad field
    is an `InvalidInput` naming it and its accepted range)."""
    from immunoplan.services.inputs import validate

    return validate(model, given(**fields))


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


@dataclass(frozen=True)
class RegistryCall:
    """The shared options of one command run: which registry, who acts, the idempotency key, ``--json``."""

    db: Path | None = None
    url: str | None = None
    actor: str | None = None
    idempotency_key: str | None = None
    as_json: bool = False

    @property
    def by(self) -> str:
        """The actor recorded in the audit trail (`default_actor`)."""
        return default_actor(self.actor)

    def registry(self) -> AbstractContextManager[Registry]:
        """``with call.registry() as reg:`` the chosen registry, disposed of when the block ends."""
        return opened(self.db, self.url)

    def write(self, use_case: Callable[..., Any], *args: Any) -> Any:
        """One write use case: ``use_case(reg, actor, *args, idempotency_key=key)``."""
        with self.registry() as reg:
            return use_case(reg, self.by, *args, idempotency_key=self.idempotency_key)

    def read(self, query: Callable[..., Any], *args: Any) -> Any:
        """One read: ``query(reg, *args)``."""
        with self.registry() as reg:
            return query(reg, *args)

    def emit(self, result: Any, render: Callable[[Any], None] | None = None) -> None:
        """Print ``result`` as one JSON object with ``--json``, else through ``render`` (Rich)."""
        emit(to_jsonable(result), self.as_json, render)


_READ_OPTIONS = (
    option("db", Path, DB_OPT),
    option("url", str, URL_OPT),
    option("as_json", bool, JSON_OPT),
)
_WRITE_OPTIONS = (
    option("db", Path, DB_OPT),
    option("url", str, URL_OPT),
    option("actor", str, BY_OPT),
    option("idempotency_key", str, IDEMPOTENCY_OPT),
    option("as_json", bool, JSON_OPT),
)
reads = option_group("call", _READ_OPTIONS, RegistryCall)
"""Decorator: ``--db``, ``--url``, ``--json`` for a command's ``call: RegistryCall`` parameter."""
writes = option_group("call", _WRITE_OPTIONS, RegistryCall)
"""Decorator: ``--db``, ``--url``, ``--by``, ``--idempotency-key``, ``--json`` for a command's
``call: RegistryCall`` parameter."""
