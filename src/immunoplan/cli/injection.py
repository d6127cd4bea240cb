"""``immunoplan injection record|next|reaction``: immunotherapy injections through the service layer
(`immunoplan.services.records.injections`).

Times are clinic time (``IMMUNOPLAN_TIMEZONE``): ``--given-at``/``--at`` without an offset are clinic-local
wall time, and JSON prints clinic-local ISO times with their offset. A refusal (a field out of range, an
injection before its earliest time, in the future, or the same act already recorded) exits 2 with one stderr
line naming the field and the rule, the accepted range or the conflicting record.
"""

from __future__ import annotations

from typing import Any

import typer

from immunoplan.cli.output import console, print_warnings
from immunoplan.cli.registry_options import COURSE_OPT, GIVEN_AT_OPT, RegistryCall, reads, validated, writes
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


def _print_rule(label: str, r: dict[str, Any]) -> None:
    console.print(f"{label}{r['id']}: {r['text']} [{r['status']}; {r['source']}]")


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
        _print_rule("rule ", n["rule"])
    if n.get("earliest") and n["earliest"].get("rule"):
        _print_rule("earliest: ", n["earliest"]["rule"])
    print_warnings(n.get("warnings") or [])


def _render_recorded(r: dict[str, Any]) -> None:
    console.print(
        f"[bold]injection {r['id']}[/bold] {r['dose']} {r['dose_unit']} (vial {r['vial']}, "
        f"{r['volume_ml']} mL) given {r['given_at']} by {r['given_by']}"
        + (" [replayed: already recorded with this key]" if r.get("replayed") else "")
    )
    print_warnings(r.get("warnings") or [])
    _render_next(r["next"])


@injection_app.command("record")
@writes
def record(
    course: int = COURSE_OPT,
    dose_ml: str = typer.Option(..., "--dose-ml", help="Volume injected (mL)."),
    given_at: str = GIVEN_AT_OPT,
    lot: str = typer.Option(None, "--lot", help="Lot number of the vial."),
    vial: str = typer.Option(None, "--vial", help="Vial number (default: the vial of the dose due)."),
    site: str = typer.Option(None, "--site", help="Injection site (left arm, right arm)."),
    observed_minutes: str = typer.Option(None, "--observed-minutes", help="Observation after it (min)."),
    override_reason: str = typer.Option(
        None, "--override-reason", help="Why it is given before its earliest time (recorded)."
    ),
    *,
    call: RegistryCall,
) -> None:
    """Record an injection; prints the stored injection and `next` (what `injection next` answers now)."""
    from immunoplan.services.records import injections

    data = validated(
        injections.InjectionIn,
        course_id=course,
        dose_ml=dose_ml,
        given_at=given_at,
        lot=lot,
        vial=vial,
        site=site,
        observed_minutes=observed_minutes,
        override_reason=override_reason,
    )
    call.emit(call.write(injections.record, data), _render_recorded)


@injection_app.command("next")
@reads
def next_cmd(
    course: int = COURSE_OPT,
    at: str = typer.Option(None, "--at", help="As of this clinic time (YYYY-MM-DDTHH:MM; default now)."),
    *,
    call: RegistryCall,
) -> None:
    """The next injection of a course: dose_ml, due_date, earliest_at, the rule and the history it used."""
    call.emit(call.read(_next_dose, course, at), _render_next)


def _reaction_to_last(
    reg: Any, actor: str, course: int, data: Any, *, idempotency_key: str | None
) -> dict[str, Any]:
    from immunoplan.services.records import injections

    try:
        return injections.record_reaction_to_last_injection(
            reg, actor, None, course, data, idempotency_key=idempotency_key
        )
    except LookupError:
        raise InvalidInput("--course", f"no course {course} in the registry") from None


def _render_reaction(r: dict[str, Any]) -> None:
    g = r.get("grading") or {}
    reaction = r.get("reaction") or r
    console.print(
        f"[bold]reaction {reaction.get('id')}[/bold] {reaction.get('kind')}, grade {reaction.get('grade')} "
        f"({reaction.get('scale')})" + (f": {g.get('label')}" if g.get("label") else "")
    )
    if r.get("next"):
        _render_next(r["next"])


@injection_app.command("reaction")
@writes
def reaction(
    course: int = COURSE_OPT,
    kind: str = typer.Option(..., "--kind", help="local or systemic."),
    local_size: str = typer.Option(None, "--local-size", help="Local swelling size (local reactions)."),
    scale: str = typer.Option("wao2010", "--scale", help="Grading scale the SCIT rules read."),
    symptom: list[str] = typer.Option(None, "--symptom", help="A finding (repeat); see `immunoplan grade`."),
    bronchodilator: str = typer.Option(None, "--bronchodilator-response", help="Bronchospasm response."),
    epinephrine_minutes: str = typer.Option(
        None, "--epinephrine-minutes", help="Adrenaline given after (min)."
    ),
    onset_minutes: str = typer.Option(None, "--onset-minutes", help="Onset after the injection (min)."),
    *,
    call: RegistryCall,
) -> None:
    """Grade and record a reaction to the course's last injection; prints the grade and `next` (the dose after
    a reaction comes from the adjustment rules, in the same transaction)."""
    from immunoplan.services.records import injections

    data = validated(
        injections.InjectionReactionIn,
        kind=kind,
        local_size=local_size,
        scale=scale,
        symptoms=list(symptom or []),
        bronchodilator_response=bronchodilator,
        epinephrine_minutes=epinephrine_minutes,
        onset_minutes=onset_minutes,
    )
    call.emit(call.write(_reaction_to_last, course, data), _render_reaction)


def register(app: typer.Typer) -> None:
    app.add_typer(injection_app, name="injection")
