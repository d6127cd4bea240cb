"""CLI commands: ``immunoplan omalizumab dose|schedule|simulate|nomogram``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from immunoplan.cli.output import JSON_OPTION_HELP, console, emit, progress_bar
from immunoplan.errors import InvalidInput
from immunoplan.reference import limits
from immunoplan.services import omalizumab as svc


def _help(text: str, field: str) -> str:
    """Option help ending with the field limit's accepted range (`immunoplan.reference.limits`)."""
    return limits.limit(field).help(text)


PROGRESS_MIN_PATIENTS = 2000

omalizumab_app = typer.Typer(
    help="Omalizumab: label dosing, treatment timelines, PK/PD simulation.", no_args_is_help=True
)


def _render_dose(r: Any) -> None:
    d = r.to_dict()
    t = Table(title=f"omalizumab label dose: {d['status']}")
    t.add_column("field")
    t.add_column("value")
    if d["dose_mg"] is not None:
        t.add_row("dose", f"{d['dose_mg']} mg every {d['interval_weeks']} weeks")
        t.add_row(
            "injections", " + ".join(f"{s} mg" for s in d["injections"]) + f" ({d['injection_sites']} sites)"
        )
    if d["cell"]:
        t.add_row("cell", f"IgE {d['cell']['ige_band']} IU/mL x weight {d['cell']['weight_band']} kg")
    if d["table"]:
        t.add_row("table", f"{d['table']['id']} v{d['table']['version']}")
    t.add_row("reason", d["reason"])
    if d["basis"]:
        t.add_row("status of data", d["basis"]["status"])
    if d["override"]:
        t.add_row("override", f"{d['override']['reason']} (applied: {d['override']['applied']})")
    for w in d["warnings"]:
        t.add_row("warning", w)
    console.print(t)


