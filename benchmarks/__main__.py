"""Run every benchmark module in this package: ``python -m benchmarks [NAME ...]``."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console()


class Report:
    """Collects rows of (benchmark, case, seconds, baseline seconds, ratio, note)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, float, float | None, str]] = []

    def add(
        self, bench: str, case: str, seconds: float, baseline: float | None = None, note: str = ""
    ) -> None:
        self.rows.append((bench, case, seconds, baseline, note))
        ratio = f"{baseline / seconds:.1f}x" if baseline else "-"
        console.print(
            f"[bold]{bench}[/] {case}: {seconds:.3f} s  baseline={f'{baseline:.3f} s' if baseline else '-'}  "
            f"speed-up={ratio}  {note}"
        )

    def table(self) -> Table:
        t = Table(title="immunoplan benchmarks")
        for col in ("benchmark", "case", "seconds", "baseline s", "speed-up", "note"):
            t.add_column(col)
        for bench, case, s, b, note in self.rows:
            t.add_row(bench, case, f"{s:.3f}", f"{b:.3f}" if b else "-", f"{b / s:.1f}x" if b else "-", note)
        return t


def main(names: list[str]) -> int:
    here = Path(__file__).parent
    modules = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    if names:
        modules = [m for m in modules if any(n in m for n in names)]
    report = Report()
    for name in modules:
        mod = importlib.import_module(f"benchmarks.{name}")
        t0 = time.perf_counter()
        mod.run(report)
        console.print(f"[dim]{name} finished in {time.perf_counter() - t0:.1f} s[/]")
    console.print(report.table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
