"""Report benchmark: `immunoplan report` on demo registries of 10^3, 10^4 and 10^5 patients.

The registries come from the demo generator (`immunoplan.synthetic.create_demo`, seed-000 cohort sized to
n plus the 37 seed-001 patients); building them is not timed. Each case times the report use case end to end
(registry -> DataFrames -> tables, figures, report.html, report.pdf, tables.xlsx). The 10^3 run is the
baseline; the note gives the growth of the time per patient ("no worse than linear" means <= 1) and the CPU
seconds of this process, which matter on a machine shared with other jobs. Target: 10^5 patients <= 60 s.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from immunoplan.registry.db import open_registry
from immunoplan.services.analysis import cohort_report
from immunoplan.synthetic import create_demo

SIZES = (1_000, 10_000, 100_000)


def _demo(path: Path, n: int) -> None:
    reg = open_registry(path)
    try:
        create_demo(reg, seed=2026, patients=n, actor="bench")
    finally:
        reg.dispose()


def _time_report(workdir: Path, n: int, warm_up: bool = False) -> tuple[float, float]:
    db = workdir / f"demo-{n}.sqlite"
    _demo(db, n)
    if warm_up:  # first use imports and initialises matplotlib, WeasyPrint, statsmodels: not timed
        cohort_report(db, workdir / "warm-up", "seed001", "html,pdf,xlsx")
    w0, c0 = time.perf_counter(), time.process_time()
    cohort_report(db, workdir / f"report-{n}", None, "html,pdf,xlsx")
    return time.perf_counter() - w0, time.process_time() - c0


def run(report: Any) -> None:
    """Time the report at each size; the first size is the baseline for the growth figure."""
    with tempfile.TemporaryDirectory(prefix="immunoplan-bench-") as tmp:
        base: tuple[float, float] | None = None
        for n in SIZES:
            wall, cpu = _time_report(Path(tmp), n, warm_up=base is None)
            note = f"cpu {cpu:.1f} s"
            if base is None:
                base = (wall, cpu)
                note += "; baseline for growth"
            else:
                k = n / SIZES[0]
                note += (
                    f"; n x{k:.0f}: wall x{wall / base[0]:.1f}, cpu x{cpu / base[1]:.1f} "
                    f"(per-patient growth {cpu / base[1] / k:.2f}, linear = 1)"
                )
            if n == 100_000:
                note += f"; target <= 60 s {'met' if wall <= 60 else 'NOT met'}"
            report.add("report (demo registry)", f"{n} patients", wall, None, note)
