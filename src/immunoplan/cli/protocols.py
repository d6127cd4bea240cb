"""CLI commands for treatment protocols: ``desensitization``, ``scit schedule|next-dose``, ``oit schedule``,
``grade``. Thin: parse options, call `immunoplan.services.protocols`, print Rich tables or one JSON object."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from immunoplan.cli.output import JSON_OPTION_HELP, console, emit, err_console, to_jsonable
from immunoplan.services import protocols as svc
from immunoplan.sheets.render import num


def _read_json(field: str, path: str) -> Any:
    import json
    from pathlib import Path

    from immunoplan.errors import InvalidInput

    p = Path(path)
    if not p.is_file():
        raise InvalidInput(field, f"file {path!r} not found", "a JSON file")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            field, f"{path!r} is not valid JSON ({exc.__class__.__name__})", "a JSON file"
        ) from None


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(
            c, justify="right" if c not in ("dilution", "when", "text", "rule", "status") else "left"
        )
    for r in rows:
        t.add_row(
            *[num(x, 4) if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x) for x in r]
        )
    return t


def _columns(items: list[dict[str, Any]], keys: tuple[str, ...]) -> list[list[Any]]:
    """Table rows: the values of ``keys`` from each item, in order."""
    return [[item[k] for k in keys] for item in items]


_BAG_COLUMNS = ("bag", "dilution", "volume_ml", "concentration_mg_ml", "mg_in_bag", "volume_infused_ml")
_STEP_COLUMNS = ("step", "bag", "rate_ml_h", "minutes", "volume_ml", "dose_mg", "cumulative_mg")


def _print_warnings(warnings: list[str]) -> None:
    for w in warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")


def _write_sheet(sheet: str, kind: str, data: dict[str, Any], page_size: str, as_json: bool) -> str:
    """Write the ``kind`` sheet(s) for ``data`` to ``sheet`` (.pdf or .html); say where unless ``--json``."""
    from immunoplan.sheets import write_sheet

    path = write_sheet(sheet, kind, data, page_size=page_size)
    if not as_json:
        err_console.print(f"sheet written: {path}")
    return str(path)


def _print_basis_and_warnings(d: dict[str, Any]) -> None:
    for b in d.get("basis", []) or []:
        console.print(
            f"[dim]basis: {b['id']} v{b['version']} {b.get('rule') or ''} [{b['status']}] {b['source']}[/dim]"
        )
    _print_warnings(d.get("warnings", []) or [])


def _render_rdd(result: Any) -> None:
    d = to_jsonable(result)
    if d.get("kind") != "plan":
        console.print(f"[bold red]{d['kind']}: not for administration[/bold red]")
    console.print(f"[bold]{d['drug']} {num(d['target_mg'])} mg - {d['scheme']}[/bold]")
    console.print(
        _table(
            "Bags",
            list(_BAG_COLUMNS),
            _columns(d["bags"], _BAG_COLUMNS),
        )
    )
    console.print(
        _table(
            "Steps",
            [*_STEP_COLUMNS, "start"],
            [
                [*row, s["start_clock"] or f"+{num(s['start_minute'], 1)} min"]
                for row, s in zip(_columns(d["steps"], _STEP_COLUMNS), d["steps"], strict=True)
            ],
        )
    )
    console.print(
        f"total_minutes: {num(d['total_minutes'], 3)}"
        + (
            f"  (start {d['start_clock']}, end {d['end_clock']}, observe until {d['observe_until_clock']})"
            if d.get("start_clock")
            else ""
        )
    )
    prep = d.get("preparation")
    if prep:
        console.print(
            _table(
                f"Preparation from stock {num(prep['stock_mg_ml'])} mg/mL (measurable volumes)",
                ["bag", "stock exact mL", "stock drawn mL", "dose error mg", "error %"],
                [
                    [
                        b["bag"],
                        b["drug_volume_exact_ml"],
                        b["drug_volume_measured_ml"],
                        b["dose_error_mg"],
                        b["dose_error_pct"] if b["dose_error_pct"] is not None else "-",
                    ]
                    for b in prep["bags"]
                ],
            )
        )
        console.print(
            f"dose with measured volumes: {num(prep['total_dose_prepared_mg'], 4)} mg "
            f"(error {num(prep['total_dose_error_mg'], 4)} mg, {num(prep['total_dose_error_pct'], 3)} %)"
        )
    rp = d.get("replan")
    if rp:
        console.print(f"[bold]Breakthrough reaction at step {rp['reaction_step']} ({rp['severity']})[/bold]")
        for o in rp["options"]:
            if o["applies"]:
                mark = (
                    "APPLIED"
                    if o["applied"]
                    else ("clinician choice" if o["clinician_choice_only"] else "option")
                )
                console.print(f"- [{mark}] {o['id']} [{o['basis']['status']}]: {o['text']}")
        res = rp.get("resumption")
        if res:
            console.print(
                _table(
                    f"Resume at step {res['restart_at_step']} (minutes from resumption)",
                    ["#", *_STEP_COLUMNS[1:]],
                    _columns(res["steps"], _STEP_COLUMNS),
                )
            )
            console.print(
                f"total dose {num(res['total_dose_mg'], 4)} mg; "
                f"over target {num(res['excess_over_target_mg'], 4)}"
                f" mg; feasible: {res['feasible']} {'; '.join(res['problems'])}"
            )
        _print_warnings(rp.get("warnings", []))
    _print_basis_and_warnings(d)


def _render_grades(result: Any) -> None:
    d = to_jsonable(result)
    rows = [
        [
            g["scale"],
            g["grade"] if g["grade"] is not None else "-",
            g.get("suffix") or "",
            g["label"],
            g["basis"]["status"],
            g["scale_version"],
        ]
        for g in d["grades"]
    ]
    console.print(_table("Reaction grade", ["scale", "grade", "suffix", "text", "status", "version"], rows))
    for g in d["grades"]:
        if g.get("report"):
            console.print(f"{g['scale']}: {g['report']}")
        for r in g["reasons"]:
            console.print(f"[dim]{g['scale']}: {r}[/dim]")
        for w in g["warnings"]:
            console.print(f"[yellow]warning ({g['scale']}):[/yellow] {w}")


def _render_scit_schedule(result: Any) -> None:
    d = to_jsonable(result)
    console.print(f"[bold]{d['product_name']} - {d['regimen_name']} ({d['kind']})[/bold]")
    rows = []
    for v in d["visits"]:
        for i in v["injections"]:
            rows.append(
                [
                    v["visit"],
                    v["date"],
                    v["week"] if v["week"] is not None else "",
                    v["phase"][:5],
                    i["vial"],
                    i["volume_ml"],
                    num(i["dose"]) + ("*" if i.get("status") else ""),
                    i["clock"] or f"+{i['offset_minutes']}m",
                ]
            )
    unit = d["visits"][0]["injections"][0]["unit"] if d["visits"] else ""
    console.print(
        _table(
            "Visits (* = row not VERIFIED)", ["#", "date", "week", "phase", "vial", "mL", unit, "time"], rows
        )
    )
    om = d.get("omalizumab")
    if om and om["administrations"]:
        console.print(
            _table(
                f"Omalizumab ({om['mode']})",
                ["n", "date", "dose_mg", "same day as SCIT"],
                [[a["n"], a["date"], a["dose_mg"], a["same_day_as_scit"]] for a in om["administrations"]],
            )
        )
    console.print(f"observe at least {d['observation_minutes']} min after each injection")
    _print_basis_and_warnings(d)


def _render_next_dose(result: Any) -> None:
    d = to_jsonable(result)
    if d["kind"] == "dose":
        x = d["dose"]
        console.print(
            f"[bold]{d['date']}: give {num(x['dose'])} {x['unit']} = vial {x['vial']}, "
            f"{num(x['volume_ml'], 3)} mL[/bold] ({d['phase']}; next due {d['next_due']})"
        )
    else:
        console.print(f"[bold red]{d['kind']}[/bold red] on {d['date']}")
    if len(d.get("visit_injections") or []) > 1:
        console.print(
            "injections today: "
            + ", ".join(
                f"{num(x['dose'])} {x['unit']} (vial {x['vial']}, {num(x['volume_ml'], 3)} mL)"
                for x in d["visit_injections"]
            )
        )
    if d["rule"]:
        r = d["rule"]
        console.print(f"rule: {r['id']} [{r['basis']['status']}] {r['text']}\nsource: {r['basis']['source']}")
    console.print(
        _table(
            "Rules evaluated",
            ["rule", "fired", "dose", "status"],
            [
                [r["id"], r["fired"], r["dose"] if r["dose"] is not None else "-", r["basis"]["status"]]
                for r in d["rules"]
            ],
        )
    )
    _print_warnings(d["warnings"])


def _render_oit(result: Any) -> None:
    d = to_jsonable(result)
    console.print(f"[bold]{d['name']}[/bold] ({d['kind']})")
    console.print(
        f"omalizumab from {d['omalizumab_start']}; OIT from {d['oit_start']}"
        + (f"; omalizumab stops {d['omalizumab_stop']}" if d["omalizumab_stop"] else "")
    )
    if d["omalizumab_phases"]:
        console.print(
            _table(
                "Omalizumab",
                ["from", "to", "fraction", "mg/month", "text"],
                [
                    [
                        p["start"],
                        p["end"],
                        p["fraction"],
                        p["mg_per_month"] if p["mg_per_month"] is not None else "-",
                        p["text"],
                    ]
                    for p in d["omalizumab_phases"]
                ],
            )
        )
    console.print(
        _table(
            f"Up-dosing ({d['unit']})",
            ["visit", "date", "week", "dose", "source", "omalizumab"],
            [
                [
                    v["visit"],
                    v["date"],
                    v["week"],
                    v["dose_mg"] if v["dose_mg"] is not None else "(set)",
                    v["dose_source"],
                    v["omalizumab_phase"] + (" !" if v["warning"] else ""),
                ]
                for v in d["visits"]
            ],
        )
    )
    _print_basis_and_warnings(d)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    oit = typer.Typer(help="Oral immunotherapy with omalizumab cover.", no_args_is_help=True)
    app.add_typer(oit, name="oit")

    @oit.command("schedule")
    def oit_schedule(
        regimen: str = typer.Option(
            ...,
            "--regimen",
            help="brandstrom-peanut, langlois-multifood, andorf-multifood, macginnitie-peanut.",
        ),
        omalizumab_start: str = typer.Option(
            ..., "--omalizumab-start", help="First omalizumab date YYYY-MM-DD."
        ),
        doses_mg: str | None = typer.Option(
            None, "--doses", help="Up-dosing doses, comma-separated (mg protein)."
        ),
        weight_kg: str | None = typer.Option(None, "--weight-kg"),
        arm: str | None = typer.Option(
            None, "--arm-mg-per-kg-month", help="Langlois arm: 8 or 16 mg/kg/month."
        ),
        pretreatment_weeks: str | None = typer.Option(None, "--pretreatment-weeks"),
        as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
    ) -> None:
        """OIT up-dosing calendar with omalizumab start, taper and warnings."""
        result = svc.plan_oit(
            regimen=regimen,
            omalizumab_start=omalizumab_start,
            doses_mg=doses_mg,
            weight_kg=weight_kg,
            arm_mg_per_kg_month=arm,
            pretreatment_weeks=pretreatment_weeks,
        )
        emit(result, as_json, _render_oit)

    scit = typer.Typer(
        help="Subcutaneous allergen immunotherapy: schedules and next dose.", no_args_is_help=True
    )
    app.add_typer(scit, name="scit")

    @scit.command("schedule")
    def scit_schedule(
        product: str = typer.Option("alutard-sq-hdm", "--product", help="Product id (catalogue)."),
        regimen: str = typer.Option(..., "--regimen", help="conventional, cluster or rush."),
        start: str = typer.Option(..., "--start", help="First visit date YYYY-MM-DD."),
        start_time: str | None = typer.Option(
            None, "--start-time", help="Clock time of the first injection."
        ),
        maintenance_interval_weeks: str | None = typer.Option(None, "--maintenance-interval-weeks"),
        maintenance_visits: str = typer.Option(
            "3", "--maintenance-visits", help="Maintenance visits to list."
        ),
        sheet: str | None = typer.Option(
            None, "--sheet", help="Write an injection record sheet (.pdf or .html)."
        ),
        page_size: str = typer.Option("A4", "--page-size", help="A4 or Letter."),
        omalizumab: str | None = typer.Option(None, "--omalizumab", help="pre or concurrent."),
        omalizumab_lead_weeks: str | None = typer.Option(
            None, "--omalizumab-lead-weeks", help="Weeks of omalizumab before SCIT (pre)."
        ),
        age_years: str | None = typer.Option(None, "--age-years"),
        weight_kg: str | None = typer.Option(None, "--weight-kg"),
        total_ige_iu_ml: str | None = typer.Option(None, "--total-ige-iu-ml"),
        indication: str = typer.Option("asthma", "--indication"),
        region: str = typer.Option("us", "--region"),
        as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
    ) -> None:
        """Dated SCIT visits (build-up and maintenance), optionally with omalizumab in the same calendar."""
        result = svc.plan_scit_schedule(
            product=product,
            regimen=regimen,
            start=start,
            start_time=start_time,
            maintenance_interval_weeks=maintenance_interval_weeks,
            maintenance_visits=maintenance_visits,
            omalizumab=omalizumab,
            omalizumab_lead_weeks=omalizumab_lead_weeks,
            age_years=age_years,
            weight_kg=weight_kg,
            total_ige_iu_ml=total_ige_iu_ml,
            indication=indication,
            region=region,
        )
        if sheet:
            _write_sheet(sheet, "scit", result.to_dict(), page_size, as_json)
        emit(result, as_json, _render_scit_schedule)

    @scit.command("next-dose")
    def scit_next_dose(
        history: str = typer.Option(..., "--history", help="Course history JSON file."),
        on: str = typer.Option(..., "--date", help="Date of the planned injection YYYY-MM-DD."),
        ruleset: str | None = typer.Option(None, "--ruleset", help="norway (default) or aaaai."),
        new_vial: bool = typer.Option(False, "--new-vial", help="First dose from a new vial/lot."),
        as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
    ) -> None:
        """Next SCIT dose from the history: dose, the rule that fired and its source."""
        data = _read_json("history", history)
        emit(svc.scit_next_dose(data, on, ruleset=ruleset, new_vial=new_vial), as_json, _render_next_dose)

    @app.command("grade")
    def grade_cmd(
        scale: str = typer.Option(
            ...,
            "--scale",
            help="wao2010, wao2017, brown2004, ctcae-irr, ctcae-allergic, seed001, phenotype, or all.",
        ),
        symptom: list[str] = typer.Option(
            [],
            "--symptom",
            help="Symptom code (repeat): " + ", ".join(svc.choices()["symptoms"]) + ".",
        ),
        bronchodilator_response: str | None = typer.Option(
            None, "--bronchodilator-response", help="responds, not-responding, worsening."
        ),
        pef_drop_pct: str | None = typer.Option(None, "--pef-drop-pct", help="PEF/FEV1 drop in %."),
        epinephrine_minutes: str | None = typer.Option(
            None, "--epinephrine-minutes", help="Minutes from onset to epinephrine (omit: not given)."
        ),
        onset_minutes: str | None = typer.Option(
            None, "--onset-minutes", help="Onset after dose/injection (min)."
        ),
        first_symptom: str | None = typer.Option(None, "--first-symptom", help="First symptom code."),
        treatment: list[str] = typer.Option([], "--treatment", help="Treatment given (repeat)."),
        intervention: str | None = typer.Option(
            None, "--intervention", help="CTCAE: none, oral, iv, urgent."
        ),
        infusion_interrupted: bool = typer.Option(False, "--infusion-interrupted"),
        no_prompt_response: bool = typer.Option(
            False, "--no-prompt-response", help="Not rapidly responsive to treatment (CTCAE IRR grade 3)."
        ),
        recurrence: bool = typer.Option(False, "--recurrence"),
        hospitalization: bool = typer.Option(False, "--hospitalization"),
        life_threatening: bool = typer.Option(False, "--life-threatening"),
        persistent: bool = typer.Option(
            False, "--persistent", help="Symptoms persistent (seed 001 moderate)."
        ),
        death: bool = typer.Option(False, "--death"),
        vasovagal: bool = typer.Option(False, "--vasovagal"),
        biomarker: list[str] = typer.Option(
            [], "--biomarker", help="tryptase_elevated, il6_elevated, skin_test_positive."
        ),
        complement_prone_drug: bool = typer.Option(False, "--complement-prone-drug"),
        sbp_mmhg: str | None = typer.Option(
            None, "--sbp-mmhg", help="Systolic BP (recorded, not graded on)."
        ),
        spo2_pct: str | None = typer.Option(None, "--spo2-pct", help="SpO2 % (recorded, not graded on)."),
        as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
    ) -> None:
        """Grade a reaction from structured findings; the grade stores its scale and version."""
        result = svc.grade_reaction(
            scale,
            symptoms=tuple(symptom),
            bronchodilator_response=bronchodilator_response,
            pef_drop_pct=pef_drop_pct,
            epinephrine_minutes=epinephrine_minutes,
            onset_minutes=onset_minutes,
            first_symptom=first_symptom,
            treatments=tuple(treatment),
            intervention=intervention,
            infusion_interrupted=infusion_interrupted,
            prompt_response=False if no_prompt_response else None,
            recurrence=recurrence,
            hospitalization=hospitalization,
            life_threatening=life_threatening,
            persistent=persistent,
            death=death,
            vasovagal=vasovagal,
            biomarkers=tuple(biomarker),
            complement_prone_drug=complement_prone_drug,
            sbp_mmhg=sbp_mmhg,
            spo2_pct=spo2_pct,
        )
        emit(result, as_json, _render_grades)

    @app.command("desensitization")
    def desensitization(
        drug: str = typer.Option(..., "--drug", help="Drug name (printed on the sheets)."),
        dose_mg: str = typer.Option(..., "--dose-mg", help="Target dose in mg."),
        bag_volume_ml: str = typer.Option(..., "--bag-volume-ml", help="Final bag volume in mL."),
        final_rate_ml_h: str = typer.Option(..., "--final-rate-ml-h", help="Final infusion rate in mL/h."),
        bags: int = typer.Option(
            3,
            "--bags",
            help="Number of bags: 3 (12-step, VERIFIED) or 4 (16-step, "
            "UNVERIFIED rates); 1-2 are UNVERIFIED placeholders.",
        ),
        dilution_bag_volume_ml: str | None = typer.Option(
            None, "--dilution-bag-volume-ml", help="Volume of each dilution bag (default: bag volume)."
        ),
        step_minutes: str | None = typer.Option(
            None, "--step-minutes", help="Minutes per step (default 15)."
        ),
        first_rate_variant: bool = typer.Option(
            False, "--first-rate-2-5", help="Start bag 1 at 2.5 (x R/80) mL/h (Tsao 2022, SECONDARY)."
        ),
        rates: str | None = typer.Option(
            None,
            "--rates",
            help="Custom rate table in mL/h, bags separated by |, e.g. '2,5,10,20|5,10,20,40|10,20,40,80'.",
        ),
        start: str | None = typer.Option(None, "--start", help="Start time HH:MM (or YYYY-MM-DDTHH:MM)."),
        stock_mg_ml: str | None = typer.Option(
            None, "--stock-mg-ml", help="Stock concentration: adds measurable preparation volumes."
        ),
        premedication: str | None = typer.Option(None, "--premedication", help="Premedication regimen id."),
        initial_symptom: list[str] = typer.Option(
            [], "--initial-symptom", help="Symptom of the initial reaction (flushing, respiratory)."
        ),
        override_unverified: str | None = typer.Option(
            None, "--override-unverified", help="Reason for using UNVERIFIED rules (recorded)."
        ),
        reaction_step: int | None = typer.Option(
            None, "--reaction-step", help="Breakthrough reaction at this step."
        ),
        severity: str | None = typer.Option(
            None, "--severity", help="Reaction severity: mild, moderate, severe."
        ),
        minutes_into_step: str | None = typer.Option(
            None, "--minutes-into-step", help="Minutes into the reaction step when stopped."
        ),
        reaction_symptom: list[str] = typer.Option(
            [], "--reaction-symptom", help="Symptom of the breakthrough."
        ),
        steps_back: int = typer.Option(1, "--steps-back", help="Resume 1 or 2 steps back (mild reactions)."),
        choose: str | None = typer.Option(None, "--choose", help="Clinician's chosen option id (recorded)."),
        sheet: str | None = typer.Option(
            None, "--sheet", help="Write pharmacy + nursing sheets (.pdf or .html)."
        ),
        page_size: str = typer.Option("A4", "--page-size", help="A4 or Letter."),
        as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
    ) -> None:
        """Desensitization plan: bags, steps, clock times, preparation; re-plan after a reaction."""
        result = svc.plan_desensitization(
            drug=drug,
            dose_mg=dose_mg,
            bag_volume_ml=bag_volume_ml,
            final_rate_ml_h=final_rate_ml_h,
            bags=bags,
            dilution_bag_volume_ml=dilution_bag_volume_ml,
            step_minutes=step_minutes,
            first_rate_variant=first_rate_variant,
            rates=rates,
            start=start,
            stock_mg_ml=stock_mg_ml,
            premedication_regimen=premedication,
            initial_symptoms=tuple(initial_symptom),
            override_reason=override_unverified,
        )
        out = result.to_dict()
        if reaction_step is not None or severity is not None:
            if reaction_step is None or severity is None:
                from immunoplan.errors import InvalidInput

                missing = "--reaction-step" if reaction_step is None else "--severity"
                raise InvalidInput(
                    missing,
                    "re-planning needs both --reaction-step and --severity",
                    "--reaction-step N --severity mild|moderate|severe",
                )
            out["replan"] = svc.replan_desensitization(
                result,
                reaction_step=reaction_step,
                severity=severity,
                minutes_into_step=minutes_into_step,
                symptoms=tuple(reaction_symptom),
                steps_back=steps_back,
                chosen=choose,
            ).to_dict()
        if sheet:
            out["sheet"] = _write_sheet(sheet, "rdd", out, page_size, as_json)
        emit(out, as_json, _render_rdd)
