"""Versioned reference data: every table, threshold, rule and coefficient with its source and status.

Each file in ``reference/data/`` is a JSON object with at least::

    {"id": "...", "version": "YYYY.MM.N", "title": "...", "source": "...", "status": "VERIFIED", ...}

``status`` is one of VERIFIED (read in the cited source), SECONDARY (read in a quotation), COMPUTED
(arithmetic from verified numbers) or UNVERIFIED (not confirmed: never used to dose a patient without a
recorded override).
Nested items (rules, cells, rows) may carry their own ``status`` and ``source``; `Basis` is what every
recommendation echoes back so a clinician can see which table, rule and source it came from.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from typing import Any

from immunoplan.errors import ReferenceDataError

STATUSES = ("VERIFIED", "SECONDARY", "COMPUTED", "UNVERIFIED")
REQUIRED_KEYS = ("id", "version", "title", "source", "status")


@dataclass(frozen=True)
class Basis:
    """Which data a result came from: echoed with every recommendation."""

    id: str
    version: str
    source: str
    status: str
    rule: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["rule"] is None:
            del d["rule"]
        return d

    @property
    def verified(self) -> bool:
        return self.status != "UNVERIFIED"


def _check_statuses(node: Any, path: str) -> None:
    if isinstance(node, dict):
        st = node.get("status")
        if st is not None and isinstance(st, str) and st.upper() == st and st not in STATUSES:
            raise ReferenceDataError(f"{path}: status {st!r} is not one of {STATUSES}")
        for k, v in node.items():
            _check_statuses(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_statuses(v, f"{path}[{i}]")


def available() -> list[str]:
    """Names of the reference files shipped with the package (without ``.json``)."""
    root = resources.files(__package__).joinpath("data")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".json"))


@cache
def load(name: str) -> dict[str, Any]:
    """Load and validate ``reference/data/<name>.json``. Cached; treat the result as read-only."""
    path = resources.files(__package__).joinpath("data", f"{name}.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReferenceDataError(f"no reference data file {name!r}; available: {available()}") from None
    except json.JSONDecodeError as exc:
        raise ReferenceDataError(f"reference data {name!r} is not valid JSON: {exc}") from None
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ReferenceDataError(f"reference data {name!r} lacks {missing}")
    if data["status"] not in STATUSES:
        raise ReferenceDataError(f"reference data {name!r}: status {data['status']!r} not in {STATUSES}")
    _check_statuses(data, name)
    return data


def basis(
    name: str, rule: str | None = None, *, status: str | None = None, source: str | None = None
) -> Basis:
    """The `Basis` of reference file ``name`` (optionally naming one rule, with its own status/source)."""
    d = load(name)
    return Basis(
        id=d["id"],
        version=d["version"],
        source=source or d["source"],
        status=status or d["status"],
        rule=rule,
    )
