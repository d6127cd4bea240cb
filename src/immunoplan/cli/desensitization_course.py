"""``immunoplan desensitization-session index-reaction|cycle-options|adjuvant-omalizumab|end-course``: the
desensitization course around its cycles, through `immunoplan.services.records.desensitization.course`
(index reaction, the options the next cycle can start from, omalizumab as an off-label adjuvant, the end of
the course). The commands join the ``desensitization-session`` group; ``--json`` prints one object."""

from __future__ import annotations

from typing import Any

import typer

from immunoplan.cli.desensitization_session import session_app
from immunoplan.cli.output import console
from immunoplan.cli.registry_options import RegistryCall, id_option, reads, validated, writes

COURSE_OPT = id_option("--course", "Desensitization course id.")


def _svc() -> Any:
    from immunoplan.services.records.desensitization import course

    return course


def register(app: typer.Typer) -> None:
    """The commands are declared on ``session_app`` (registered by `cli.desensitization_session`)."""


def _render_index(r: dict[str, Any]) -> None:
    i = r["index_reaction"]
    console.print(
        f"course {r['course_id']}: index reaction {i['date']} {i['drug']} {i['scale']} grade "
        f"{i['grade_number']} ({i['grade']}), skin test {i['skin_test']}"
    )
    for w in i.get("warnings") or []:
        console.print(f"[yellow]{w}[/yellow]")


@session_app.command("index-reaction")
@writes
def index_reaction(
    course: int = COURSE_OPT,
    day: str = typer.Option(..., "--date", help="Date of the index reaction YYYY-MM-DD."),
    drug: str = typer.Option(..., "--drug", help="The drug that caused it."),
    grade: str = typer.Option(..., "--grade", help="The grade on the scale: 1-3 or mild/moderate/severe."),
    scale: str = typer.Option("brown2004", "--scale", help="Grading scale (brown2004)."),
    skin_test: str = typer.Option("not-done", "--skin-test", help="positive, negative or not-done."),
    skin_test_detail: str | None = typer.Option(None, "--skin-test-detail", help="e.g. 'ID 10 mg/mL'."),
    phenotype: str | None = typer.Option(None, "--phenotype", help="type I, cytokine release or mixed."),
    context: str | None = typer.Option(None, "--context", help="The treatment it happened in (FOLFOX)."),
    *,
    call: RegistryCall,
) -> None:
    """Record the course's index reaction (the drug-allergy alert of the patient page and every sheet)."""
    svc = _svc()
    inp = validated(
        svc.IndexReactionIn,
        course_id=course,
        reaction_on=day,
        drug=drug,
        grade=grade,
        scale=scale,
        skin_test=skin_test,
        skin_test_detail=skin_test_detail,
        phenotype=phenotype,
        context=context,
    )
    call.emit(call.write(svc.record_index_reaction, inp), _render_index)


def _render_options(r: dict[str, Any]) -> None:
    last = r.get("last")
    if not last:
        console.print(f"course {r['course_id']}: no cycle yet")
        return
    console.print(
        f"course {r['course_id']}: after cycle {last['cycle']} (session {last['session_id']}, "
        f"{last['outcome'] or last['status']}, {last['bags']} bags, {last['reactions']} reactions)"
    )
    for o in r["options"]:
        console.print(f"  {o['id']}{' (suggested)' if o['suggested'] else ''}: {o['text']}")


@session_app.command("cycle-options")
@reads
def cycle_options(course: int = COURSE_OPT, *, call: RegistryCall) -> None:
    """What the next cycle can start from (start it with ``start --cycle-choice ID``)."""
    call.emit(call.read(_svc().next_cycle_options, course), _render_options)


def _render_adjuvant(r: dict[str, Any]) -> None:
    a = r["omalizumab_adjuvant"]
    console.print(f"[bold]{a['label']}[/bold] · {a['regimen_id']} ({a['status']}) from {a['start_on']}")
    for x in a["schedule"]["administrations"]:
        console.print(f"  {x['date']}  {x['dose_mg']} mg  {x['phase']}")


@session_app.command("adjuvant-omalizumab")
@writes
def adjuvant_omalizumab(
    course: int = COURSE_OPT,
    start_on: str = typer.Option(
        ..., "--start-on", help="The first desensitization under omalizumab YYYY-MM-DD."
    ),
    regimen: str = typer.Option("desensitization_adjuvant", "--regimen", help="Adjuvant regimen id."),
    cycles: int = typer.Option(6, "--cycles", help="Desensitizations planned."),
    cycle_weeks: int = typer.Option(3, "--cycle-weeks", help="Weeks between desensitizations."),
    *,
    call: RegistryCall,
) -> None:
    """Plan omalizumab as an (off-label) adjuvant of the course; then ``omalizumab-dose record`` takes it."""
    svc = _svc()
    with call.registry() as reg:
        result = svc.plan_adjuvant_omalizumab(
            reg,
            call.by,
            course,
            regimen,
            start_on,
            cycles=cycles,
            cycle_weeks=cycle_weeks,
            idempotency_key=call.idempotency_key,
        )
    call.emit(result, _render_adjuvant)


@session_app.command("end-course")
@writes
def end_course(
    course: int = COURSE_OPT,
    status: str = typer.Option(..., "--status", help="completed or stopped."),
    reason: str = typer.Option(..., "--reason", help="Why (recorded)."),
    ended_on: str | None = typer.Option(None, "--ended-on", help="YYYY-MM-DD (default today)."),
    *,
    call: RegistryCall,
) -> None:
    """End the desensitization course (completed or stopped) with a reason."""
    svc = _svc()
    with call.registry() as reg:
        result = svc.end_course(
            reg, call.by, course, status, reason, ended_on, idempotency_key=call.idempotency_key
        )
    call.emit(result, lambda r: console.print(f"course {r['course_id']}: {r['status']} ({r['reason']})"))