@omalizumab_app.command("dose")
def dose_cmd(
    indication: str = typer.Option(..., help="asthma, crswnp, food-allergy or csu."),
    region: str = typer.Option("us", help="us or eu."),
    age: float = typer.Option(..., "--age", help=_help("Age in years.", "age_years")),
    weight_kg: float = typer.Option(None, help=_help("Body weight (kg); not needed for csu.", "weight_kg")),
    total_ige: float = typer.Option(
        None,
        "--total-ige",
        help=_help("Pre-treatment serum total IgE (IU/mL); not needed for csu.", "total_ige_iu_ml"),
    ),
    override_unverified: str = typer.Option(
        None, help="Reason for showing a dose from an UNVERIFIED cell (recorded in the output)."
    ),
    csu_dose_mg: int = typer.Option(None, help="CSU only: 150 or 300 (US)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Label-table dose: dose, do-not-dose, outside-table or unverified-table (all exit 0)."""
    r = svc.label_dose(
        indication,
        region,
        age,
        weight_kg,
        total_ige,
        override_reason=override_unverified,
        csu_dose_mg=csu_dose_mg,
    )
    emit(r, as_json, _render_dose)


def _render_schedule(r: Any) -> None:
    d = r.to_dict()
    off = " [bold red]OFF-LABEL[/]" if d["off_label"] else ""
    t = Table(title=f"omalizumab schedule: {d['kind']} ({d['status']}){off}")
    for col in ("date", "what", "dose", "injections", "why"):
        t.add_column(col)
    rows = [
        (
            a["date"],
            a["phase"],
            f"{a['dose_mg']} mg",
            " + ".join(str(x) for x in a["injections"]),
            a["rationale"],
        )
        for a in d["administrations"]
    ]
    rows += [(m["date"], m["label"], "", "", "") for m in d["milestones"]]
    for row in sorted(rows, key=lambda x: x[0]):
        t.add_row(row[0].isoformat(), *[str(x) for x in row[1:]])
    console.print(t)
    for w in d["warnings"]:
        console.print(f"[yellow]warning:[/] {w}")


def _parse_date(field: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(field, f"not a date: {text!r}", "YYYY-MM-DD") from None


@omalizumab_app.command("schedule")
def schedule_cmd(
    kind: str = typer.Option(..., help="maintenance, pretreatment, concurrent-scit, desensitization or oit."),
    start: str = typer.Option(
        ...,
        help="YYYY-MM-DD: first omalizumab dose (maintenance, oit), first allergen "
        "dose (pretreatment), first SCIT injection (concurrent-scit) or first "
        "desensitization (desensitization).",
    ),
    indication: str = typer.Option("asthma", help="Label indication for the dose lookup."),
    region: str = typer.Option("us", help="us or eu."),
    age: float = typer.Option(None, "--age", help=_help("Age in years (label kinds).", "age_years")),
    weight_kg: float = typer.Option(None, help=_help("Body weight (kg).", "weight_kg")),
    total_ige: float = typer.Option(
        None, "--total-ige", help=_help("Pre-treatment total IgE (IU/mL).", "total_ige_iu_ml")
    ),
    override_unverified: str = typer.Option(None, help="Reason to use an UNVERIFIED table cell (recorded)."),
    protocol: str = typer.Option("rush", help="pretreatment: rush or cluster."),
    weeks: int = typer.Option(None, help="maintenance / concurrent-scit duration (weeks)."),
    weeks_before: int = typer.Option(
        None, help=_help("pretreatment: weeks before the first allergen dose.", "omalizumab_lead_weeks")
    ),
    continue_weeks: int = typer.Option(None, help="pretreatment: weeks after the first allergen dose."),
    cycles: int = typer.Option(6, help="desensitization: number of desensitizations planned."),
    cycle_weeks: int = typer.Option(3, help="desensitization: weeks between chemotherapy cycles."),
    tolerated_from_cycle: int = typer.Option(None, help="desensitization: first cycle without breakthrough."),
    days_before: str = typer.Option(
        None, help="desensitization: the two pre-dose offsets in days, e.g. 14,1."
    ),
    mg_per_kg: float = typer.Option(None, help="oit: 8 or 16 mg/kg per month."),
    ics: str = typer.Option(None, help="Also write the plan as an iCalendar (.ics) file."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Dated omalizumab plan with doses, injections and rationale; optional .ics export."""
    pre = None
    if days_before is not None:
        try:
            pre = [int(x) for x in days_before.split(",")]
        except ValueError:
            raise InvalidInput("days_before", f"not a list of days: {days_before!r}", "e.g. 14,1") from None
    r = svc.build_schedule(
        kind,
        _parse_date("start", start),
        indication=indication,
        region=region,
        age_years=age,
        weight_kg=weight_kg,
        total_ige_iu_ml=total_ige,
        override_reason=override_unverified,
        protocol=protocol,
        weeks=weeks,
        weeks_before=weeks_before,
        continue_weeks=continue_weeks,
        cycles=cycles,
        cycle_weeks=cycle_weeks,
        tolerated_from_cycle=tolerated_from_cycle,
        days_before=pre,
        mg_per_kg=mg_per_kg,
    )
    if ics:
        Path(ics).write_bytes(svc.schedule_to_ics(r))
    emit(r, as_json, _render_schedule)


def _parse_range(field: str, text: str | None) -> tuple[str, str] | None:
    if text is None:
        return None
    parts = text.split(":")
    if len(parts) != 2:
        raise InvalidInput(field, f"expected LOW:HIGH, got {text!r}", "e.g. 40:120")
    return parts[0], parts[1]


@contextmanager
def _progress(enabled: bool, label: str) -> Iterator[Callable[[float], None] | None]:
    """A Rich progress bar on stderr for long runs (yields a fraction callback, or None)."""
    if not enabled:
        yield None
        return
    with progress_bar(percent=True) as bar:
        task = bar.add_task(label, total=1.0)
        yield lambda f: bar.update(task, completed=f)


def _render_simulation(r: Any) -> None:
    d = r.to_dict()
    t = Table(title=f"omalizumab {d['model']} simulation, {d['n_patients']} patient(s)")
    t.add_column("summary (free IgE)")
    t.add_column("value")
    for k, v in d["summary"].items():
        if isinstance(v, dict):
            v = " / ".join(f"{x:g}" for x in v.values()) + "  (p5 / p50 / p95)"
        t.add_row(k, str(v))
    console.print(t)
    for w in d["warnings"]:
        console.print(f"[yellow]warning:[/] {w}")


def _plot(r: Any, path: str) -> None:
    """Free IgE (log scale, with the published targets) and total omalizumab over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = r.to_dict()
    t = d["times_days"]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for ax, key, label in (
        (ax1, "free_ige_ng_ml", "free IgE (ng/mL)"),
        (ax2, "total_omalizumab_ug_ml", "total omalizumab (ug/mL)"),
    ):
        series = d[key]
        if isinstance(series, dict):
            ax.fill_between(t, series["p5"], series["p95"], alpha=0.25, label="5th-95th percentile")
            ax.plot(t, series["p50"], label="median")
        else:
            ax.plot(t, series, label="typical patient")
        ax.set_ylabel(label)
    ax1.set_yscale("log")
    for target in d["summary"]["targets_ng_ml"]:
        ax1.axhline(target, linestyle="--", linewidth=0.8, color="grey")
    ax1.legend(loc="upper right")
    ax2.set_xlabel("days")
    fig.suptitle(
        f"omalizumab {d['model']}: {d['inputs'].get('dose_mg')} mg every "
        f"{d['inputs'].get('interval_weeks')} weeks"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@omalizumab_app.command("simulate")
def simulate_cmd(
    weight_kg: float = typer.Option(
        ..., help=_help("Body weight (kg); centre of the population unless --weight-range.", "weight_kg")
    ),
    total_ige: float = typer.Option(
        ..., "--total-ige", help=_help("Baseline total IgE (IU/mL).", "total_ige_iu_ml")
    ),
    dose_mg: float = typer.Option(..., help=_help("Dose per administration (mg).", "omalizumab_dose_mg")),
    interval_weeks: float = typer.Option(
        ..., help=_help("Weeks between doses.", "omalizumab_interval_weeks")
    ),
    weeks: float = typer.Option(16, help="Simulated duration (weeks)."),
    model: str = typer.Option("lowe2009", help="lowe2009 (default) or hayashi2007."),
    population: int = typer.Option(None, help="Number of virtual patients (omit for one typical patient)."),
    seed: int = typer.Option(None, help="Random seed for the population (default 0)."),
    weight_range: str = typer.Option(None, help="Sample weight uniformly in LOW:HIGH kg (population)."),
    ige_range: str = typer.Option(None, help="Sample IgE log-uniformly in LOW:HIGH IU/mL (population)."),
    plot: str = typer.Option(None, help="Write a PNG plot to this path."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """PK/PD simulation (Lowe 2009 / Hayashi 2007): free IgE, total IgE, total omalizumab."""
    wr, ir = _parse_range("weight_range", weight_range), _parse_range("ige_range", ige_range)
    with _progress(population is not None and population >= PROGRESS_MIN_PATIENTS, "simulating") as cb:
        r = svc.simulate(
            weight_kg=weight_kg,
            total_ige_iu_ml=total_ige,
            dose_mg=dose_mg,
            interval_weeks=interval_weeks,
            weeks=weeks,
            model=model,
            population=population,
            seed=seed,
            weight_range_kg=wr,
            ige_range_iu_ml=ir,
            progress=cb,
        )
    if plot:
        _plot(r, plot)
    emit(r, as_json, _render_simulation)


def _render_nomogram(r: Any) -> None:
    d = r.to_dict()
    st = d["settings"]
    t = Table(
        title=f"omalizumab nomogram ({st['model']}, mid-interval free IgE <= {st['target_ng_ml']:g} ng/mL in "
        f">= {st['fraction']:.0%} of {st['patients_per_cell']} patients per cell) vs US label"
    )
    for col in ("IgE IU/mL", "weight kg", "label", "model", "fraction", "agreement"):
        t.add_column(col)
    for row in d["rows"]:
        frac = "" if row["fraction_at_target"] is None else f"{row['fraction_at_target']:.2f}"
        t.add_row(row["ige_band"], row["weight_band"], row["label"], row["model"], frac, row["agreement"])
    console.print(t)
    console.print(", ".join(f"{k}: {v}" for k, v in d["agreement_counts"].items()))
    for w in d["warnings"]:
        console.print(f"[yellow]warning:[/] {w}")


@omalizumab_app.command("nomogram")
def nomogram_cmd(
    model: str = typer.Option("lowe2009", help="lowe2009 (default) or hayashi2007."),
    target: float = typer.Option(14.0, "--target-ng-ml", help="Free-IgE target at mid-interval (ng/mL)."),
    fraction: float = typer.Option(0.5, help="Fraction of patients that must reach the target."),
    patients_per_cell: int = typer.Option(200, help="Virtual patients per table cell."),
    weeks: int = typer.Option(16, help="Simulated weeks (the last complete interval is judged)."),
    seed: int = typer.Option(0, help="Random seed."),
    extra_ige: str = typer.Option(
        "48000",
        help="Extra IgE rows (IU/mL, comma-separated; '' for none), e.g. the hyper-IgE patients of seed 003.",
    ),
    intervals: str = typer.Option("4,2", help="Dosing intervals to try in order (weeks): '4,2', '4' or '2'."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Build a model-based dosing nomogram and compare it with the US label table cell by cell."""
    try:
        extra = tuple(float(x) for x in extra_ige.split(",") if x.strip())
        iv = tuple(int(x) for x in intervals.split(",") if x.strip())
    except ValueError:
        raise InvalidInput(
            "extra_ige/intervals", "not a comma-separated list of numbers", "e.g. 48000 / 4,2"
        ) from None
    with _progress(True, "nomogram") as cb:
        r = svc.build_nomogram(
            model=model,
            target_ng_ml=target,
            fraction=fraction,
            patients_per_cell=patients_per_cell,
            weeks=weeks,
            seed=seed,
            extra_ige_iu_ml=extra,
            intervals_weeks=iv,
            progress=cb,
        )
    emit(r, as_json, _render_nomogram)


def register(app: typer.Typer) -> None:
    """Add the ``omalizumab`` command group to the root app."""
    app.add_typer(omalizumab_app, name="omalizumab")
