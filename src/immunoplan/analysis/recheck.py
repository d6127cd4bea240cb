"""Re-check a published table from its printed summary statistics (``immunoplan recheck FILE.csv``).

CSV header (other tools rely on it; extra optional columns are allowed)::

    label,test,n1,mean1,sd1,events1,n2,mean2,sd2,events2,reported_p

``test`` is one of student, welch, fisher, chi2, chi2-yates. ``reported_p`` is the p-value as printed
("0.49", "<0.01", "*0.02", "<0.001*", ">0.05"; asterisks are ignored). Optional columns:

- ``items``: the mean is of an integer-valued scale summed (1) or averaged over this many integer items per
  patient -> GRIM check of mean1 and mean2 (Brown & Heathers 2017, granularity 1 / (n * items));
- ``pct1``/``pct2``: the printed percentage of events1/events2 -> checked against 100 * events / n.

A row is ``consistent`` when the reported p-value, read as the interval its printed precision allows
(e.g. "0.49" = [0.485, 0.495], "<0.01" = [0, 0.01)), overlaps the range of p-values the printed inputs allow:
for t-tests every mean and SD is varied by half a unit of its last printed digit (the 8 extreme corners),
counts are exact. ``consistent_with`` lists every test of the same family whose p range fits.
"""

from __future__ import annotations

import csv
import itertools
import math
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from immunoplan.analysis import stats
from immunoplan.errors import InvalidInput

HEADER = ("label", "test", "n1", "mean1", "sd1", "events1", "n2", "mean2", "sd2", "events2", "reported_p")
RECHECK_TESTS = ("student", "welch", "fisher", "chi2", "chi2-yates")
CONTINUOUS = ("student", "welch")
COUNTS = ("fisher", "chi2", "chi2-yates")


@dataclass(frozen=True)
class Reported:
    """A printed p-value as an interval [low, high] (``high_open`` for "<x")."""

    text: str
    low: float
    high: float
    high_open: bool = False

    def overlaps(self, lo: float, hi: float) -> bool:
        if self.high_open:
            return lo < self.high and hi >= self.low
        return lo <= self.high and hi >= self.low


def parse_reported(text: str, field_name: str = "reported_p") -> Reported | None:
    """ "0.49" -> [0.485, 0.495]; "<0.01" -> [0, 0.01); ">0.05" -> (0.05, 1]; "" -> None."""
    raw = (text or "").strip()
    t = raw.replace("*", "").replace(" ", "").lower().removeprefix("p").removeprefix("=")
    if not t or t in ("-", "na", "n/a"):
        return None
    op = ""
    for sym in ("<=", ">=", "≤", "≥", "<", ">"):
        if t.startswith(sym):
            op, t = sym, t[len(sym) :]
            break
    try:
        d = Decimal(t)
    except InvalidOperation:
        raise InvalidInput(
            field_name, f"cannot read p-value {raw!r}", '"0.49", "<0.01", "*0.02", "<0.001*"'
        ) from None
    v = float(d)
    if not 0 <= v <= 1:
        raise InvalidInput(field_name, f"p-value {raw!r} outside [0, 1]", "0..1")
    if op in ("<", "<=", "≤"):
        return Reported(raw, 0.0, v, high_open=op == "<")
    if op in (">", ">=", "≥"):
        return Reported(raw, v, 1.0)
    exp = d.as_tuple().exponent
    half = 0.5 * 10.0 ** (exp if isinstance(exp, int) else 0)
    return Reported(raw, max(0.0, v - half), min(1.0, v + half))


def _half_unit(text: str) -> float:
    exp = Decimal(text).as_tuple().exponent
    return 0.5 * 10.0 ** (exp if isinstance(exp, int) else 0)


