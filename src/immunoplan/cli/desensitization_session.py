"""``immunoplan desensitization-session start|baseline|step|reaction|finish|show``: run a rapid drug
desensitization session through the service layer (`immunoplan.services.records.desensitization`), with every
rule of the service (UNVERIFIED plan without override, steps in order, a step started early, stop after a
breakthrough, a step recorded once, a finished session).

Times are clinic time (``IMMUNOPLAN_TIMEZONE``): ``--given-at``/``--onset-at``/``--ended-at`` without an
offset are clinic-local wall time; JSON prints clinic-local ISO times with their offset. A refusal exits 2
with one stderr line naming the field and the rule, the accepted range or the record it conflicts with.
"""

from __future__ import annotations

from typing import Any

import typer

from immunoplan.cli.output import console, print_warnings
from immunoplan.cli.protocol_helpers import CHOOSE_OPT, STEPS_BACK_OPT, rdd_plan_options
from immunoplan.cli.registry_options import PATIENT_OPT, RegistryCall, id_option, validated, writes

session_app = typer.Typer(
    help="Run a desensitization session: start (plan + open), steps, breakthrough reaction, finish, show.",
    no_args_is_help=True,
)

SESSION_OPT = id_option("--session", "Session id.")


def _svc() -> Any:
    """The service module (imported when a command runs: ``immunoplan --help`` stays fast)."""
    from immunoplan.services.records import desensitization

    return desensitization


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
            + (f" · phenotype {r['phenotype']}" if r.get("phenotype") else "")
        )
        vit = r.get("vital_signs") or {}
        if vit or r.get("tryptase_ng_ml") is not None:
            console.print(
                "  "
                + ", ".join(f"{k}={x}" for k, x in vit.items())
                + (f" tryptase {r['tryptase_ng_ml']} ng/mL" if r.get("tryptase_ng_ml") is not None else "")
            )
        for t in r.get("treatments") or []:
            console.print(
                f"  treated: {t['drug']} {t['dose']} {t['unit']} {t['route']} {t.get('given_at') or ''}"
            )
    if v.get("blocked"):
        console.print(f"[yellow]{v['blocked']}[/yellow]")


def _render_row(r: dict[str, Any]) -> None:
    console.print(
        ", ".join(f"{k}={v}" for k, v in r.items() if v is not None and not isinstance(v, (dict, list)))
    )


def register(app: typer.Typer) -> None:
    app.add_typer(session_app, name="desensitization-session")


@session_app.command("start")
@writes
@rdd_plan_options
def start(
    patient: int = PATIENT_OPT,
    session_on: str = typer.Option(..., "--session-on", help="Session date YYYY-MM-DD (clinic date)."),
    *,
    plan: dict[str, Any],
    course: int | None = id_option(
        "--course", "Desensitization course (default: the open one).", required=False
    ),
    cycle_choice: str | None = typer.Option(
        None,
        "--cycle-choice",
        help="What this cycle starts from (see cycle-options); recorded with its basis.",
    ),
    from_session: int | None = id_option(
        "--from-session", "The cycle the choice follows (default: the course's last).", required=False
    ),
    call: RegistryCall,
) -> None:
    """Plan with the engine and open the session on the patient's course for the drug."""
    svc = _svc()
    inp = validated(
        svc.SessionStartIn,
        patient_id=patient,
        session_on=session_on,
        **plan,
        course_id=course,
        cycle_choice=cycle_choice,
        from_session_id=from_session,
    )
    call.emit(svc.view_json(call.write(svc.start_session, inp)), _render_start)


def _render_start(r: dict[str, Any]) -> None:
    console.print(
        f"[bold]session {r['session_id']}[/bold] (course {r['course_id']}, cycle {r['cycle']}): "
        f"{len(r.get('steps') or [])} steps, "
        + ("can be given" if r["dosing_allowed"] else "NOT for administration")
    )
    print_warnings((r.get("plan") or {}).get("warnings") or [])


@session_app.command("step")
@writes
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
    *,
    call: RegistryCall,
) -> None:
    """Mark one step of the plan (or of the re-planned continuation)."""
    svc = _svc()
    inp = validated(
        svc.StepIn,
        session_id=session,
        step_no=step_no,
        status=status,
        given_at=given_at,
        early_reason=early_reason,
        replan_no=replan_no,
    )
    call.emit(svc.view_json(call.write(svc.mark_step, inp)), _render_row)


