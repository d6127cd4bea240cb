"""Render the cohort report: report.html (Jinja2), report.pdf (WeasyPrint), tables.xlsx, figures PNG/SVG.

`build_report` takes DataFrames (a `CohortData`), so it is the same for the registry, the demo and the
benchmark. Output is deterministic for the same data (no timestamps; fixed figure metadata).
"""

from __future__ import annotations

import platform
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from immunoplan.analysis.datasets import CohortData
from immunoplan.analysis.figures import all_figures
from immunoplan.analysis.stats import TESTS
from immunoplan.analysis.tables import ResultTable, all_tables
from immunoplan.errors import InvalidInput

FORMATS = ("html", "pdf", "xlsx")
PACKAGES = (
    "immunoplan",
    "numpy",
    "scipy",
    "pandas",
    "statsmodels",
    "lifelines",
    "matplotlib",
    "jinja2",
    "weasyprint",
    "openpyxl",
)

Step = Callable[[str], None]


@dataclass
class Section:
    name: str
    groups: list[str]
    n: int
    tables: list[ResultTable]
    figures: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ReportResult:
    out: Path
    files: list[Path]
    sections: list[Section]
    tests: list[str]
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "files": [str(f) for f in self.files],
            "cohorts": [
                {
                    "name": s.name,
                    "groups": s.groups,
                    "patients": s.n,
                    "tables": [t.id for t in s.tables],
                    "figures": [f["id"] for f in s.figures],
                }
                for s in self.sections
            ],
            "tests": self.tests,
            "skipped_cohorts": self.skipped,
        }


def parse_formats(text: str | Sequence[str]) -> list[str]:
    """``"html,pdf"`` -> ["html", "pdf"]; unknown names raise `InvalidInput`."""
    items = [x.strip().lower() for x in (text.split(",") if isinstance(text, str) else text) if x.strip()]
    bad = [x for x in items if x not in FORMATS]
    if bad or not items:
        raise InvalidInput("--format", f"unknown format(s) {bad or text!r}", ", ".join(FORMATS))
    return [f for f in FORMATS if f in items]


def versions() -> dict[str, str]:
    v = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            v[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            v[p] = "not installed"
    return v


def methods_paragraph(tests: Sequence[str]) -> str:
    """The methods text: every test used, named, in a fixed order."""
    names = [TESTS[t] for t in TESTS if t in tests]
    return (
        "Normality was assessed per group with the Shapiro-Wilk test; normally distributed variables are "
        "summarised as mean ± SD and others as median [Q1, Q3]. The following procedures were used, each "
        "named in the row it produced: " + "; ".join(names) + ". P-values are two-sided; "
        "Benjamini-Hochberg adjusted p-values are shown next to the raw p-values of each table. "
        "Analyses were computed by immunoplan from the registry without manual steps."
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "cohort"


def _sections(data: CohortData) -> list[str | None]:
    """One section per study cohort (>= 2 study groups) for a whole registry; one section (None: the data as
    given) otherwise."""
    if data.name == "registry" or data.patients["cohort"].nunique() > 1:
        return [c for c in data.cohorts() if c not in skipped_cohorts(data)]
    return [None]


def skipped_cohorts(data: CohortData) -> list[str]:
    """Cohorts of a whole registry left out of the report: fewer than two study groups (a clinic list)."""
    if not (data.name == "registry" or data.patients["cohort"].nunique() > 1):
        return []
    n = data.patients.groupby("cohort")["group"].nunique()
    return sorted(str(c) for c, k in n.items() if k < 2)


def analyse(data: CohortData, out: Path, step: Step | None = None) -> list[Section]:
    """Tables and figures for every cohort in ``data`` (one `Section` each)."""
    sections = []
    for name in _sections(data):
        sub = data.select(name) if name is not None else data
        if step:
            step(f"tables: {sub.name}")
        tables = all_tables(sub)
        if step:
            step(f"figures: {sub.name}")
        figs = all_figures(sub, tables, out / "figures", prefix=f"{_slug(sub.name)}-") if tables else []
        sections.append(Section(sub.name, sub.groups, len(sub.patients), tables, figs))
    return sections


def render_html(sections: list[Section], tests: list[str], source: str, skipped: Sequence[str] = ()) -> str:
    env = Environment(
        loader=PackageLoader("immunoplan.analysis", "templates"), autoescape=select_autoescape(["html"])
    )
    ctx_sections = [
        {
            "name": s.name,
            "groups": s.groups,
            "n": s.n,
            "tables": [t.to_dict() for t in s.tables],
            "figures": [{"title": f["title"], "src": f"figures/{f['png'].name}"} for f in s.figures],
        }
        for s in sections
    ]
    return env.get_template("report.html").render(
        title="immunoplan cohort report",
        source=source,
        sections=ctx_sections,
        versions=versions(),
        methods=methods_paragraph(tests),
        skipped=list(skipped),
    )


def write_xlsx(sections: list[Section], path: Path) -> None:
    """One sheet per table (named cohort-table, <= 31 characters)."""
    import pandas as pd

    used: set[str] = set()
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        for s in sections:
            for t in s.tables:
                name = f"{s.name[:14]}-{t.id}"[:31]
                i = 2
                while name in used:
                    name = f"{name[:28]}-{i}"
                    i += 1
                used.add(name)
                t.frame().to_excel(xw, sheet_name=name, index=False)


def build_report(
    data: CohortData,
    out: str | Path,
    formats: Sequence[str] = FORMATS,
    *,
    source: str = "",
    step: Step | None = None,
) -> ReportResult:
    """Write the report files into ``out``; ``step(description)`` is called before each stage (progress)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InvalidInput("--out", f"{out} exists and is not a directory", "a directory path")
    out.mkdir(parents=True, exist_ok=True)
    sections = analyse(data, out, step)
    tests = sorted(
        {x for s in sections for t in s.tables for x in t.tests}
        | {x for s in sections for f in s.figures for x in f["tests"]}
        | {"shapiro"}
    )
    files: list[Path] = [f for s in sections for fig in s.figures for f in (fig["png"], fig["svg"])]
    skipped = skipped_cohorts(data)
    html = render_html(sections, tests, source or data.name, skipped)
    if "html" in formats or "pdf" in formats:
        if step:
            step("report.html")
        (out / "report.html").write_text(html, encoding="utf-8")
        if "html" in formats:
            files.append(out / "report.html")
    if "pdf" in formats:
        if step:
            step("report.pdf")
        from weasyprint import HTML

        HTML(string=html, base_url=str(out)).write_pdf(out / "report.pdf")
        files.append(out / "report.pdf")
    if "xlsx" in formats:
        if step:
            step("tables.xlsx")
        write_xlsx(sections, out / "tables.xlsx")
        files.append(out / "tables.xlsx")
    return ReportResult(out, files, sections, tests, skipped)


def stage_count(data: CohortData, formats: Sequence[str]) -> int:
    """How many times `build_report` calls ``step`` (for a progress bar)."""
    pages = int("html" in formats or "pdf" in formats) + int("pdf" in formats) + int("xlsx" in formats)
    return 2 * len(_sections(data)) + pages
