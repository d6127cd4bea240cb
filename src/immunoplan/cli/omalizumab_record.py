"""``immunoplan omalizumab-dose record``: record an omalizumab administration of a course planned with
omalizumab, through the service layer (`immunoplan.services.records.omalizumab.record_dose`).

The interval and the basis come from the label dose stored with the course. ``--given-at`` without an offset
is clinic-local wall time. A refusal (a course not planned with omalizumab, a dose out of range, the same
patient's dose already recorded in that minute) exits 2 with one stderr line naming the field and the rule or
the record it conflicts with. (``immunoplan omalizumab ...`` computes doses and schedules; this group
records what was given.)
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

dose_app = typer.Typer(help="Omalizumab doses given: record one on a course planned with omalizumab.")


@dose_app.command("record")
def record(
    course: str = typer.Option(..., "--course", help="Course id (planned with omalizumab)."),
    dose_mg: str = typer.Option(..., "--dose-mg", help="Dose given (mg)."),
    given_at: str = typer.Option(
        ..., "--given-at", help="When it was given: YYYY-MM-DDTHH:MM, clinic time (or with an offset)."
    ),
    site: str = typer.Option(None, "--site", help="Injection site(s)."),
    lot: str = typer.Option(None, "--lot", help="Lot number."),
    db: Path = DB_OPT,
    url: str = URL_OPT,
    actor: str = BY_OPT,
    idempotency_key: str = IDEMPOTENCY_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Record an omalizumab dose; prints the stored administration (clinic-local ``given_at``)."""
    from immunoplan.services.inputs import validate
    from immunoplan.services.records import omalizumab

    raw = {"course_id": course, "dose_mg": dose_mg, "given_at": given_at, "site": site, "lot": lot}
    data = validate(omalizumab.OmalizumabDoseIn, {k: v for k, v in raw.items() if v is not None})
    with opened(db, url) as reg:
        result = omalizumab.record_dose(reg, default_actor(actor), data, idempotency_key=idempotency_key)

    def render(r: dict[str, Any]) -> None:
        console.print(
            f"[bold]omalizumab administration {r['id']}[/bold] {r['dose_mg']} mg at {r['given_at']} "
            f"(course {r['course_id']}, every {r['interval_weeks'] or '-'} weeks)"
            + (" [replayed: already recorded with this key]" if r.get("replayed") else "")
        )

    emit(to_jsonable(result), as_json, render)


def register(app: typer.Typer) -> None:
    app.add_typer(dose_app, name="omalizumab-dose")
