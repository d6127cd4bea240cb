"""``immunoplan patient add|show``: register a patient and read one back, through the service layer
(`immunoplan.services.records.patients`).

``patient add`` needs the MRN; the pseudonym is generated at random when ``--pseudo-id`` is not given (never
derived from the MRN). A weight given is stored as a ``weight_kg`` measurement dated the clinic's today. A
refusal (a field out of range, a birth date in the future, an MRN already registered) exits 2 with one
stderr line naming the field and the accepted range, or the patient it conflicts with.
"""

from __future__ import annotations

from typing import Any

import typer

from immunoplan.cli.output import console
from immunoplan.cli.registry_options import PATIENT_OPT, RegistryCall, not_blank, reads, validated, writes

patient_app = typer.Typer(help="Patients: register one (MRN, name, birth date, sex, weight), show one.")


def _render_added(r: dict[str, Any]) -> None:
    console.print(
        f"[bold]patient {r['id']}[/bold] {r['pseudo_id']} (MRN {r['mrn']}), born {r['birth_date']}, "
        f"{r['sex']}" + (f", {r['weight_kg']} kg today" if r.get("weight_kg") is not None else "")
    )
    if r.get("replayed"):
        console.print("[yellow]already registered with this idempotency key: nothing written[/yellow]")


def _render_shown(r: dict[str, Any]) -> None:
    console.print(
        f"[bold]patient {r['id']}[/bold] {r['pseudo_id']} (MRN {r['mrn'] or '-'}) "
        f"{r['display_name'] or ''}, age {r['age_years'] if r['age_years'] is not None else 'unknown'}, "
        f"{r['sex']}"
    )
    for c in r["courses"]:
        console.print(
            f"  course {c['id']}: {c['kind']} {c['label']} [{c['status']}], "
            f"next due {c['next_due_on'] or '-'}"
        )


@patient_app.command("add")
@writes
def add(
    mrn: str = typer.Option(
        ..., "--mrn", help="Medical record number (unique in the registry).", callback=not_blank
    ),
    name: str = typer.Option(
        ..., "--name", help="The patient's name (a direct identifier; never exported).", callback=not_blank
    ),
    birth_date: str = typer.Option(..., "--birth-date", help="YYYY-MM-DD (not in the future)."),
    sex: str = typer.Option(..., "--sex", help="female, male, other or unknown.", callback=not_blank),
    weight_kg: str = typer.Option(None, "--weight-kg", help="Weight today (kg), stored as a measurement."),
    height_cm: str = typer.Option(None, "--height-cm", help="Height (cm)."),
    pseudo_id: str = typer.Option(None, "--pseudo-id", help="Pseudonym (default: generated at random)."),
    *,
    call: RegistryCall,
) -> None:
    """Register a patient; prints the stored patient (``id``, ``pseudo_id``, ``mrn`` ...)."""
    from immunoplan.services.records import patients

    data = validated(
        patients.PatientIn,
        mrn=mrn,
        name=name,
        birth_date=birth_date,
        sex=sex,
        weight_kg=weight_kg,
        height_cm=height_cm,
        pseudo_id=pseudo_id,
    )
    call.emit(call.write(patients.add_patient, data), _render_added)


@patient_app.command("show")
@reads
def show(patient: int = PATIENT_OPT, *, call: RegistryCall) -> None:
    """A patient with its age (clinic date), latest weight and courses."""
    from immunoplan.services.records import patients

    call.emit(call.read(patients.show_patient, patient), _render_shown)


def register(app: typer.Typer) -> None:
    app.add_typer(patient_app, name="patient")
