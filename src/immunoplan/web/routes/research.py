"""Research (de-identified, read-only): the cohort report's tables and figures (``services.analysis``) and
exports. Only aggregate results leave this page: no names, pseudonyms or per-patient rows."""

from __future__ import annotations

import csv
import io
import re
import secrets
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, Response

from immunoplan.services import analysis
from immunoplan.web.auth import permit
from immunoplan.web.deps import registry_of
from immunoplan.web.rendering import render

router = APIRouter()
COHORT_RE = r"^[A-Za-z0-9_.-]{1,32}$"


def cohorts(request: Request) -> list[str]:
    return analysis.cohort_names(registry_of(request))


def _cohort(request: Request, cohort: str | None) -> str | None:
    names = cohorts(request)
    if not names:
        return None
    if cohort is None:
        return names[0]
    if cohort not in names:
        raise HTTPException(404, f"no cohort {cohort!r}")
    return cohort


def tables(request: Request, cohort: str) -> list[dict[str, Any]]:
    return analysis.cohort_tables(registry_of(request).url, cohort)


@router.get("/research", dependencies=[permit("research.read")], include_in_schema=False)
def research_page(request: Request, cohort: str | None = Query(None, pattern=COHORT_RE)) -> Response:
    chosen = _cohort(request, cohort)
    data = tables(request, chosen) if chosen else []
    return render(
        request,
        "research.html",
        {"title": "Research", "cohorts": cohorts(request), "cohort": chosen, "tables": data},
    )


def data_version(request: Request) -> int:
    """The newest audit entry id: changes whenever the registry changes (figures are cached per version)."""
    return analysis.data_version(registry_of(request))


def _reports_dir(request: Request) -> Path:
    ctx = request.app.state.ctx
    if "reports" not in ctx.extras:
        ctx.extras["reports"] = tempfile.TemporaryDirectory(prefix="immunoplan-web-reports-")
    return Path(ctx.extras["reports"].name)


def build(request: Request, cohort: str, formats: str) -> tuple[str, Any]:
    """Run the cohort report into a fresh folder; returns its token and the report result."""
    token = secrets.token_hex(8)
    out = _reports_dir(request) / token
    result = analysis.cohort_report(registry_of(request).url, out, cohort, formats=formats)
    return token, result


@router.get("/research/figures", dependencies=[permit("research.read")], include_in_schema=False)
def figures(request: Request, cohort: str = Query(pattern=COHORT_RE)) -> Response:
    """The report's figures (built on demand; loaded into the research page by htmx)."""
    chosen = _cohort(request, cohort)
    figs: list[dict[str, str]] = []
    cache = request.app.state.ctx.extras.setdefault("figures", {})
    key = (chosen, data_version(request))
    if chosen and key in cache:
        figs = cache[key]
    elif chosen:
        token, result = build(request, chosen, "html")
        for section in result.sections:
            for f in section.figures:
                if f.get("png"):
                    figs.append(
                        {"title": f["title"], "src": f"/research/files/{token}/figures/{Path(f['png']).name}"}
                    )
        cache[key] = figs
    return render(request, "research.html", {"figures": figs, "cohort": chosen}, block="figures")


@router.get(
    "/research/files/{token}/figures/{name}", dependencies=[permit("research.read")], include_in_schema=False
)
def report_file(request: Request, token: str, name: str) -> Response:
    if not re.fullmatch(r"[0-9a-f]{16}", token) or not re.fullmatch(r"[A-Za-z0-9_.-]+\.png", name):
        raise HTTPException(404, "no such file")
    path = _reports_dir(request) / token / "figures" / name
    if not path.is_file():
        raise HTTPException(404, "no such file")
    return FileResponse(path, media_type="image/png")


@router.get("/research/export/tables.xlsx", dependencies=[permit("research.read")], tags=["research"])
def export_xlsx(request: Request, cohort: str = Query(pattern=COHORT_RE)) -> Response:
    """All report tables of a cohort as an Excel workbook (aggregate, de-identified)."""
    chosen = _cohort(request, cohort)
    if chosen is None:
        raise HTTPException(404, "the registry has no cohorts")
    token, _ = build(request, chosen, "xlsx")
    path = _reports_dir(request) / token / "tables.xlsx"
    return FileResponse(
        path,
        filename=f"immunoplan-{chosen}-tables.xlsx",
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )


@router.get("/research/export/{table_id}.csv", dependencies=[permit("research.read")], tags=["research"])
def export_csv(request: Request, table_id: str, cohort: str = Query(pattern=COHORT_RE)) -> Response:
    """One report table as CSV (the displayed columns)."""
    chosen = _cohort(request, cohort)
    table = next((t for t in tables(request, chosen) if t["id"] == table_id), None) if chosen else None
    if table is None:
        raise HTTPException(404, f"no table {table_id!r}")
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(table["columns"])
    for row in table["rows"]:
        w.writerow([row.get(c, "") for c in table["columns"]])
    return Response(
        buf.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{chosen}-{table_id}.csv"'},
    )


@router.get("/api/research/cohorts", dependencies=[permit("research.read")], tags=["research"])
def api_cohorts(request: Request) -> list[str]:
    """Cohorts in the registry."""
    return cohorts(request)


@router.get("/api/research/tables", dependencies=[permit("research.read")], tags=["research"])
def api_tables(request: Request, cohort: str = Query(pattern=COHORT_RE)) -> list[dict[str, Any]]:
    """The cohort report's tables (aggregate) as JSON."""
    chosen = _cohort(request, cohort)
    return tables(request, chosen) if chosen else []
