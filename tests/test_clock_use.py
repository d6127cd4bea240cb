"""One clock: no product or test module reads the real date or time except `immunoplan.clock` (issue 10:
"today" is the clinic's date; tests pin the clock)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted(
    p
    for folder in ("src/immunoplan", "tests")
    for p in (ROOT / folder).rglob("*.py")
    if p.name != "clock.py" or p.parent.name != "immunoplan"
)
FORBIDDEN = {("date", "today"), ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today")}


def real_clock_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
            if (name, node.func.attr) in FORBIDDEN:
                found.append(f"{path.name}:{node.lineno} {name}.{node.func.attr}()")
    return found


def test_the_scan_finds_a_real_clock_call(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from datetime import date, datetime\nx = date.today()\ny = datetime.now()\n")
    assert real_clock_calls(bad) == ["bad.py:2 date.today()", "bad.py:3 datetime.now()"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_reads_the_real_clock(path: Path) -> None:
    assert real_clock_calls(path) == [], "use immunoplan.clock (now, today) instead"
