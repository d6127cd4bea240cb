"""``immunoplan visit record``: a visit with its questionnaires (scored), spirometry (GLI, the patient's age
at the visit date) and laboratory results, in one transaction
(`immunoplan.services.records.visits.record_visit_with_results`, input model `VisitIn`).

A visit already recorded for the same patient, code and date exits 2 naming it (``visit N``): correct it with
``immunoplan amend --kind visit --id N --set ... --reason ...``.
"""

from __future__ import annotations

from typing import Any

import typer

from immunoplan.cli.output import console
from immunoplan.cli.registry_options import PATIENT_OPT, RegistryCall, id_option, validated, writes

visit_app = typer.Typer(help="Visits: record one with its questionnaires, spirometry and laboratory results.")


def _items(name: str) -> Any:
    return typer.Option(None, f"--{name}", help=f"{name.upper()} item responses, comma-separated, in order.")


def _render(r: dict[str, Any]) -> None:
    v = r["visit"]
    console.print(
        f"[bold]visit {r['id']}[/bold] {v['code']} on {v['visit_on']} for {r['pseudo_id']} "
        f"(age {r['age_years_at_visit']} at the visit)"
    )
    for name, q in r["questionnaires"].items():
        console.print(f"  {name}: {q['score']}" + (f" ({q['category']})" if q.get("category") else ""))
    sp = r.get("spirometry") or {}
    for key in ("fev1", "fvc", "fev1_fvc"):
        if sp.get(key):
            x = sp[key]
            console.print(f"  {key}: {x['observed']} (z {x['z']}, {x['percent_predicted']} % predicted)")
    for x in r["measurements"]:
        if x["kind"] not in ("fev1_l", "fvc_l", "fev1_fvc_pct", "fev1_pct_pred"):
            console.print(f"  {x['kind']}: {x['value']} {x['unit']}")
    if r.get("replayed"):
        console.print("[yellow]already recorded with this idempotency key: nothing written[/yellow]")


@visit_app.command("record")
@writes
def record(
    patient: int = PATIENT_OPT,
    code: str = typer.Option(
        ..., "--code", help="baseline, week12, week24, week48, month12, screening, unscheduled."
    ),
    on: str = typer.Option(..., "--on", help="Visit date YYYY-MM-DD (clinic date)."),
    course: int | None = id_option("--course", "The course this visit belongs to (id).", required=False),
    asthma_step: str = typer.Option(None, "--asthma-step", help="GINA step 1-5."),
    medication_score: str = typer.Option(None, "--medication-score", help="Daily medication burden score."),
    notes: str = typer.Option(None, "--notes", help="Free text (never exported for research)."),
    act: str = _items("act"),
    c_act: str = _items("c-act"),
    acq5: str = _items("acq5"),
    acq6: str = _items("acq6"),
    acq7: str = _items("acq7"),
    aqlq: str = _items("aqlq"),
    mini_aqlq: str = _items("mini-aqlq"),
    sex: str = typer.Option(
        None, "--sex", help="female or male for the reference equation (default: patient's)."
    ),
    height_cm: str = typer.Option(None, "--height-cm", help="Height (cm), required with spirometry."),
    fev1_l: str = typer.Option(None, "--fev1-l", help="FEV1 (L)."),
    fvc_l: str = typer.Option(None, "--fvc-l", help="FVC (L)."),
    equation: str = typer.Option(None, "--equation", help="gli-global-2022 (default) or gli2012."),
    ethnicity: str = typer.Option(None, "--ethnicity", help="GLI-2012 only."),
    total_ige_iu_ml: str = typer.Option(None, "--total-ige-iu-ml", help="Total IgE (IU/mL)."),
    sige_kua_l: str = typer.Option(None, "--sige-kua-l", help="Allergen-specific IgE (kUA/L)."),
    sige_allergen: str = typer.Option(
        None, "--sige-allergen", help="Allergen code of --sige-kua-l, e.g. d1."
    ),
    eosinophils_10e9_l: str = typer.Option(None, "--eosinophils-10e9-l", help="Blood eosinophils (10^9/L)."),
    feno_ppb: str = typer.Option(None, "--feno-ppb", help="FeNO (ppb)."),
    pef_pct_pred: str = typer.Option(None, "--pef-pct-pred", help="PEF (% predicted)."),
    *,
    call: RegistryCall,
) -> None:
    """Record a visit; prints the visit, the scored questionnaires, the GLI results and the measurements."""
    from immunoplan.services.records import visits

    data = validated(
        visits.VisitIn,
        code=code,
        visit_on=on,
        course_id=course,
        asthma_step=asthma_step,
        medication_score=medication_score,
        notes=notes,
        act=act,
        c_act=c_act,
        acq5=acq5,
        acq6=acq6,
        acq7=acq7,
        aqlq=aqlq,
        mini_aqlq=mini_aqlq,
        sex=sex,
        height_cm=height_cm,
        fev1_l=fev1_l,
        fvc_l=fvc_l,
        equation=equation,
        ethnicity=ethnicity,
        total_ige_iu_ml=total_ige_iu_ml,
        sige_kua_l=sige_kua_l,
        sige_allergen=sige_allergen,
        eosinophils_10e9_l=eosinophils_10e9_l,
        feno_ppb=feno_ppb,
        pef_pct_pred=pef_pct_pred,
    )
    call.emit(call.write(visits.record_visit_with_results, patient, data), _render)


def register(app: typer.Typer) -> None:
    app.add_typer(visit_app, name="visit")
