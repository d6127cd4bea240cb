"""CLI commands: ``immunoplan omalizumab dose|schedule|simulate|nomogram``."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from immunoplan.cli.output import JSON_OPTION_HELP, console, emit
from immunoplan.services import omalizumab as svc

omalizumab_app = typer.Typer(
    help="Omalizumab: label dosing, treatment timelines, PK/PD simulation.", no_args_is_help=True
)


def _render_dose(r: Any) -> None:
    d = r.to_dict()
    t = Table(title=f"omalizumab label dose: {d['status']}")
    t.add_column("field")
    t.add_column("value")
    if d["dose_mg"] is not None:
        t.add_row("dose", f"{d['dose_mg']} mg every {d['interval_weeks']} weeks")
        t.add_row(
            "injections", " + ".join(f"{s} mg" for s in d["injections"]) + f" ({d['injection_sites']} sites)"
        )
    if d["cell"]:
        t.add_row("cell", f"IgE {d['cell']['ige_band']} IU/mL x weight {d['cell']['weight_band']} kg")
    if d["table"]:
        t.add_row("table", f"{d['table']['id']} v{d['table']['version']}")
    t.add_row("reason", d["reason"])
    if d["basis"]:
        t.add_row("status of data", d["basis"]["status"])
    if d["override"]:
        t.add_row("override", f"{d['override']['reason']} (applied: {d['override']['applied']})")
    for w in d["warnings"]:
        t.add_row("warning", w)
    console.print(t)


@omalizumab_app.command("dose")
def dose_cmd(
    indication: str = typer.Option(..., help="asthma, crswnp, food-allergy or csu."),
    region: str = typer.Option("us", help="us or eu."),
    age: float = typer.Option(..., "--age", help="Age in years."),
    weight_kg: float = typer.Option(..., help="Body weight (kg)."),
    total_ige: float = typer.Option(..., "--total-ige", help="Pre-treatment serum total IgE (IU/mL)."),
    override_unverified: str = typer.Option(
        None, help="Reason for showing a dose from an UNVERIFIED cell (recorded in the output)."
    ),
    csu_dose_mg: int = typer.Option(None, help="CSU only: 150 or 300 (US)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Label-table dose: dose, do-not-dose, outside-table or unverified-table (all exit 0)."""
    r = svc.label_dose(
        indication,
        region,
        age,
        weight_kg,
        total_ige,
        override_reason=override_unverified,
        csu_dose_mg=csu_dose_mg,
    )
    emit(r, as_json, _render_dose)


def register(app: typer.Typer) -> None:
    """Add the ``omalizumab`` command group to the root app."""
    app.add_typer(omalizumab_app, name="omalizumab")
