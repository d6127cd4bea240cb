"""``immunoplan grade``: grade a reaction from structured findings on one or all scales."""

from __future__ import annotations

from typing import Any

import typer

from immunoplan.cli.output import JSON_OPTION_HELP, console, emit, to_jsonable
from immunoplan.cli.protocol_helpers import table
from immunoplan.services import protocols as svc


def _render_grades(result: Any) -> None:
    d = to_jsonable(result)
    rows = [
        [
            g["scale"],
            g["grade"] if g["grade"] is not None else "-",
            g.get("suffix") or "",
            g["label"],
            g["basis"]["status"],
            g["scale_version"],
        ]
        for g in d["grades"]
    ]
    console.print(table("Reaction grade", ["scale", "grade", "suffix", "text", "status", "version"], rows))
    for g in d["grades"]:
        if g.get("report"):
            console.print(f"{g['scale']}: {g['report']}")
        for r in g["reasons"]:
            console.print(f"[dim]{g['scale']}: {r}[/dim]")
        for w in g["warnings"]:
            console.print(f"[yellow]warning ({g['scale']}):[/yellow] {w}")


def grade_cmd(
    scale: str = typer.Option(
        ...,
        "--scale",
        help="wao2010, wao2017, brown2004, ctcae-irr, ctcae-allergic, seed001, phenotype, or all.",
    ),
    symptom: list[str] = typer.Option(
        [],
        "--symptom",
        help="Symptom code (repeat): " + ", ".join(svc.choices()["symptoms"]) + ".",
    ),
    bronchodilator_response: str | None = typer.Option(
        None, "--bronchodilator-response", help="responds, not-responding, worsening."
    ),
    pef_drop_pct: str | None = typer.Option(None, "--pef-drop-pct", help="PEF/FEV1 drop in %."),
    epinephrine_minutes: str | None = typer.Option(
        None, "--epinephrine-minutes", help="Minutes from onset to epinephrine (omit: not given)."
    ),
    onset_minutes: str | None = typer.Option(
        None, "--onset-minutes", help="Onset after dose/injection (min)."
    ),
    first_symptom: str | None = typer.Option(None, "--first-symptom", help="First symptom code."),
    treatment: list[str] = typer.Option([], "--treatment", help="Treatment given (repeat)."),
    intervention: str | None = typer.Option(None, "--intervention", help="CTCAE: none, oral, iv, urgent."),
    infusion_interrupted: bool = typer.Option(False, "--infusion-interrupted"),
    no_prompt_response: bool = typer.Option(
        False, "--no-prompt-response", help="Not rapidly responsive to treatment (CTCAE IRR grade 3)."
    ),
    recurrence: bool = typer.Option(False, "--recurrence"),
    hospitalization: bool = typer.Option(False, "--hospitalization"),
    life_threatening: bool = typer.Option(False, "--life-threatening"),
    persistent: bool = typer.Option(False, "--persistent", help="Symptoms persistent (seed 001 moderate)."),
    death: bool = typer.Option(False, "--death"),
    vasovagal: bool = typer.Option(False, "--vasovagal"),
    biomarker: list[str] = typer.Option(
        [], "--biomarker", help="tryptase_elevated, il6_elevated, skin_test_positive."
    ),
    complement_prone_drug: bool = typer.Option(False, "--complement-prone-drug"),
    sbp_mmhg: str | None = typer.Option(None, "--sbp-mmhg", help="Systolic BP (recorded, not graded on)."),
    spo2_pct: str | None = typer.Option(None, "--spo2-pct", help="SpO2 % (recorded, not graded on)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Grade a reaction from structured findings; the grade stores its scale and version."""
    result = svc.grade_reaction(
        scale,
        symptoms=tuple(symptom),
        bronchodilator_response=bronchodilator_response,
        pef_drop_pct=pef_drop_pct,
        epinephrine_minutes=epinephrine_minutes,
        onset_minutes=onset_minutes,
        first_symptom=first_symptom,
        treatments=tuple(treatment),
        intervention=intervention,
        infusion_interrupted=infusion_interrupted,
        prompt_response=False if no_prompt_response else None,
        recurrence=recurrence,
        hospitalization=hospitalization,
        life_threatening=life_threatening,
        persistent=persistent,
        death=death,
        vasovagal=vasovagal,
        biomarkers=tuple(biomarker),
        complement_prone_drug=complement_prone_drug,
        sbp_mmhg=sbp_mmhg,
        spo2_pct=spo2_pct,
    )
    emit(result, as_json, _render_grades)


def register(app: typer.Typer) -> None:
    """Add ``grade`` to the root app."""
    app.command("grade")(grade_cmd)
