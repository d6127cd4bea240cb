"""``immunoplan omalizumab-dose record``: record an omalizumab administration of a course planned with
omalizumab, through the service layer (`immunoplan.services.records.omalizumab.record_dose`).

The interval and the basis come from the label dose stored with the course. ``--given-at`` without an offset
is clinic-local wall time. A refusal (a course not planned with omalizumab, a dose out of range, the same
patient's dose already recorded in that minute) exits 2 with one stderr line naming the field and the rule or
the record it conflicts with. (``immunoplan omalizumab ...`` computes doses and schedules; this group
records what was given.)
"""

from __future__ import annotations

from typing import Any

import typer

from immunoplan.cli.output import console
from immunoplan.cli.registry_options import GIVEN_AT_OPT, RegistryCall, id_option, validated, writes

dose_app = typer.Typer(help="Omalizumab doses given: record one on a course planned with omalizumab.")


def _render(r: dict[str, Any]) -> None:
    console.print(
        f"[bold]omalizumab administration {r['id']}[/bold] {r['dose_mg']} mg at {r['given_at']} "
        f"(course {r['course_id']}, every {r['interval_weeks'] or '-'} weeks)"
        + (" [replayed: already recorded with this key]" if r.get("replayed") else "")
    )


@dose_app.command("record")
@writes
def record(
    course: int = id_option("--course", "Course id (planned with omalizumab)."),
    dose_mg: str = typer.Option(..., "--dose-mg", help="Dose given (mg)."),
    given_at: str = GIVEN_AT_OPT,
    site: str = typer.Option(None, "--site", help="Injection site(s)."),
    lot: str = typer.Option(None, "--lot", help="Lot number."),
    expiry: str = typer.Option(
        None, "--expiry", help="Expiry date of the syringe lot, YYYY-MM-DD (expired: refused)."
    ),
    observed_minutes: str = typer.Option(
        None, "--observed-minutes", help="Observation after the dose (min)."
    ),
    *,
    call: RegistryCall,
) -> None:
    """Record an omalizumab dose; prints the stored administration (clinic-local ``given_at``)."""
    from immunoplan.services.records import omalizumab

    data = validated(
        omalizumab.OmalizumabDoseIn,
        course_id=course,
        dose_mg=dose_mg,
        given_at=given_at,
        site=site,
        lot=lot,
        expiry_on=expiry,
        observed_minutes=observed_minutes,
    )
    call.emit(call.write(omalizumab.record_dose, data), _render)


def register(app: typer.Typer) -> None:
    app.add_typer(dose_app, name="omalizumab-dose")
