"""CLI commands for cohort analysis: ``report`` (tables, figures, HTML/PDF/XLSX) and ``recheck``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from immunoplan.cli.output import JSON_OPTION_HELP, console, emit, progress_bar
from immunoplan.errors import InvalidInput
from immunoplan.services import analysis as svc


def _render_report(result: Any) -> None:
    d = result.to_dict()
    t = Table(title="immunoplan report")
    for col in ("cohort", "groups", "patients", "tables", "figures"):
        t.add_column(col)
    for c in d["cohorts"]:
        t.add_row(
            c["name"],
            " vs ".join(c["groups"]),
            str(c["patients"]),
            ", ".join(c["tables"]),
            ", ".join(c["figures"]),
        )
    console.print(t)
    for f in d["files"]:
        if not f.endswith((".png", ".svg")):
            console.print(f"wrote {f}")
    console.print(f"report: {Path(d['out']) / 'report.html'}")


def _render_recheck(result: dict[str, Any]) -> None:
    t = Table(title="Re-check of a published table")
    for col in ("label", "test", "reported p", "recomputed p", "p range", "consistent", "fits", "GRIM", "%"):
        t.add_column(col)
    for r in result["rows"]:
        rng = r.get("p_range") or [None, None]
        ok = r["consistent"]
        grim = ",".join(x for x in (r.get("grim1"), r.get("grim2")) if x) or "-"
        pct = "-" if not r.get("pct_check") else ("ok" if all(r["pct_check"].values()) else "MISMATCH")
        t.add_row(
            r["label"],
            r["test"],
            r["reported_p"] or "-",
            "-" if r["recomputed_p"] is None else f"{r['recomputed_p']:.4f}",
            "-" if rng[0] is None else f"{rng[0]:.4f}-{rng[1]:.4f}",
            "-" if ok is None else ("[green]yes[/]" if ok else "[red]NO[/]"),
            ", ".join(r.get("consistent_with", [])) or "-",
            grim,
            pct,
        )
    console.print(t)
    s = result["summary"]
    console.print(
        f"{s['consistent']} of {s['checked']} reported p-values consistent; "
        f"{s['inconsistent']} inconsistent; GRIM failures {s['grim_inconsistent']}; "
        f"percentage mismatches {s['percent_mismatches']}"
    )


def _render_case_series(result: dict[str, Any]) -> None:
    t = Table(title="desensitization case series")
    cols = (
        ("patient", "P"),
        ("sex_age", "Sex/age"),
        ("context", "ChT"),
        ("culprit_drug", "Culprit drug"),
        ("severity", "Severity of IR"),
        ("skin_test", "Skin tests"),
        ("phenotype", "Phenotype"),
        ("omalizumab_before_next_ds", "OMZ before next DS"),
        ("omalizumab_maintenance", "maintenance"),
        ("outcome", "Outcome"),
    )
    for _, label in cols:
        t.add_column(label)
    for r in result["rows"]:
        t.add_row(*(str(r[k]) for k, _ in cols))
    console.print(t)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""

    @app.command("report")
    def report(
        what: str | None = typer.Argument(
            None,
            help="case-series: the desensitization case series (seed 004 table) as rows; stores nothing.",
        ),
        db: str = typer.Option(..., "--db", help="Registry: SQLite path or database URL."),
        out: Path | None = typer.Option(None, "--out", help="Output directory (required for the report)."),
        cohort: str | None = typer.Option(None, "--cohort", help="Only this cohort (default: every cohort)."),
        formats: str = typer.Option("html,pdf,xlsx", "--format", help="Comma-separated: html, pdf, xlsx."),
        as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
    ) -> None:
        """Cohort report: baseline, longitudinal, repeated-measures, adverse-reaction and stratified tables,
        figures (PNG/SVG), report.html, report.pdf and tables.xlsx. ``report case-series`` prints the
        desensitization case series instead (one row per course with an index reaction)."""
        if what is not None:
            if what != "case-series":
                raise InvalidInput("what", f"unknown report {what!r}", "case-series")
            emit(svc.case_series_report(db), as_json, _render_case_series)
            return
        if out is None:
            raise InvalidInput("out", "missing (required)", "an output directory")
        with progress_bar(disable=as_json) as progress:
            task = progress.add_task("report", total=None)

            def step(name: str) -> None:
                progress.update(task, description=name, advance=1)

            def stages(total: int) -> None:
                progress.update(task, total=total)

            result = svc.cohort_report(db, out, cohort, formats, step=step, stages=stages)
        emit(result, as_json, _render_report)

    @app.command("recheck")
    def recheck(
        file: Path = typer.Argument(
            ...,
            help="CSV: label,test,n1,mean1,sd1,events1,n2,mean2,sd2,events2,"
            "reported_p (see docs/recheck.md).",
        ),
        as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
    ) -> None:
        """Recompute the p-values of a published table from its printed summary statistics."""
        emit(svc.recheck_table(file), as_json, _render_recheck)
