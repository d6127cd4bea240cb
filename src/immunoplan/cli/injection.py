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

from immunoplan.cli.output import JSON_OPTION_HELP, console, emit, print_warnings
from immunoplan.cli.registry_options import COURSE_OPT, GIVEN_AT_OPT, RegistryCall, reads, validated, writes
from immunoplan.errors import InvalidInput

injection_app = typer.Typer(
    help="Immunotherapy injections: record one (every safety rule of the service), the next dose.",
    no_args_is_help=True,
)


def _vial_id(value: str | None) -> int | None:
    from immunoplan.services.records.vials import vial_id_of

    return None if value in (None, "") else vial_id_of(value)


def _next_dose(reg: Any, course: int, at: str | None, vial: str | None) -> dict[str, Any]:
    from immunoplan.services.records import injections

    try:
        return injections.next_dose(reg, course, at, vial_id=_vial_id(vial))
    except LookupError:
        raise InvalidInput("--course", f"no course {course} in the registry") from None


def _print_rule(label: str, r: dict[str, Any]) -> None:
    console.print(f"{label}{r['id']}: {r['text']} [{r['status']}; {r['source']}]")


def _render_next(n: dict[str, Any]) -> None:
    if n.get("visit_complete") and n.get("visit"):
        _print_rule("visit complete: ", n["visit"])
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
    vial: str = typer.Option(
        None, "--vial", help="Registered vial id (`vial add`); required once the patient has vials."
    ),
    strength: str = typer.Option(
        None,
        "--strength",
        help="Vial number (strength) when no vial is registered (default: the dose due's).",
    ),
    lot: str = typer.Option(None, "--lot", help="Lot number, when no vial is registered (else the vial's)."),
    check: list[str] = typer.Option(
        None, "--check", help="Pre-injection check answer NAME=VALUE (repeat); see `injection questions`."
    ),
    site: str = typer.Option(None, "--site", help="Injection site (left arm, right arm)."),
    observed_minutes: str = typer.Option(None, "--observed-minutes", help="Observation after it (min)."),
    reason: str = typer.Option(
        None,
        "--reason",
        "--override-reason",
        help="Why it is given although a rule refuses it (before its earliest time, above the dose due, a "
        "check that holds the dose); recorded.",
    ),
    *,
    call: RegistryCall,
) -> None:
    """Record an injection; prints the stored injection and `next` (what `injection next` answers now).
    Refusals name the rule: the interval, an expired vial, a dose above the dose due, a check that holds."""
    from immunoplan.clinical.immunotherapy.preinjection import parse_check_answers
    from immunoplan.services.records import injections

    data = validated(
        injections.InjectionIn,
        course_id=course,
        dose_ml=dose_ml,
        given_at=given_at,
        lot=lot,
        vial_id=_vial_id(vial),
        vial=strength,
        checks=parse_check_answers(list(check)) if check else None,
        site=site,
        observed_minutes=observed_minutes,
        override_reason=reason,
    )
    call.emit(call.write(injections.record, data), _render_recorded)


@injection_app.command("next")
@reads
def next_cmd(
    course: int = COURSE_OPT,
    at: str = typer.Option(None, "--at", help="As of this clinic time (YYYY-MM-DDTHH:MM; default now)."),
    vial: str = typer.Option(
        None, "--vial", help="For this registered vial (a new vial/lot lowers the dose)."
    ),
    *,
    call: RegistryCall,
) -> None:
    """The next injection of a course: dose_ml, due_date, earliest_at (the interval rule), visit_complete,
    observation_minutes, the rule that fired and the history it used."""
    call.emit(call.read(_next_dose, course, at, vial), _render_next)


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


def render_reaction(r: dict[str, Any]) -> None:
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
    call.emit(call.write(_reaction_to_last, course, data), render_reaction)


@injection_app.command("questions")
def questions(as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """The pre-injection check: each question's id (for ``--check NAME=VALUE``), accepted answers, what it
    does (hold the dose or warn), its source and status."""
    from immunoplan.clinical.immunotherapy.preinjection import check_questions

    emit({"questions": check_questions()}, as_json, _render_questions)


def _render_questions(r: dict[str, Any]) -> None:
    for q in r["questions"]:
        console.print(
            f"[bold]{q['id']}[/bold] ({q['accepted']}): {q['question']} -> {q['action']} [{q['status']}]"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(injection_app, name="injection")
