"""``immunoplan desensitization-session start|step|reaction|finish|show``: run a rapid drug desensitization
session through the service layer (`immunoplan.services.records.desensitization`), with every rule of the
service (UNVERIFIED plan without override, steps in order, a step started early, stop after a breakthrough,
a step recorded once, a finished session).

Times are clinic time (``IMMUNOPLAN_TIMEZONE``): ``--given-at``/``--onset-at``/``--ended-at`` without an
offset are clinic-local wall time; JSON prints clinic-local ISO times with their offset. A refusal exits 2
with one stderr line naming the field and the rule, the accepted range or the record it conflicts with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from immunoplan.cli.output import console, emit
from immunoplan.cli.registry_options import (
    BY_OPT,
    DB_OPT,
    IDEMPOTENCY_OPT,
    JSON_OPT,
    URL_OPT,
    default_actor,
    opened,
)

session_app = typer.Typer(
    help="Run a desensitization session: start (plan + open), steps, breakthrough reaction, finish, show.",
    no_args_is_help=True,
)

SESSION_OPT = typer.Option(..., "--session", help="Session id.")


def _svc() -> Any:
    """The service module (imported when a command runs: ``immunoplan --help`` stays fast)."""
    from immunoplan.services.records import desensitization

    return desensitization


def _validate(model: Any, data: dict[str, Any]) -> Any:
    from immunoplan.services.inputs import validate

    return validate(model, data)


def _render_view(v: dict[str, Any]) -> None:
    console.print(
        f"[bold]session {v['id']}[/bold] · {v['pseudo_id']} · {v['drug']} {v['target_dose_mg']} mg · "
        f"{v['session_on']} · cycle {v['cycle']} of course {v['course_id']} · {v['status']}"
        + (f" ({v['outcome']})" if v.get("outcome") else "")
        + f" · dose given {v['dose_given_mg']} mg"
    )
    for part in v["protocols"]:
        if not part["steps"]:
            continue
        console.print(f"[bold]{part['title']}[/bold]" + ("" if part["active"] else " (stopped)"))
        for st in part["steps"]:
            rec = st["recorded"]
            where = (
                f"{rec['status']} {rec['started_at'] or ''}".strip()
                if rec
                else ("next" if st["next"] else "")
            )
            console.print(f"  {st['step']:>3}  {st['dose_mg']} mg  {where}")
    for r in v["reactions"]:
        console.print(
            f"[red]reaction[/red] at step {r['step']}: {r['grade']} ({r['scale']}) {r['onset_at'] or ''}"
        )
    if v.get("blocked"):
        console.print(f"[yellow]{v['blocked']}[/yellow]")


def _render_row(r: dict[str, Any]) -> None:
    console.print(
        ", ".join(f"{k}={v}" for k, v in r.items() if v is not None and not isinstance(v, (dict, list)))
    )


def _plan_fields(**kw: Any) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if v not in (None, [], "")}


def register(app: typer.Typer) -> None:
    app.add_typer(session_app, name="desensitization-session")


@session_app.command("start")
def start(
    patient: int = typer.Option(..., "--patient", help="Patient id (registry id)."),
    drug: str = typer.Option(..., "--drug", help="Drug name (printed on the sheets)."),
    dose_mg: str = typer.Option(..., "--dose-mg", help="Target dose in mg."),
    bag_volume_ml: str = typer.Option(..., "--bag-volume-ml", help="Final bag volume in mL."),
    final_rate_ml_h: str = typer.Option(..., "--final-rate-ml-h", help="Final infusion rate in mL/h."),
    session_on: str = typer.Option(..., "--session-on", help="Session date YYYY-MM-DD (clinic date)."),
    bags: int = typer.Option(
        3,
        "--bags",
        help="Number of bags: 3 (12-step, VERIFIED) or 4 (16-step, UNVERIFIED rates); 1-2 are UNVERIFIED.",
    ),
    dilution_bag_volume_ml: str | None = typer.Option(
        None, "--dilution-bag-volume-ml", help="Volume of each dilution bag (default: bag volume)."
    ),
    step_minutes: str | None = typer.Option(None, "--step-minutes", help="Minutes per step (default 15)."),
    first_rate_variant: bool = typer.Option(
        False, "--first-rate-2-5", help="Start bag 1 at 2.5 (x R/80) mL/h (Tsao 2022, SECONDARY)."
    ),
    rates: str | None = typer.Option(None, "--rates", help="Custom rate table in mL/h, bags separated by |."),
    start_at: str | None = typer.Option(None, "--start", help="Start time HH:MM (clinic time)."),
    stock_mg_ml: str | None = typer.Option(None, "--stock-mg-ml", help="Stock concentration (mg/mL)."),
    premedication: str | None = typer.Option(None, "--premedication", help="Premedication regimen id."),
    initial_symptom: list[str] = typer.Option(
        [], "--initial-symptom", help="Symptom of the initial reaction."
    ),
    override_unverified: str | None = typer.Option(
        None, "--override-unverified", help="Reason for using UNVERIFIED rules (recorded)."
    ),
    course: int | None = typer.Option(
        None, "--course", help="Desensitization course (default: the open one)."
    ),
    db: Path = DB_OPT,
    url: str = URL_OPT,
    actor: str = BY_OPT,
    idempotency_key: str = IDEMPOTENCY_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Plan with the engine and open the session on the patient's course for the drug."""
    svc = _svc()
    data = _plan_fields(
        patient_id=patient,
        drug=drug,
        dose_mg=dose_mg,
        bag_volume_ml=bag_volume_ml,
        final_rate_ml_h=final_rate_ml_h,
        session_on=session_on,
        bags=bags,
        dilution_bag_volume_ml=dilution_bag_volume_ml,
        step_minutes=step_minutes,
        first_rate_variant=first_rate_variant or None,
        rates=rates,
        start=start_at,
        stock_mg_ml=stock_mg_ml,
        premedication_regimen=premedication,
        initial_symptoms=list(initial_symptom),
        override_reason=override_unverified,
        course_id=course,
    )
    inp = _validate(svc.SessionStartIn, data)
    with opened(db, url) as reg:
        out = svc.start_session(reg, default_actor(actor), inp, idempotency_key=idempotency_key)
    emit(svc.view_json(out), as_json, _render_start)


