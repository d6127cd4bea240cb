"""Report benchmark: the full cohort report (tables, figures, HTML, PDF, XLSX) for 10^3, 10^4, 10^5 patients.

Data come from the vectorised synthetic generator (`immunoplan.analysis.synthetic`, four visits, eleven
measures, 20 injections per patient), so the timing measures the analysis and rendering, not database writes.
The baseline is the 10^3 run in the same process; a growth ratio of time per patient is printed so "no worse
than linear" can be read directly (target: 10^5 patients <= 60 s).
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from immunoplan.analysis.report import build_report
from immunoplan.analysis.synthetic import synthetic_cohort

SIZES = (1_000, 10_000, 100_000)


def _time_report(n: int) -> float:
    data = synthetic_cohort(n, seed=2026)
    with tempfile.TemporaryDirectory(prefix="immunoplan-bench-") as out:
        t0 = time.perf_counter()
        build_report(data, out, ("html", "pdf", "xlsx"))
        return time.perf_counter() - t0


def run(report: Any) -> None:
    """Time the report at each size against the 10^3 run (same process)."""
    base: float | None = None
    for n in SIZES:
        seconds = _time_report(n)
        if base is None:
            base = seconds
            report.add("report", f"{n} patients", seconds, None, "baseline for growth")
            continue
        growth = (seconds / base) / (n / SIZES[0])
        note = f"time x{seconds / base:.1f} for patients x{n // SIZES[0]}; per-patient growth {growth:.2f}"
        if n == 100_000:
            note += f"; target <= 60 s: {'met' if seconds <= 60 else 'NOT met'}"
        report.add("report", f"{n} patients", seconds, None, note)
