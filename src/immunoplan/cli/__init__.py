"""The ``immunoplan`` command line: thin Typer commands over the service layer.

Conventions (the CLI contract other tools rely on):
- every computing command accepts ``--json`` and then prints exactly one JSON object to stdout;
- exit code 0 on an answer (any clinical result kind), 2 on invalid input with one line on stderr that names
  the field and the accepted range, and never a traceback for a user error.

Each command group lives in its own module and registers itself through ``register(app)``.
"""

from __future__ import annotations

import sys

import typer

try:  # Typer >= 0.25 vendors its own copy of click
    from typer._click import exceptions as _cx
except ImportError:  # pragma: no cover - older Typer uses click itself
    from click import exceptions as _cx  # type: ignore[no-redef]

from immunoplan import __version__
from immunoplan.cli import (
    analysis,
    anaphylaxis,
    assess,
    assessment_record,
    course,
    desensitization,
    desensitization_course,
    desensitization_session,
    front_desk,
    grade,
    injection,
    oit,
    omalizumab,
    omalizumab_record,
    patient,
    reaction,
    reference_cmd,
    registry,
    scit,
    vial,
    visit,
    void,
    web,
)
from immunoplan.errors import Conflict, InvalidInput

app = typer.Typer(
    name="immunoplan",
    help=(
        "immunoplan: assess, plan, record and analyse allergen immunotherapy, rapid drug desensitization and "
        "omalizumab. Supports clinical decisions; does not make them."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"immunoplan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    """immunoplan command line."""


for _module in (
    assess,
    omalizumab,
    oit,
    scit,
    grade,
    desensitization,
    desensitization_session,
    desensitization_course,
    registry,
    patient,
    assessment_record,
    course,
    omalizumab_record,
    injection,
    reaction,
    visit,
    void,
    front_desk,
    analysis,
    web,
    reference_cmd,
    anaphylaxis,
    vial,
):
    _module.register(app)


def _one_line(exc: _cx.ClickException) -> str:
    # MissingParameter is a BadParameter with an empty message: test it first
    if isinstance(exc, _cx.MissingParameter) and exc.param is not None:
        name = exc.param.opts[0] if getattr(exc.param, "opts", None) else exc.param.name
        return f"{name}: missing (required)"
    if isinstance(exc, _cx.BadParameter) and exc.param is not None:
        name = exc.param.opts[0] if getattr(exc.param, "opts", None) else exc.param.name
        # a parser's ValueError reaches us through pydantic, which prefixes "Value error, "
        return f"{name}: {exc.message.removeprefix('Value error, ')}"
    return exc.format_message()


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the Typer app and turn user errors into one stderr line and exit code 2."""
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="immunoplan", standalone_mode=False)
    except (InvalidInput, Conflict) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except _cx.NoArgsIsHelpError as exc:
        print(exc.ctx.get_help() if exc.ctx else "")
        return 0
    except _cx.UsageError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except _cx.ClickException as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return exc.exit_code if exc.exit_code else 1
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 1
    return rv if isinstance(rv, int) else 0


def run() -> None:  # console script
    sys.exit(main())
