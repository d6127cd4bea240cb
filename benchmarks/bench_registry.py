"""Registry: demo cohort generation at 10^3 / 10^4 / 10^5 seed-000 patients into a SQLite file.

Baseline: the same generator writing through ORM objects one by one (``session.add`` per row, audited per row)
for 10^3 patients in the same process, extrapolated linearly to each size. Peak RSS is the process maximum.
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from immunoplan.registry.db import open_registry
from immunoplan.synthetic import demo, writer

SIZES = (1_000, 10_000, 100_000)
BASELINE_PATIENTS = 1_000


class _OrmWriter(writer.Writer):
    """The naive path: one ORM object per row."""

    def flush(self) -> None:
        for t in writer.TABLES:  # parents first: not every foreign key has an ORM relationship
            for row in self.rows[t]:
                self.s.add(writer.MODELS[t](**row))
            self.counts[t] += len(self.rows[t])
            self.rows[t] = []
            self.s.flush()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _generate(path: Path, n: int, writer_class: Any = None) -> tuple[float, int]:
    reg = open_registry(path)
    original = demo.Writer
    if writer_class is not None:
        demo.Writer = writer_class  # type: ignore[misc]
    try:
        t0 = time.perf_counter()
        result = demo.create_demo(reg, seed=1, patients=n)
        seconds = time.perf_counter() - t0
    finally:
        demo.Writer = original  # type: ignore[misc]
        reg.dispose()
    return seconds, sum(result["rows"].values())


def run(report) -> None:  # noqa: ANN001 - benchmarks.__main__.Report
    with tempfile.TemporaryDirectory() as tmp:
        base_s, base_rows = _generate(Path(tmp) / "orm.sqlite", BASELINE_PATIENTS, _OrmWriter)
        per_patient = base_s / BASELINE_PATIENTS
        for n in SIZES:
            path = Path(tmp) / f"demo-{n}.sqlite"
            seconds, rows = _generate(path, n)
            report.add(
                "registry",
                f"demo cohorts, {n:,} seed-000 patients (+37 seed-001)",
                seconds,
                baseline=per_patient * n,
                note=(
                    f"{rows:,} rows, {rows / seconds:,.0f} rows/s, {path.stat().st_size / 1e6:.0f} MB; "
                    f"ORM baseline {per_patient * 1000:.1f} ms/patient on {BASELINE_PATIENTS:,}; "
                    f"peak RSS {_peak_rss_mb():.0f} MB"
                ),
            )
