"""``immunoplan scit schedule|next-dose``: subcutaneous allergen immunotherapy (`services.protocols`)."""

from __future__ import annotations

from typing import Any

import typer

from immunoplan.cli.output import JSON_OPTION_HELP, console, emit, print_warnings, to_jsonable
from immunoplan.cli.protocol_helpers import (
    print_basis_and_warnings,
    read_json,
    table,
    write_sheet_file,
)
from immunoplan.services import protocols as svc
from immunoplan.sheets.render import num

scit_app = typer.Typer(
    help="Subcutaneous allergen immunotherapy: schedules and next dose.", no_args_is_help=True
)


def _render_scit_schedule(result: Any) -> None:
    d = to_jsonable(result)
    console.print(f"[bold]{d['product_name']} - {d['regimen_name']} ({d['kind']})[/bold]")
    rows = []
    for v in d["visits"]:
        for i in v["injections"]:
            rows.append(
                [
                    v["visit"],
                    v["date"],
                    v["week"] if v["week"] is not None else "",
                    v["phase"][:5],
                    i["vial"],
                    i["volume_ml"],
                    num(i["dose"]) + ("*" if i.get("status") else ""),
                    i["clock"] or f"+{i['offset_minutes']}m",
                ]
            )
    unit = d["visits"][0]["injections"][0]["unit"] if d["visits"] else ""
    console.print(
        table(
            "Visits (* = row not VERIFIED)", ["#", "date", "week", "phase", "vial", "mL", unit, "time"], rows
        )
    )
    om = d.get("omalizumab")
    if om and om["administrations"]:
        console.print(
            table(
                f"Omalizumab ({om['mode']})",
                ["n", "date", "dose_mg", "same day as SCIT"],
                [[a["n"], a["date"], a["dose_mg"], a["same_day_as_scit"]] for a in om["administrations"]],
            )
        )
    console.print(f"observe at least {d['observation_minutes']} min after each injection")
    print_basis_and_warnings(d)


def _render_next_dose(result: Any) -> None:
    d = to_jsonable(result)
    if d["kind"] == "dose":
        x = d["dose"]
        console.print(
            f"[bold]{d['date']}: give {num(x['dose'])} {x['unit']} = vial {x['vial']}, "
            f"{num(x['volume_ml'], 3)} mL[/bold] ({d['phase']}; next due {d['next_due']})"
        )
    else:
        console.print(f"[bold red]{d['kind']}[/bold red] on {d['date']}")
    if len(d.get("visit_injections") or []) > 1:
        console.print(
            "injections today: "
            + ", ".join(
                f"{num(x['dose'])} {x['unit']} (vial {x['vial']}, {num(x['volume_ml'], 3)} mL)"
                for x in d["visit_injections"]
            )
        )
    if d["rule"]:
        r = d["rule"]
        console.print(f"rule: {r['id']} [{r['basis']['status']}] {r['text']}\nsource: {r['basis']['source']}")
    console.print(
        table(
            "Rules evaluated",
            ["rule", "fired", "dose", "status"],
            [
                [r["id"], r["fired"], r["dose"] if r["dose"] is not None else "-", r["basis"]["status"]]
                for r in d["rules"]
            ],
        )
    )
    print_warnings(d["warnings"])


@scit_app.command("schedule")
def scit_schedule(
    product: str = typer.Option("alutard-sq-hdm", "--product", help="Product id (catalogue)."),
    regimen: str = typer.Option(..., "--regimen", help="conventional, cluster or rush."),
    start: str = typer.Option(..., "--start", help="First visit date YYYY-MM-DD."),
    start_time: str | None = typer.Option(None, "--start-time", help="Clock time of the first injection."),
    maintenance_interval_weeks: str | None = typer.Option(None, "--maintenance-interval-weeks"),
    maintenance_visits: str = typer.Option("3", "--maintenance-visits", help="Maintenance visits to list."),
    sheet: str | None = typer.Option(
        None, "--sheet", help="Write an injection record sheet (.pdf or .html)."
    ),
    page_size: str = typer.Option("A4", "--page-size", help="A4 or Letter."),
    omalizumab: str | None = typer.Option(None, "--omalizumab", help="pre or concurrent."),
    omalizumab_lead_weeks: str | None = typer.Option(
        None, "--omalizumab-lead-weeks", help="Weeks of omalizumab before SCIT (pre)."
    ),
    age_years: str | None = typer.Option(None, "--age-years"),
    weight_kg: str | None = typer.Option(None, "--weight-kg"),
    total_ige_iu_ml: str | None = typer.Option(None, "--total-ige-iu-ml"),
    indication: str = typer.Option("asthma", "--indication"),
    region: str = typer.Option("us", "--region"),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Dated SCIT visits (build-up and maintenance), optionally with omalizumab in the same calendar."""
    result = svc.plan_scit_schedule(
        product=product,
        regimen=regimen,
        start=start,
        start_time=start_time,
        maintenance_interval_weeks=maintenance_interval_weeks,
        maintenance_visits=maintenance_visits,
        omalizumab=omalizumab,
        omalizumab_lead_weeks=omalizumab_lead_weeks,
        age_years=age_years,
        weight_kg=weight_kg,
        total_ige_iu_ml=total_ige_iu_ml,
        indication=indication,
        region=region,
    )
    if sheet:
        write_sheet_file(sheet, "scit", result.to_dict(), page_size, as_json)
    emit(result, as_json, _render_scit_schedule)


@scit_app.command("next-dose")
def scit_next_dose(
    history: str = typer.Option(..., "--history", help="Course history JSON file."),
    on: str = typer.Option(..., "--date", help="Date of the planned injection YYYY-MM-DD."),
    ruleset: str | None = typer.Option(None, "--ruleset", help="norway (default) or aaaai."),
    new_vial: bool = typer.Option(False, "--new-vial", help="First dose from a new vial/lot."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Next SCIT dose from the history: dose, the rule that fired and its source."""
    data = read_json("history", history)
    emit(svc.scit_next_dose(data, on, ruleset=ruleset, new_vial=new_vial), as_json, _render_next_dose)


def register(app: typer.Typer) -> None:
    """Add the ``scit`` group to the root app."""
    app.add_typer(scit_app, name="scit")
