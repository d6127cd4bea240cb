"""``immunoplan injection record|next``: immunotherapy injections through the service layer
(`immunoplan.services.records.injections`).

Times are clinic time (``IMMUNOPLAN_TIMEZONE``): ``--given-at``/``--at`` without an offset are clinic-local
wall time, and JSON prints clinic-local ISO times with their offset. A refusal (a field out of range, an
injection before its earliest time, in the future, or the same act already recorded) exits 2 with one stderr
line naming the field and the rule, the accepted range or the conflicting record.
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
from immunoplan.errors import InvalidInput

injection_app = typer.Typer(
    help="Immunotherapy injections: record one (every safety rule of the service), the next dose.",
    no_args_is_help=True,
)


def _next_dose(reg: Any, course: int, at: str | None) -> dict[str, Any]:
    from immunoplan.services.records import injections

    try:
        return injections.next_dose(reg, course, at)
    except LookupError:
        raise InvalidInput("--course", f"no course {course} in the registry") from None


def _render_next(n: dict[str, Any]) -> None:
    if n["kind"] == "dose" and n["dose"]:
        d = n["dose"]
        console.print(
            f"[bold]next: {d['dose']} {d['unit']} = vial {d['vial']}, {d['volume_ml']} mL[/bold] "
            f"({n['phase']}), due {n['due_date'] or '-'}, not before {n['earliest_at'] or '-'}"
        )
    else:
        console.print(f"[bold red]next: {n['kind']}[/bold red]")
    if n.get("rule"):
        r = n["rule"]
        console.print(f"rule {r['id']}: {r['text']} [{r['status']}; {r['source']}]")
    if n.get("earliest") and n["earliest"].get("rule"):
        r = n["earliest"]["rule"]
        console.print(f"earliest: {r['id']}: {r['text']} [{r['status']}; {r['source']}]")
    for w in n.get("warnings") or []:
        console.print(f"[yellow]warning:[/yellow] {w}")


@injection_app.command("record")
def record(
    course: int = typer.Option(..., "--course", help="Course id."),
    dose_ml: str = typer.Option(..., "--dose-ml", help="Volume injected (mL)."),
    given_at: str = typer.Option(
        ..., "--given-at", help="When it was given: YYYY-MM-DDTHH:MM, clinic time (or with an offset)."
    ),
    lot: str = typer.Option(None, "--lot", help="Lot number of the vial."),
    vial: str = typer.Option(None, "--vial", help="Vial number (default: the vial of the dose due)."),
    site: str = typer.Option(None, "--site", help="Injection site (left arm, right arm)."),
    observed_minutes: str = typer.Option(None, "--observed-minutes", help="Observation after it (min)."),
    override_reason: str = typer.Option(
        None, "--override-reason", help="Why it is given before its earliest time (recorded)."
    ),
    db: Path = DB_OPT,
    url: str = URL_OPT,
    actor: str = BY_OPT,
    idempotency_key: str = IDEMPOTENCY_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Record an injection; prints the stored injection and `next` (what `injection next` answers now)."""
    from immunoplan.services.inputs import validate
    from immunoplan.services.records import injections

    data = validate(
        injections.InjectionIn,
        {
            "course_id": course,
            "dose_ml": dose_ml,
            "given_at": given_at,
            "lot": lot,
            "vial": vial,
            "site": site,
            "observed_minutes": observed_minutes,
            "override_reason": override_reason,
        },
    )
    with opened(db, url) as reg:
        result = injections.record(reg, default_actor(actor), data, idempotency_key=idempotency_key)

    def render(r: dict[str, Any]) -> None:
        console.print(
            f"[bold]injection {r['id']}[/bold] {r['dose']} {r['dose_unit']} (vial {r['vial']}, "
            f"{r['volume_ml']} mL) given {r['given_at']} by {r['given_by']}"
            + (" [replayed: already recorded with this key]" if r.get("replayed") else "")
        )
        for w in r.get("warnings") or []:
            console.print(f"[yellow]warning:[/yellow] {w}")
        _render_next(r["next"])

    emit(to_jsonable(result), as_json, render)


@injection_app.command("next")
def next_cmd(
    course: int = typer.Option(..., "--course", help="Course id."),
    at: str = typer.Option(None, "--at", help="As of this clinic time (YYYY-MM-DDTHH:MM; default now)."),
    db: Path = DB_OPT,
    url: str = URL_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """The next injection of a course: dose_ml, due_date, earliest_at, the rule and the history it used."""
    with opened(db, url) as reg:
        result = _next_dose(reg, course, at)
    emit(to_jsonable(result), as_json, _render_next)


def register(app: typer.Typer) -> None:
    app.add_typer(injection_app, name="injection")
