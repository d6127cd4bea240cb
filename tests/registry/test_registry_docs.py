"""The data dictionary documents every import column and every table column (fails when one is missing)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from immunoplan.registry.checks import measurement_kinds
from immunoplan.registry.importing import iter_specs
from immunoplan.registry.models import Base

DOC = Path(__file__).resolve().parents[2] / "docs" / "data-dictionary.md"


def _section(text: str, title: str) -> str:
    start = text.index(title)
    nxt = re.search(r"\n#{2,3} ", text[start + len(title) :])
    return text[start : start + len(title) + (nxt.start() if nxt else len(text))]


@pytest.mark.parametrize(("table", "columns"), list(iter_specs()))
def test_every_import_column_is_documented(table, columns):
    section = _section(DOC.read_text(), f"### {table} ")
    for c in columns:
        assert f"| `{c.name}` |" in section, f"{table}.{c.name} missing from docs/data-dictionary.md"


def test_every_measurement_kind_is_documented():
    text = DOC.read_text()
    for kind in measurement_kinds():
        assert f"| `{kind}` |" in text


@pytest.mark.parametrize("table", list(Base.metadata.tables))
def test_every_table_column_is_documented(table):
    section = _section(DOC.read_text(), f"### `{table}`")
    for c in Base.metadata.tables[table].columns:
        assert f"| `{c.name}` |" in section, f"{table}.{c.name} missing from docs/data-dictionary.md"
