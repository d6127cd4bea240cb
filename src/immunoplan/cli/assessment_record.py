"""``immunoplan assessment record``: assess a patient and store the assessment shown, through the service
layer (`immunoplan.services.records.assessments.assess_and_store`: one transaction; the result keeps every
rule's basis). ``immunoplan assess`` computes the same assessment without storing it."""

from __future__ import annotations

from typing import Any

import typer

from immunoplan.cli.output import console
from immunoplan.cli.registry_options import PATIENT_OPT, RegistryCall, given, writes
from immunoplan.errors import InvalidInput

assessment_app = typer.Typer(
    help="Assessments: assess a patient and store what was shown.", no_args_is_help=True
)


def _assess_and_store(
    reg: Any, actor: str, patient: int, inputs: dict[str, Any], region: str, *, idempotency_key: str | None
) -> dict[str, Any]:
    from immunoplan.services.records.assessments import assess_and_store

    try:
        return assess_and_store(
            reg, actor, patient_id=patient, inputs=inputs, region=region, idempotency_key=idempotency_key
        )
    except LookupError:
        raise InvalidInput("--patient", f"no patient {patient} in the registry") from None


def _render(r: dict[str, Any]) -> None:
    res = r.get("result") or {}
    risk = res.get("risk") or {}
    console.print(
        f"[bold]assessment {r['id']}[/bold] for patient {r['patient_id']}: risk tier "
        f"{risk.get('risk_tier', '?')}, omalizumab pre-treatment {risk.get('omalizumab_pretreatment', '?')}"
        + (" [replayed: already stored with this key]" if r.get("replayed") else "")
    )


@assessment_app.command("record")
@writes
def record(
    patient: int = PATIENT_OPT,
    age: str = typer.Option(..., "--age", help="Age in years."),
    total_ige: str = typer.Option(..., "--total-ige", help="Total IgE (IU/mL)."),
    sige: str = typer.Option(..., "--sige", help="Allergen-specific IgE (kUA/L)."),
    weight_kg: str = typer.Option(
        None, "--weight-kg", help="Body weight (kg): adds the omalizumab label dose."
    ),
    eosinophils: str = typer.Option(None, "--eosinophils", help="Blood eosinophils (cells/uL)."),
    feno: str = typer.Option(None, "--feno", help="FeNO (ppb)."),
    severity: str = typer.Option(None, "--severity", help="mild, moderate or severe."),
    asthma_control: str = typer.Option(
        None, "--asthma-control", help="controlled, partly-controlled, uncontrolled."
    ),
    region: str = typer.Option("us", "--region", help="Label region for the omalizumab dose (us, eu)."),
    *,
    call: RegistryCall,
) -> None:
    """Assess a patient (risk tier, omalizumab advice, eligibility, label dose) and store it."""
    inputs = given(
        age_years=age,
        total_ige_iu_ml=total_ige,
        sige_kua_l=sige,
        weight_kg=weight_kg,
        eosinophils_cells_ul=eosinophils,
        feno_ppb=feno,
        severity=severity,
        asthma_control=asthma_control,
    )
    call.emit(call.write(_assess_and_store, patient, inputs, region), _render)


def register(app: typer.Typer) -> None:
    app.add_typer(assessment_app, name="assessment")
