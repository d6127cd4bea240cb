"""``immunoplan course plan|show``: plan a treatment course through the service layer
(`immunoplan.services.records.courses`) and read one back.

- ``--kind scit``: a SCIT course of ``scit_products`` (``--product``, ``--regimen``: conventional, cluster or
  rush); the service computes the dated schedule, optionally with omalizumab ``--omalizumab pre`` (needs
  ``--omalizumab-lead-weeks``) or ``concurrent`` at the label dose (``--age-years``, ``--weight-kg``,
  ``--total-ige-iu-ml``, ``--indication``, ``--region``). The registry course kind follows the regimen (rush
  -> RIT, cluster -> cluster, conventional -> SCIT).
- ``--kind omalizumab``: omalizumab alone at the label dose and interval.

A regimen whose schedule is UNVERIFIED, or an omalizumab label lookup without a dose, exits 2 with one stderr
line naming the rule and its status. ``--json`` prints ``{"id": ..., "schedule": [...], ...}``.
"""

from __future__ import annotations

from typing import Any

import typer

from immunoplan import clock
from immunoplan.cli.output import console, print_warnings
from immunoplan.cli.registry_options import (
    COURSE_OPT,
    PATIENT_OPT,
    RegistryCall,
    reads,
    validated,
    writes,
)
from immunoplan.errors import InvalidInput

course_app = typer.Typer(help="Treatment courses: plan SCIT (with or without omalizumab) or omalizumab.")
KINDS = ("scit", "omalizumab")


def _render(r: dict[str, Any]) -> None:
    c = r["course"]
    console.print(
        f"[bold]course {r['id']}[/bold] {c['kind']} {c.get('product') or c.get('drug') or ''} "
        f"from {c['started_on']}"
        + (" [replayed: already planned with this key]" if r.get("replayed") else "")
    )
    for day in r.get("calendar") or []:
        parts = []
        if day.get("scit"):
            v = day["scit"]
            doses = ", ".join(
                f"{i.get('clock') or ''} {i['dose']} {i['unit']} (vial {i['vial']}, {i['volume_ml']} mL)"
                for i in v["injections"]
            )
            parts.append(f"visit {v['visit']} {v['phase']}: {doses}")
        if day.get("omalizumab"):
            parts.append(f"omalizumab {day['omalizumab']['dose_mg']} mg")
        console.print(f"  {day['date']}  " + "; ".join(parts))
    print_warnings(r.get("warnings") or [])


@course_app.command("plan")
@writes
def plan(
    patient: int = PATIENT_OPT,
    kind: str = typer.Option(..., "--kind", help="scit (immunotherapy) or omalizumab."),
    start: str = typer.Option(..., "--start", help="First injection / first dose date, YYYY-MM-DD."),
    product: str = typer.Option(None, "--product", help="scit_products product id, e.g. alutard-sq-hdm."),
    regimen: str = typer.Option(None, "--regimen", help="Regimen id: conventional, cluster or rush."),
    start_time: str = typer.Option(None, "--start-time", help="First injection clock time, HH:MM (clinic)."),
    maintenance_interval_weeks: str = typer.Option(
        None, "--maintenance-interval-weeks", help="Maintenance interval (weeks; default: the product's)."
    ),
    omalizumab: str = typer.Option("none", "--omalizumab", help="With SCIT: none, pre or concurrent."),
    omalizumab_lead_weeks: str = typer.Option(
        None, "--omalizumab-lead-weeks", help="Pre-treatment: weeks before the first injection."
    ),
    age_years: str = typer.Option(None, "--age-years", help="Omalizumab label dose: age (years)."),
    weight_kg: str = typer.Option(None, "--weight-kg", help="Omalizumab label dose: weight (kg)."),
    total_ige_iu_ml: str = typer.Option(
        None, "--total-ige-iu-ml", help="Omalizumab label dose: pre-treatment total IgE (IU/mL)."
    ),
    indication: str = typer.Option("asthma", "--indication", help="Omalizumab label indication."),
    region: str = typer.Option("us", "--region", help="Omalizumab label: us or eu."),
    override_reason: str = typer.Option(
        None, "--override-reason", help="Why an UNVERIFIED omalizumab table may dose (recorded)."
    ),
    *,
    call: RegistryCall,
) -> None:
    """Plan a course and store it with its schedule; prints ``id`` and ``schedule``."""
    from immunoplan.services.records import courses

    if kind not in KINDS:
        raise InvalidInput("--kind", f"unknown course kind {kind!r}", ", ".join(KINDS))
    dosing = {
        "age_years": age_years,
        "weight_kg": weight_kg,
        "total_ige_iu_ml": total_ige_iu_ml,
        "indication": indication,
        "region": region,
    }
    if kind == "scit":
        data: Any = validated(
            courses.ImmunotherapyCourseIn,
            **dosing,
            product=product,
            regimen=regimen,
            start=start,
            start_time=start_time,
            maintenance_interval_weeks=maintenance_interval_weeks,
            omalizumab=omalizumab,
            omalizumab_lead_weeks=omalizumab_lead_weeks,
            omalizumab_override_reason=override_reason,
        )
        use_case: Any = courses.plan_immunotherapy
    else:
        for option, value in (("--product", product), ("--regimen", regimen), ("--start-time", start_time)):
            if value is not None:
                raise InvalidInput(option, "is for --kind scit", "omit it with --kind omalizumab")
        if omalizumab != "none":
            raise InvalidInput("--omalizumab", "is for --kind scit (omalizumab with immunotherapy)", "none")
        data = validated(courses.OmalizumabCourseIn, **dosing, start=start, override_reason=override_reason)
        use_case = courses.plan_omalizumab_course
    call.emit(call.write(use_case, patient, data), _render)


def _render_shown(r: dict[str, Any]) -> None:
    c = r["course"]
    console.print(
        f"[bold]course {c['id']}[/bold] {c['kind']} {c.get('product') or c.get('drug') or ''} "
        f"(product {c['product_id'] or '-'}, regimen {c['regimen_id'] or '-'}) for {r['pseudo_id']}, "
        f"{c['status']}, next due {c['next_due_on'] or '-'}"
    )
    for o in r["omalizumab_administrations"]:
        console.print(f"  omalizumab {o['dose_mg']} mg at {o['given_at']}")


@course_app.command("show")
@reads
def show(course: int = COURSE_OPT, *, call: RegistryCall) -> None:
    """A course as stored: columns, the calendar it was planned with, its omalizumab doses."""
    from immunoplan.services.records import courses

    result = call.read(courses.show_course, course)
    for o in result["omalizumab_administrations"]:
        o["given_at"] = clock.iso_local(o["given_at"])  # clinic-local with its offset
    call.emit(result, _render_shown)


def register(app: typer.Typer) -> None:
    app.add_typer(course_app, name="course")