@session_app.command("reaction")
@writes
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
    diastolic_bp_mmhg: str | None = typer.Option(
        None, "--diastolic-bp-mmhg", help="Diastolic BP (mmHg; recorded)."
    ),
    temperature_c: str | None = typer.Option(None, "--temperature-c", help="Temperature (°C; recorded)."),
    tryptase_ng_ml: str | None = typer.Option(
        None, "--tryptase-ng-ml", help="Serum tryptase at the reaction (ng/mL = ug/L; recorded)."
    ),
    tryptase_at: str | None = typer.Option(
        None, "--tryptase-at", help="When the tryptase was sampled, clinic time (default now)."
    ),
    scale: str = typer.Option(
        "brown2004",
        "--scale",
        help="Scale the reaction is recorded on: brown2004 (default), wao2017, ctcae-allergic, ctcae-irr "
        "(Brown 2004 is computed too: the re-plan uses it).",
    ),
    phenotype: str | None = typer.Option(
        None,
        "--phenotype",
        help="Endophenotype (type I, cytokine release, mixed): only when the findings do not decide it.",
    ),
    bronchodilator_response: str | None = typer.Option(
        None, "--bronchodilator-response", help="responds, not-responding or worsening (WAO grade 3)."
    ),
    minutes_into_step: str | None = typer.Option(
        None,
        "--minutes-into-step",
        help="Minutes into the step at the reaction (needed to resume at the final step).",
    ),
    steps_back: int = STEPS_BACK_OPT,
    choose: str | None = CHOOSE_OPT,
    onset_at: str | None = typer.Option(None, "--onset-at", help="Onset, clinic time (default now)."),
    treatment: list[str] = typer.Option(
        [],
        "--treatment",
        help="Treatment given (repeat): DRUG:DOSE:UNIT:ROUTE[@HH:MM], e.g. epinephrine:0.5:mg:IM@10:42 "
        "(units mg, mcg, g, mL, L/min, puffs, units, mg/kg, mcg/kg; routes IV, IM, SC, PO, inhaled, "
        "nebulised, intranasal, topical, other; HH:MM clinic time on the reaction's day).",
    ),
    treatment_note: str | None = typer.Option(
        None, "--treatment-note", help="Notes on the treatment (text)."
    ),
    *,
    call: RegistryCall,
) -> None:
    """Record a breakthrough reaction: the protocol stops; the re-plan and its continuation are stored."""
    svc = _svc()
    inp = validated(
        svc.BreakthroughIn,
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
        diastolic_bp_mmhg=diastolic_bp_mmhg,
        temperature_c=temperature_c,
        tryptase_ng_ml=tryptase_ng_ml,
        tryptase_at=tryptase_at,
        scale=scale,
        phenotype=phenotype,
        bronchodilator_response=bronchodilator_response,
        treatments=list(treatment),
        treatment=treatment_note,
    )
    call.emit(svc.view_json(call.write(svc.record_breakthrough, inp)), _render_breakthrough)


def _render_breakthrough(r: dict[str, Any]) -> None:
    rp = r["replan"]
    console.print(
        f"[bold red]reaction {r['reaction']['id']}[/bold red] at step {rp['reaction_step']} "
        f"({rp['severity']})"
    )
    g = r["grade"]
    console.print(f"grade {g['grade']} ({g['scale']}, {'computed' if g['computed'] else 'clinician'})")
    if g["scale"] != "brown2004":
        b = g["brown"]
        console.print(f"Brown 2004: {b['grade']} ({'computed' if b['computed'] else 'clinician'})")
    ph = r["phenotype"]
    console.print(f"phenotype {ph['phenotype']} ({'computed' if ph['computed'] else 'chosen'})")
    console.print("applied: " + ", ".join(rp["applied"]))
    steps = [s["step_no"] for s in r["continuation"]]
    console.print(
        f"continuation {r['replan_no']}: steps {steps[0]}-{steps[-1]}" if steps else "no continuation today"
    )
    print_warnings(rp["warnings"])


@session_app.command("baseline")
@writes
def baseline(
    session: int = SESSION_OPT,
    tryptase_ng_ml: str | None = typer.Option(
        None, "--tryptase-ng-ml", help="Baseline serum tryptase (ng/mL = ug/L)."
    ),
    tryptase_at: str | None = typer.Option(
        None, "--tryptase-at", help="When it was sampled, clinic time (default now)."
    ),
    systolic_bp_mmhg: str | None = typer.Option(None, "--systolic-bp-mmhg", help="Systolic BP (mmHg)."),
    diastolic_bp_mmhg: str | None = typer.Option(None, "--diastolic-bp-mmhg", help="Diastolic BP (mmHg)."),
    heart_rate_bpm: str | None = typer.Option(None, "--heart-rate-bpm", help="Heart rate (/min)."),
    spo2_pct: str | None = typer.Option(None, "--spo2-pct", help="SpO2 (%)."),
    temperature_c: str | None = typer.Option(None, "--temperature-c", help="Temperature (°C)."),
    *,
    call: RegistryCall,
) -> None:
    """Record the session's baseline before the first step: tryptase and/or vital signs."""
    svc = _svc()
    inp = validated(
        svc.BaselineIn,
        session_id=session,
        tryptase_ng_ml=tryptase_ng_ml,
        tryptase_at=tryptase_at,
        systolic_bp_mmhg=systolic_bp_mmhg,
        diastolic_bp_mmhg=diastolic_bp_mmhg,
        heart_rate_bpm=heart_rate_bpm,
        spo2_pct=spo2_pct,
        temperature_c=temperature_c,
    )
    call.emit(svc.view_json(call.write(svc.record_baseline, inp)), _render_row)


@session_app.command("finish")
@writes
def finish(
    session: int = SESSION_OPT,
    outcome: str = typer.Option(..., "--outcome", help="completed, completed-with-reactions or stopped."),
    ended_at: str | None = typer.Option(None, "--ended-at", help="End, clinic time (default now)."),
    *,
    call: RegistryCall,
) -> None:
    """Finish the session (completed only when the last step of its active protocol was given)."""
    svc = _svc()
    inp = validated(svc.FinishIn, session_id=session, outcome=outcome, ended_at=ended_at)
    call.emit(svc.view_json(call.write(svc.finish_session, inp)), _render_row)


@session_app.command("show")
@writes  # takes --by/--idempotency-key like the other session commands (scripts pass them alike); unused
def show(session: int = SESSION_OPT, *, call: RegistryCall) -> None:
    """A session: protocols with each step's status and clinic-local time, reactions, re-plans, next step."""
    svc = _svc()
    call.emit(svc.view_json(call.read(svc.session_view, session)), _render_view)
