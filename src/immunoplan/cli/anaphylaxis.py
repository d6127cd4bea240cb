"""``immunoplan adrenaline-dose``: IM adrenaline 1 mg/mL for anaphylaxis by weight (clinical.anaphylaxis)."""

from __future__ import annotations

from typing import Any

import typer

from immunoplan.cli.output import JSON_OPTION_HELP, console, emit, print_warnings
from immunoplan.clinical.anaphylaxis import adrenaline_dose
from immunoplan.reference import limits


def _render(result: Any) -> None:
    d = result.to_dict()
    console.print(
        f"[bold]Adrenaline 1 mg/mL IM: {d['im_dose_mg']} mg = {d['volume_ml']} mL[/bold] "
        f"({d['mg_per_kg']} mg/kg x {d['weight_kg']} kg, maximum {d['cap_mg']} mg)"
    )
    ai = d["autoinjector_mg"]
    console.print(f"auto-injector: {ai + ' mg' if ai else 'none'} - {d['autoinjector_reason']}")
    for b in d["basis"]:
        console.print(f"[dim]{b['rule']}: {b['status']} - {b['source']}[/dim]")
    print_warnings(d["warnings"])


def adrenaline_dose_cmd(
    weight_kg: str = typer.Option(
        ..., "--weight-kg", help=limits.limit("weight_kg").help("Body weight (kg).")
    ),
    age_years: str | None = typer.Option(
        None,
        "--age-years",
        help=limits.limit("age_years").help("Age in years (optional; under 12: child cap)."),
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """IM adrenaline (epinephrine) 1 mg/mL for anaphylaxis: mg/kg with its cap, volume, auto-injector."""
    result = adrenaline_dose(weight_kg, age_years)
    emit(result.to_dict() if as_json else result, as_json, _render)


def register(app: typer.Typer) -> None:
    """Add ``adrenaline-dose`` to the root app."""
    app.command("adrenaline-dose")(adrenaline_dose_cmd)
