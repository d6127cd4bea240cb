"""``immunoplan patient add|show``: register a patient and read one back, through the service layer
(`immunoplan.services.records.patients`).

``patient add`` needs the MRN; the pseudonym is generated at random when ``--pseudo-id`` is not given (never
derived from the MRN). A weight given is stored as a ``weight_kg`` measurement dated the clinic's today. A
refusal (a field out of range, a birth date in the future, an MRN already registered) exits 2 with one
stderr line naming the field and the accepted range, or the patient it conflicts with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from immunoplan.cli.output import console, emit, to_jsonable
from immunoplan.cli.registry_options import (
    BY_OPT,
    DB_OPT,
    IDEMPOTENCY_OPT,
    JSON_OPT,
    URL_OPT,
    default_actor,
    opened,
)

patient_app = typer.Typer(help="Patients: register one (MRN, name, birth date, sex, weight), show one.")


@patient_app.command("add")
def add(
    mrn: str = typer.Option(..., "--mrn", help="Medical record number (unique in the registry)."),
    name: str = typer.Option(..., "--name", help="The patient's name (a direct identifier; never exported)."),
    birth_date: str = typer.Option(..., "--birth-date", help="YYYY-MM-DD (not in the future)."),
    sex: str = typer.Option(..., "--sex", help="female, male, other or unknown."),
    weight_kg: str = typer.Option(None, "--weight-kg", help="Weight today (kg), stored as a measurement."),
    height_cm: str = typer.Option(None, "--height-cm", help="Height (cm)."),
    pseudo_id: str = typer.Option(None, "--pseudo-id", help="Pseudonym (default: generated at random)."),
    db: Path = DB_OPT,
    url: str = URL_OPT,
    actor: str = BY_OPT,
    idempotency_key: str = IDEMPOTENCY_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Register a patient; prints the stored patient (``id``, ``pseudo_id``, ``mrn`` ...)."""
    from immunoplan.services.inputs import validate
    from immunoplan.services.records import patients

    raw = {
        "mrn": mrn,
        "name": name,
        "birth_date": birth_date,
        "sex": sex,
        "weight_kg": weight_kg,
        "height_cm": height_cm,
        "pseudo_id": pseudo_id,
    }
    data = validate(patients.PatientIn, {k: v for k, v in raw.items() if v is not None})
    with opened(db, url) as reg:
        result = patients.add_patient(reg, default_actor(actor), data, idempotency_key=idempotency_key)

    def render(r: dict[str, Any]) -> None:
        console.print(
            f"[bold]patient {r['id']}[/bold] {r['pseudo_id']} (MRN {r['mrn']}), born {r['birth_date']}, "
            f"{r['sex']}" + (f", {r['weight_kg']} kg today" if r.get("weight_kg") is not None else "")
        )
        if r.get("replayed"):
            console.print("[yellow]already registered with this idempotency key: nothing written[/yellow]")

    emit(to_jsonable(result), as_json, render)


@patient_app.command("show")
def show(
    patient: str = typer.Option(..., "--patient", help="Patient id (as printed by `patient add`)."),
    db: Path = DB_OPT,
    url: str = URL_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """A patient with its age (clinic date), latest weight and courses."""
    from immunoplan.services.records import patients

    with opened(db, url) as reg:
        result = patients.show_patient(reg, patient)

    def render(r: dict[str, Any]) -> None:
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

    emit(to_jsonable(result), as_json, render)


def register(app: typer.Typer) -> None:
    app.add_typer(patient_app, name="patient")