def grim(mean_text: str, n: int, items: int = 1) -> str:
    """GRIM: can a mean printed as ``mean_text`` arise from n patients' integer totals over ``items`` items?

    Returns "consistent", "inconsistent" or "not-testable" (when n * items >= 10^decimals, every printed
    mean is possible). Both half-up and half-down rounding of the true mean are accepted.
    """
    m = Decimal(mean_text)
    exp = m.as_tuple().exponent
    decimals = -exp if isinstance(exp, int) and exp < 0 else 0
    units = n * items
    if units >= 10**decimals:
        return "not-testable"
    q = Decimal(1).scaleb(-decimals)
    centre = int((m * units).to_integral_value())
    for total in range(centre - 2, centre + 3):
        v = Decimal(total) / Decimal(units)
        if any(v.quantize(q, rounding=r) == m for r in (ROUND_HALF_UP, ROUND_HALF_DOWN)):
            return "consistent"
    return "inconsistent"


@dataclass
class RecheckRow:
    label: str
    test: str
    recomputed_p: float | None
    reported_p: str
    consistent: bool | None
    p_range: list[float] | None = None
    consistent_with: list[str] = field(default_factory=list)
    other_tests: dict[str, float | None] = field(default_factory=dict)
    grim1: str | None = None
    grim2: str | None = None
    pct_check: dict[str, bool] | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: v for k, v in d.items() if v is not None or k in ("recomputed_p", "consistent")}


def _num(row: dict[str, str], key: str, line: int, *, integer: bool = False) -> Any:
    text = (row.get(key) or "").strip()
    if not text:
        raise InvalidInput(f"line {line}: {key}", "is required for this test", "a number")
    try:
        v = Decimal(text)
    except InvalidOperation:
        raise InvalidInput(f"line {line}: {key}", f"not a number: {text!r}", "a number") from None
    if not v.is_finite():
        raise InvalidInput(f"line {line}: {key}", f"not finite: {text!r}", "a finite number")
    if integer:
        if v != v.to_integral_value() or v < 0:
            raise InvalidInput(
                f"line {line}: {key}", f"must be a whole number >= 0, got {text!r}", "0, 1, 2 ..."
            )
        return int(v)
    return text


def _t_range(m1: str, s1: str, n1: int, m2: str, s2: str, n2: int, equal_var: bool) -> tuple[float, float]:
    d = abs(float(m1) - float(m2))
    hd = _half_unit(m1) + _half_unit(m2)
    diffs = (d + hd, max(0.0, d - hd))
    sds1 = (max(0.0, float(s1) - _half_unit(s1)), float(s1) + _half_unit(s1))
    sds2 = (max(0.0, float(s2) - _half_unit(s2)), float(s2) + _half_unit(s2))
    ps = [
        stats.t_from_summary(dd, a, n1, 0.0, b, n2, equal_var=equal_var).p
        for dd, a, b in itertools.product(diffs, sds1, sds2)
    ]
    vals = [p for p in ps if p is not None]
    return min(vals), max(vals)


def _count_p(test: str, e1: int, n1: int, e2: int, n2: int) -> float | None:
    table = [[e1, n1 - e1], [e2, n2 - e2]]
    if test == "fisher":
        return stats.fisher(table).p
    return stats.chi2(table, yates=test == "chi2-yates").p


