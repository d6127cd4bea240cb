"""Use cases for cohort analysis, shared by the CLI, the web research page and tests.

- `cohort_report`: registry -> DataFrames -> tables, figures, report.html/pdf, tables.xlsx.
- `cohort_tables`: the tables only (as dicts), e.g. for a web page.
- `recheck_table`: re-check a published table from a CSV of printed summary statistics.
- `cohort_names`, `data_version`: what the research page offers and when its cached figures are stale.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from immunoplan.analysis.datasets import CohortData, from_tables
from immunoplan.analysis.recheck import recheck_csv
from immunoplan.analysis.report import (
    FORMATS,
    ReportResult,
    Step,
    build_report,
    parse_formats,
    stage_count,
)
from immunoplan.analysis.tables import all_tables
from immunoplan.registry.db import Registry
from immunoplan.registry.frames import read_analysis_tables


def load_cohort(db: str | Path, cohort: str | None = None) -> CohortData:
    """The registry at ``db`` (path or URL) as DataFrames, optionally one cohort."""
    data = from_tables(read_analysis_tables(str(db)))
    return data.select(cohort) if cohort else data


def cohort_report(
    db: str | Path,
    out: str | Path,
    cohort: str | None = None,
    formats: str | Sequence[str] = FORMATS,
    step: Step | None = None,
    stages: Callable[[int], None] | None = None,
) -> ReportResult:
    """Write the report for the registry at ``db`` into ``out`` (formats: html, pdf, xlsx).

    ``step(description)`` is called before each stage, ``stages(n)`` once the number of stages is known."""
    fmts = parse_formats(formats)
    if step:
        step("loading registry")
    data = load_cohort(db, cohort)
    if stages:
        stages(stage_count(data, fmts) + 1)
    return build_report(data, out, fmts, source=str(db), step=step)


def case_series_report(db: str | Path) -> dict[str, Any]:
    """The desensitization case series of the registry at ``db`` (`services.records.desensitization.course.
    desensitization_case_series`): ``rows`` and ``n``; reads only."""
    from immunoplan.errors import InvalidInput
    from immunoplan.registry.db import open_registry
    from immunoplan.services.records.desensitization.course import desensitization_case_series

    if "://" not in str(db) and not Path(db).exists():
        raise InvalidInput("db", f"no registry at {db}", "an existing SQLite file or a database URL")
    reg = open_registry(db)
    try:
        rows = desensitization_case_series(reg)
    finally:
        reg.dispose()
    return {"report": "case-series", "source": str(db), "n": len(rows), "rows": rows}


def cohort_tables(db: str | Path, cohort: str) -> list[dict[str, Any]]:
    """Every table for one cohort as plain dicts (the web research page renders them)."""
    return [t.to_dict() for t in all_tables(load_cohort(db, cohort))]


def recheck_table(path: str | Path) -> dict[str, Any]:
    """Recheck the rows of a published table (see docs/recheck.md)."""
    return recheck_csv(path)


def cohort_names(reg: Registry) -> list[str]:
    """The cohorts held in the registry, sorted."""
    from sqlalchemy import select

    from immunoplan.registry import models as m

    with reg.session() as s:
        return sorted(c for c in s.scalars(select(m.Patient.cohort).distinct()) if c)


def data_version(reg: Registry) -> int:
    """The newest audit entry id: changes whenever the registry changes (figures are cached per version)."""
    from sqlalchemy import func, select

    from immunoplan.registry import models as m

    with reg.session() as s:
        return int(s.scalar(select(func.max(m.AuditEntry.id))) or 0)