def _render_start(r: dict[str, Any]) -> None:
    console.print(
        f"[bold]session {r['session_id']}[/bold] (course {r['course_id']}, cycle {r['cycle']}): "
        f"{len(r.get('steps') or [])} steps, "
        + ("can be given" if r["dosing_allowed"] else "NOT for administration")
    )
    for w in (r.get("plan") or {}).get("warnings") or []:
        console.print(f"[yellow]warning:[/yellow] {w}")


@session_app.command("step")
def step(
    session: int = SESSION_OPT,
    step_no: int = typer.Option(..., "--step", help="Step number (as numbered in the session)."),
    status: str = typer.Option("given", "--status", help="given, paused, skipped or stopped."),
    given_at: str | None = typer.Option(
        None, "--given-at", help="When the step started: YYYY-MM-DDTHH:MM, clinic time (default now)."
    ),
    early_reason: str | None = typer.Option(
        None, "--early-reason", help="Why it starts before the previous step's planned minutes (recorded)."
    ),
    replan_no: int | None = typer.Option(
        None,
        "--replan",
        help="The protocol you follow: 0 original, n = n-th re-plan (default: the active one).",
    ),
    db: Path = DB_OPT,
    url: str = URL_OPT,
    actor: str = BY_OPT,
    idempotency_key: str = IDEMPOTENCY_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Mark one step of the plan (or of the re-planned continuation)."""
    svc = _svc()
    inp = _validate(
        svc.StepIn,
        _plan_fields(
            session_id=session,
            step_no=step_no,
            status=status,
            given_at=given_at,
            early_reason=early_reason,
            replan_no=replan_no,
        ),
    )
    with opened(db, url) as reg:
        out = svc.mark_step(reg, default_actor(actor), inp, idempotency_key=idempotency_key)
    emit(svc.view_json(out), as_json, _render_row)


@session_app.command("reaction")
def reaction(
    session: int = SESSION_OPT,
    step_no: int = typer.Option(..., "--step", help="Step the reaction happened at."),
    finding: list[str] = typer.Option(
        [],
        "--finding",
        help="Finding (repeat; grading_symptoms codes: wheeze, flushing, hypoxia, ...): graded.",
    ),
    severity: str | None = typer.Option(
        None,
        "--severity",
        help="Brown 2004 grade, only when no finding can be graded: mild, moderate, severe.",
    ),
    symptom: list[str] = typer.Option([], "--symptom", help="Symptom (repeat): flushing, respiratory, ..."),
    spo2_pct: str | None = typer.Option(None, "--spo2-pct", help="SpO2 at the reaction (%; recorded)."),
    systolic_bp_mmhg: str | None = typer.Option(
        None, "--systolic-bp-mmhg", help="Systolic BP (mmHg; recorded)."
    ),
    heart_rate_bpm: str | None = typer.Option(None, "--heart-rate-bpm", help="Heart rate (/min; recorded)."),
    minutes_into_step: str | None = typer.Option(
        None,
        "--minutes-into-step",
        help="Minutes into the step at the reaction (needed to resume at the final step).",
    ),
    steps_back: int = typer.Option(1, "--steps-back", help="Resume 1 or 2 steps back (mild reactions)."),
    choose: str | None = typer.Option(None, "--choose", help="Clinician's chosen option id (recorded)."),
    onset_at: str | None = typer.Option(None, "--onset-at", help="Onset, clinic time (default now)."),
    treatment: str | None = typer.Option(None, "--treatment", help="Treatment given (text)."),
    db: Path = DB_OPT,
    url: str = URL_OPT,
    actor: str = BY_OPT,
    idempotency_key: str = IDEMPOTENCY_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Record a breakthrough reaction: the protocol stops; the re-plan and its continuation are stored."""
    svc = _svc()
    inp = _validate(
        svc.BreakthroughIn,
        _plan_fields(
            session_id=session,
            step_no=step_no,
            findings=list(finding),
            severity=severity,
            symptoms=list(symptom),
            spo2_pct=spo2_pct,
            systolic_bp_mmhg=systolic_bp_mmhg,
            heart_rate_bpm=heart_rate_bpm,
            minutes_into_step=minutes_into_step,
            steps_back=steps_back,
            chosen=choose,
            onset_at=onset_at,
            treatment=treatment,
        ),
    )
    with opened(db, url) as reg:
        out = svc.record_breakthrough(reg, default_actor(actor), inp, idempotency_key=idempotency_key)
    emit(svc.view_json(out), as_json, _render_breakthrough)


def _render_breakthrough(r: dict[str, Any]) -> None:
    rp = r["replan"]
    console.print(
        f"[bold red]reaction {r['reaction']['id']}[/bold red] at step {rp['reaction_step']} "
        f"({rp['severity']})"
    )
    g = r["grade"]
    console.print(f"grade {g['grade']} ({g['scale']}, {'computed' if g['computed'] else 'clinician'})")
    console.print("applied: " + ", ".join(rp["applied"]))
    steps = [s["step_no"] for s in r["continuation"]]
    console.print(
        f"continuation {r['replan_no']}: steps {steps[0]}-{steps[-1]}" if steps else "no continuation today"
    )
    for w in rp["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {w}")


@session_app.command("finish")
def finish(
    session: int = SESSION_OPT,
    outcome: str = typer.Option(..., "--outcome", help="completed, completed-with-reactions or stopped."),
    ended_at: str | None = typer.Option(None, "--ended-at", help="End, clinic time (default now)."),
    db: Path = DB_OPT,
    url: str = URL_OPT,
    actor: str = BY_OPT,
    idempotency_key: str = IDEMPOTENCY_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Finish the session (completed only when the last step of its active protocol was given)."""
    svc = _svc()
    inp = _validate(svc.FinishIn, _plan_fields(session_id=session, outcome=outcome, ended_at=ended_at))
    with opened(db, url) as reg:
        out = svc.finish_session(reg, default_actor(actor), inp, idempotency_key=idempotency_key)
    emit(svc.view_json(out), as_json, _render_row)


@session_app.command("show")
def show(
    session: int = SESSION_OPT,
    db: Path = DB_OPT,
    url: str = URL_OPT,
    actor: str = BY_OPT,
    idempotency_key: str = IDEMPOTENCY_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """A session: protocols with each step's status and clinic-local time, reactions, re-plans, next step."""
    svc = _svc()
    with opened(db, url) as reg:
        view = svc.session_view(reg, session)
    emit(svc.view_json(view), as_json, _render_view)