def recheck_row(row: dict[str, str], line: int) -> RecheckRow:
    """Recompute one CSV row (``line`` is the 1-based line number used in error messages)."""
    label = (row.get("label") or "").strip()
    test = (row.get("test") or "").strip().lower()
    if test not in RECHECK_TESTS:
        raise InvalidInput(f"line {line}: test", f"unknown test {test!r}", ", ".join(RECHECK_TESTS))
    reported = parse_reported(row.get("reported_p") or "", f"line {line}: reported_p")
    n1, n2 = _num(row, "n1", line, integer=True), _num(row, "n2", line, integer=True)
    out = RecheckRow(label, test, None, (row.get("reported_p") or "").strip(), None)
    ranges: dict[str, tuple[float, float]] = {}
    if test in CONTINUOUS:
        m1, s1, m2, s2 = (_num(row, k, line) for k in ("mean1", "sd1", "mean2", "sd2"))
        if n1 < 2 or n2 < 2:
            raise InvalidInput(f"line {line}: n", "t-tests need n >= 2 per group", ">= 2")
        if float(s1) < 0 or float(s2) < 0:
            raise InvalidInput(f"line {line}: sd", "standard deviations cannot be negative", ">= 0")
        for t in CONTINUOUS:
            p = stats.t_from_summary(
                float(m1), float(s1), n1, float(m2), float(s2), n2, equal_var=t == "student"
            ).p
            out.other_tests[t] = p
            ranges[t] = _t_range(m1, s1, n1, m2, s2, n2, t == "student")
        items_text = (row.get("items") or "").strip()
        if items_text:
            items = _num(row, "items", line, integer=True)
            if items < 1:
                raise InvalidInput(f"line {line}: items", "must be >= 1", ">= 1")
            out.grim1, out.grim2 = grim(m1, n1, items), grim(m2, n2, items)
    else:
        e1, e2 = _num(row, "events1", line, integer=True), _num(row, "events2", line, integer=True)
        if e1 > n1 or e2 > n2:
            raise InvalidInput(f"line {line}: events", "events cannot exceed n", "0..n")
        if n1 < 1 or n2 < 1:
            raise InvalidInput(f"line {line}: n", "group sizes must be positive", ">= 1")
        for t in COUNTS:
            p = _count_p(t, e1, n1, e2, n2)
            out.other_tests[t] = p
            ranges[t] = (p, p) if p is not None else (math.nan, math.nan)
        checks = {}
        for key, e, n in (("pct1", e1, n1), ("pct2", e2, n2)):
            text = (row.get(key) or "").strip().rstrip("%")
            if text:
                printed = Decimal(_num({key: text}, key, line))
                exp = printed.as_tuple().exponent
                q = Decimal(1).scaleb(exp if isinstance(exp, int) else 0)
                true = Decimal(100 * e) / Decimal(n)
                checks[key] = any(
                    true.quantize(q, rounding=r) == printed for r in (ROUND_HALF_UP, ROUND_HALF_DOWN)
                )
        out.pct_check = checks or None
    out.recomputed_p = out.other_tests[test]
    lo, hi = ranges[test]
    out.p_range = [lo, hi]
    if reported is None:
        out.note = "no reported p-value"
        return out
    out.consistent = reported.overlaps(lo, hi)
    out.consistent_with = [t for t, (a, b) in ranges.items() if reported.overlaps(a, b)]
    return out


def recheck_csv(path: str | Path) -> dict[str, Any]:
    """Recheck every row of a CSV file; returns {"rows": [...], "summary": {...}}."""
    p = Path(path)
    if not p.is_file():
        raise InvalidInput("FILE", f"no such file: {p}", "a CSV file with header " + ",".join(HEADER))
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("FILE", "not UTF-8 text", "a UTF-8 CSV file") from None
    numbered = [
        (i + 1, line) for i, line in enumerate(text.splitlines()) if line.strip() and not line.startswith("#")
    ]
    reader = csv.DictReader(line for _, line in numbered)
    missing = [h for h in HEADER if h not in (reader.fieldnames or [])]
    if missing:
        raise InvalidInput("header", f"missing columns {missing}", ",".join(HEADER))
    rows = [recheck_row(r, numbered[i + 1][0]) for i, r in enumerate(reader)]
    if not rows:
        raise InvalidInput("FILE", "no data rows", "at least one row after the header")
    judged = [r for r in rows if r.consistent is not None]
    return {
        "rows": [r.to_dict() for r in rows],
        "summary": {
            "rows": len(rows),
            "checked": len(judged),
            "consistent": sum(1 for r in judged if r.consistent),
            "inconsistent": sum(1 for r in judged if not r.consistent),
            "grim_inconsistent": sum(1 for r in rows if "inconsistent" in (r.grim1, r.grim2)),
            "percent_mismatches": sum(1 for r in rows if r.pct_check and not all(r.pct_check.values())),
        },
    }
