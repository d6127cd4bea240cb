"""Helpers shared by the protocol commands (`desensitization`, `scit`, `oit`, `grade`,
`desensitization-session`): JSON input files, Rich tables, basis lines, record sheets, and the options of a
desensitization plan."""

from __future__ import annotations

import inspect
from typing import Any

import typer
from rich.table import Table

from immunoplan.cli.option_groups import option, option_group
from immunoplan.cli.output import console, err_console, print_warnings
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


def _text(name: str, flag: str, help: str, *, required: bool = False) -> inspect.Parameter:
    """A text option of a group (the service converts and checks the value)."""
    if required:
        return option(name, str, typer.Option(..., flag, help=help))
    return option(name, str | None, typer.Option(None, flag, help=help))


# The inputs of a desensitization plan, named as `services.protocols.plan_desensitization` and
# `services.records.desensitization.SessionStartIn` take them: `immunoplan desensitization` plans with them,
# `immunoplan desensitization-session start` plans and opens a session with them.
BAGS_HELP = (
    "Number of bags: 3 (12-step, VERIFIED) or 4 (16-step, UNVERIFIED rates); 1-2 are UNVERIFIED placeholders."
)
RATES_HELP = "Custom rate table in mL/h, bags separated by |, e.g. '2,5,10,20|5,10,20,40|10,20,40,80'."
RDD_PLAN_OPTIONS = (
    _text("drug", "--drug", "Drug name (printed on the sheets).", required=True),
    _text("dose_mg", "--dose-mg", "Target dose in mg.", required=True),
    _text("bag_volume_ml", "--bag-volume-ml", "Final bag volume in mL.", required=True),
    _text("final_rate_ml_h", "--final-rate-ml-h", "Final infusion rate in mL/h.", required=True),
    option("bags", int, typer.Option(3, "--bags", help=BAGS_HELP)),
    _text(
        "dilution_bag_volume_ml",
        "--dilution-bag-volume-ml",
        "Volume of each dilution bag (default: bag volume).",
    ),
    _text("step_minutes", "--step-minutes", "Minutes per step (default 15)."),
    option(
        "first_rate_variant",
        bool,
        typer.Option(
            False, "--first-rate-2-5", help="Start bag 1 at 2.5 (x R/80) mL/h (Tsao 2022, SECONDARY)."
        ),
    ),
    _text("rates", "--rates", RATES_HELP),
    _text("start", "--start", "Start time HH:MM (or YYYY-MM-DDTHH:MM; clinic time)."),
    _text(
        "stock_mg_ml", "--stock-mg-ml", "Stock concentration (mg/mL): adds measurable preparation volumes."
    ),
    _text("premedication_regimen", "--premedication", "Premedication regimen id."),
    option(
        "initial_symptoms",
        list[str],
        typer.Option(
            [], "--initial-symptom", help="Symptom of the initial reaction (flushing, respiratory)."
        ),
    ),
    _text("override_reason", "--override-unverified", "Reason for using UNVERIFIED rules (recorded)."),
    _text(
        "dose_confirmation",
        "--confirm-dose",
        "Reason for a target outside the drug's usual dose range (recorded; else such a target is refused).",
    ),
    _text(
        "weight_kg", "--weight-kg", "Weight (kg) for the usual-dose check per m2 (session: default latest)."
    ),
    _text(
        "height_cm",
        "--height-cm",
        "Height (cm) for the usual-dose check per m2 (session: default the patient's).",
    ),
)
rdd_plan_options = option_group("plan", RDD_PLAN_OPTIONS, dict)
"""Decorator: the desensitization plan options for a command's ``plan: dict[str, Any]`` parameter."""

# Options of a breakthrough re-plan, the same for the planner and the session.
STEPS_BACK_OPT = typer.Option(1, "--steps-back", help="Resume 1 or 2 steps back (mild reactions).")
CHOOSE_OPT = typer.Option(None, "--choose", help="Clinician's chosen option id (recorded).")
