"""docs/provenance.md lists every shipped reference file with its current version and status."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _gen():
    spec = importlib.util.spec_from_file_location("gen_provenance", ROOT / "scripts" / "gen_provenance.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_provenance_doc_is_up_to_date() -> None:
    expected = _gen().render()
    actual = (ROOT / "docs" / "provenance.md").read_text(encoding="utf-8")
    assert actual == expected, "docs/provenance.md is stale: run `.venv/bin/python scripts/gen_provenance.py`"


def test_reference_list_and_show(cli) -> None:
    r = cli("reference", "list", "--json")
    assert r.code == 0
    names = [row["name"] for row in r.json["reference"]]
    assert "omalizumab_us_asthma_12plus" in names
    r = cli("reference", "show", "omalizumab_us_asthma_12plus", "--json")
    assert r.code == 0 and r.json["status"] == "VERIFIED"
    r = cli("reference", "show", "nope", "--json")
    assert r.code == 2 and "name:" in r.stderr and r.stdout == ""
