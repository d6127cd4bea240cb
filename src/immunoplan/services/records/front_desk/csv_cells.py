"""CSV text that a spreadsheet opens safely: every cell that a spreadsheet would read as a formula is
neutralised (OWASP "CSV Injection": a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return is prefixed with a single quote, so ``=HYPERLINK(...)`` typed as a patient's name or a note stays
text). Used by the front desk exports (late-shot list, mail-merge reminders)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: the first characters that make a spreadsheet read a cell as a formula (OWASP CSV Injection)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: Any) -> str:
    """``value`` as CSV cell text, prefixed with ``'`` when it starts like a formula (None -> "")."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """CSV text (header ``columns``, one line per row, ``\\r\\n`` line ends as RFC 4180), every cell
    neutralised (`neutralise_cell`). Columns missing from a row are empty."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(columns)
    for row in rows:
        w.writerow([neutralise_cell(row.get(c)) for c in columns])
    return out.getvalue()
