"""``immunoplan desensitization``: rapid drug desensitization plan, sheets and re-planning after a reaction
(`services.protocols`)."""

from __future__ import annotations

from typing import Any

import typer

from immunoplan.cli.output import JSON_OPTION_HELP, console, emit, print_warnings, to_jsonable
from immunoplan.cli.protocol_helpers import (
    CHOOSE_OPT,
    STEPS_BACK_OPT,
    columns,
    print_basis_and_warnings,
    rdd_plan_options,
    table,
    write_sheet_file,
)
from immunoplan.services import protocols as svc
from immunoplan.sheets.render import num

_BAG_COLUMNS = ("bag", "dilution", "volume_ml", "concentration_mg_ml", "mg_in_bag", "volume_infused_ml")
_STEP_COLUMNS = ("step", "bag", "rate_ml_h", "minutes", "volume_ml", "dose_mg", "cumulative_mg")


def _render_rdd(result: Any) -> None:
    d = to_jsonable(result)
    if d.get("kind") != "plan":
        console.print(f"[bold red]{d['kind']}: not for administration[/bold red]")
    console.print(f"[bold]{d['drug']} {num(d['target_mg'])} mg - {d['scheme']}[/bold]")
    console.print(
        table(
            "Bags",
            list(_BAG_COLUMNS),
            columns(d["bags"], _BAG_COLUMNS),
        )
    )
    console.print(
        table(
            "Steps",
            [*_STEP_COLUMNS, "start"],
            [
                [*row, s["start_clock"] or f"+{num(s['start_minute'], 1)} min"]
                for row, s in zip(columns(d["steps"], _STEP_COLUMNS), d["steps"], strict=True)
            ],
        )
    )
    console.print(
        f"total_minutes: {num(d['total_minutes'], 3)}"
        + (
            f"  (start {d['start_clock']}, end {d['end_clock']}, observe until {d['observe_until_clock']})"
            if d.get("start_clock")
            else ""
        )
    )
    prep = d.get("preparation")
    if prep:
        console.print(
            table(
                f"Preparation from stock {num(prep['stock_mg_ml'])} mg/mL (measurable volumes)",
                ["bag", "stock exact mL", "stock drawn mL", "dose error mg", "error %"],
                [
                    [
                        b["bag"],
                        b["drug_volume_exact_ml"],
                        b["drug_volume_measured_ml"],
                        b["dose_error_mg"],
                        b["dose_error_pct"] if b["dose_error_pct"] is not None else "-",
                    ]
                    for b in prep["bags"]
                ],
            )
        )
        console.print(
            f"dose with measured volumes: {num(prep['total_dose_prepared_mg'], 4)} mg "
            f"(error {num(prep['total_dose_error_mg'], 4)} mg, {num(prep['total_dose_error_pct'], 3)} %)"
        )
    rp = d.get("replan")
    if rp:
        console.print(f"[bold]Breakthrough reaction at step {rp['reaction_step']} ({rp['severity']})[/bold]")
        for o in rp["options"]:
            if o["applies"]:
                mark = (
                    "APPLIED"
                    if o["applied"]
                    else ("clinician choice" if o["clinician_choice_only"] else "option")
                )
                console.print(f"- [{mark}] {o['id']} [{o['basis']['status']}]: {o['text']}")
        res = rp.get("resumption")
        if res:
            console.print(
                table(
                    f"Resume at step {res['restart_at_step']} (minutes from resumption)",
                    ["#", *_STEP_COLUMNS[1:]],
                    columns(res["steps"], _STEP_COLUMNS),
                )
            )
            console.print(
                f"total dose {num(res['total_dose_mg'], 4)} mg; "
                f"over target {num(res['excess_over_target_mg'], 4)}"
                f" mg; feasible: {res['feasible']} {'; '.join(res['problems'])}"
            )
        print_warnings(rp.get("warnings", []))
    print_basis_and_warnings(d)


@rdd_plan_options
def desensitization(
    *,
    plan: dict[str, Any],
    reaction_step: int | None = typer.Option(
        None, "--reaction-step", help="Breakthrough reaction at this step."
    ),
    severity: str | None = typer.Option(
        None, "--severity", help="Reaction severity: mild, moderate, severe."
    ),
    minutes_into_step: str | None = typer.Option(
        None, "--minutes-into-step", help="Minutes into the reaction step when stopped."
    ),
    reaction_symptom: list[str] = typer.Option([], "--reaction-symptom", help="Symptom of the breakthrough."),
    steps_back: int = STEPS_BACK_OPT,
    choose: str | None = CHOOSE_OPT,
    sheet: str | None = typer.Option(
        None, "--sheet", help="Write pharmacy + nursing sheets (.pdf or .html)."
    ),
    page_size: str = typer.Option("A4", "--page-size", help="A4 or Letter."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Desensitization plan: bags, steps, clock times, preparation; re-plan after a reaction."""
    result = svc.plan_desensitization(**{**plan, "initial_symptoms": tuple(plan["initial_symptoms"])})
    out = result.to_dict()
    if reaction_step is not None or severity is not None:
        if reaction_step is None or severity is None:
            from immunoplan.errors import InvalidInput

            missing = "--reaction-step" if reaction_step is None else "--severity"
            raise InvalidInput(
                missing,
                "re-planning needs both --reaction-step and --severity",
                "--reaction-step N --severity mild|moderate|severe",
            )
        out["replan"] = svc.replan_desensitization(
            result,
            reaction_step=reaction_step,
            severity=severity,
            minutes_into_step=minutes_into_step,
            symptoms=tuple(reaction_symptom),
            steps_back=steps_back,
            chosen=choose,
        ).to_dict()
    if sheet:
        out["sheet"] = write_sheet_file(sheet, "rdd", out, page_size, as_json)
    emit(out, as_json, _render_rdd)


def register(app: typer.Typer) -> None:
    """Add ``desensitization`` to the root app."""
    app.command("desensitization")(desensitization)
