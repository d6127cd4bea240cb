"""`immunoplan export tables|research|fhir` and `import-fhir` from the command line."""

from __future__ import annotations

import json

import pytest

from immunoplan.registry.db import open_registry
from immunoplan.services import records as rec


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "r.sqlite"
    reg = open_registry(path)
    rec.register_patient(
        reg,
        "t",
        pseudo_id="X-1",
        sex="male",
        display_name="Bob Example",
        age_years=95,
        birth_date="1930-02-03",
    )
    rec.record_measurement(
        reg, "t", pseudo_id="X-1", kind="total_ige_iu_ml", value=300, measured_on="2024-02-02"
    )
    reg.dispose()
    return path


def test_export_tables_csv_and_xlsx(cli, db, tmp_path):
    r = cli("export", "tables", "--db", db, "--out", tmp_path / "csv", "--json")
    assert r.code == 0, r.stderr
    assert r.json["rows"]["patients"] == 1 and (tmp_path / "csv" / "measurements.csv").exists()
    r = cli(
        "export",
        "tables",
        "--db",
        db,
        "--out",
        tmp_path / "x.xlsx",
        "--format",
        "xlsx",
        "--table",
        "patients",
        "--json",
    )
    assert r.code == 0 and r.json["rows"] == {"patients": 1}
    bad = cli("export", "tables", "--db", db, "--out", tmp_path / "y", "--format", "pdf")
    assert bad.code == 2 and "format" in bad.stderr


def test_export_research_human_and_json(cli, db, tmp_path):
    r = cli("export", "research", "--db", db, "--out", tmp_path / "res", "--json")
    assert r.code == 0, r.stderr
    text = (tmp_path / "res" / "patients.csv").read_text()
    assert "Bob Example" not in text and "X-1" not in text and "1930-02-03" not in text and ",90," in text
    assert "de-identified" in cli("export", "research", "--db", db, "--out", tmp_path / "res2").stdout


def test_export_fhir_then_import_fhir(cli, db, tmp_path):
    out = tmp_path / "bundle.json"
    r = cli("export", "fhir", "--db", db, "--out", out, "--json")
    assert r.code == 0, r.stderr
    assert (
        r.json["rows"] == {"Patient": 1, "Observation": 1}
        and json.loads(out.read_text())["type"] == "collection"
    )
    r = cli("import-fhir", out, "--db", tmp_path / "copy.sqlite", "--json")
    assert r.code == 0 and r.json["rows"] == {"patients": 1, "measurements": 1}
    again = cli("import-fhir", out, "--db", tmp_path / "copy.sqlite")
    assert again.code == 2 and "already" in again.stderr
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    assert cli("import-fhir", junk, "--db", tmp_path / "copy.sqlite").code == 2
