"""``immunoplan oit schedule``: oral immunotherapy up-dosing with omalizumab cover (`services.protocols`)."""

from __future__ import annotations

from typing import Any

import typer

from immunoplan.cli.output import JSON_OPTION_HELP, console, emit, to_jsonable
from immunoplan.cli.protocol_helpers import print_basis_and_warnings, table
from immunoplan.services import protocols as svc

oit_app = typer.Typer(help="Oral immunotherapy with omalizumab cover.", no_args_is_help=True)


def _render_oit(result: Any) -> None:
    d = to_jsonable(result)
    console.print(f"[bold]{d['name']}[/bold] ({d['kind']})")
    console.print(
        f"omalizumab from {d['omalizumab_start']}; OIT from {d['oit_start']}"
        + (f"; omalizumab stops {d['omalizumab_stop']}" if d["omalizumab_stop"] else "")
    )
    if d["omalizumab_phases"]:
        console.print(
            table(
                "Omalizumab",
                ["from", "to", "fraction", "mg/month", "text"],
                [
                    [
                        p["start"],
                        p["end"],
                        p["fraction"],
                        p["mg_per_month"] if p["mg_per_month"] is not None else "-",
                        p["text"],
                    ]
                    for p in d["omalizumab_phases"]
                ],
            )
        )
    console.print(
        table(
            f"Up-dosing ({d['unit']})",
            ["visit", "date", "week", "dose", "source", "omalizumab"],
            [
                [
                    v["visit"],
                    v["date"],
                    v["week"],
                    v["dose_mg"] if v["dose_mg"] is not None else "(set)",
                    v["dose_source"],
                    v["omalizumab_phase"] + (" !" if v["warning"] else ""),
                ]
                for v in d["visits"]
            ],
        )
    )
    print_basis_and_warnings(d)


@oit_app.command("schedule")
def oit_schedule(
    regimen: str = typer.Option(
        ...,
        "--regimen",
        help="brandstrom-peanut, langlois-multifood, andorf-multifood, macginnitie-peanut.",
    ),
    omalizumab_start: str = typer.Option(..., "--omalizumab-start", help="First omalizumab date YYYY-MM-DD."),
    doses_mg: str | None = typer.Option(
        None, "--doses", help="Up-dosing doses, comma-separated (mg protein)."
    ),
    weight_kg: str | None = typer.Option(None, "--weight-kg"),
    arm: str | None = typer.Option(None, "--arm-mg-per-kg-month", help="Langlois arm: 8 or 16 mg/kg/month."),
    pretreatment_weeks: str | None = typer.Option(None, "--pretreatment-weeks"),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """OIT up-dosing calendar with omalizumab start, taper and warnings."""
    result = svc.plan_oit(
        regimen=regimen,
        omalizumab_start=omalizumab_start,
        doses_mg=doses_mg,
        weight_kg=weight_kg,
        arm_mg_per_kg_month=arm,
        pretreatment_weeks=pretreatment_weeks,
    )
    emit(result, as_json, _render_oit)


def register(app: typer.Typer) -> None:
    """Add the ``oit`` group to the root app."""
    app.add_typer(oit_app, name="oit")
