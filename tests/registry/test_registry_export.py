"""CSV/XLSX table exports and the de-identified research export."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest
from openpyxl import load_workbook

from immunoplan.errors import InvalidInput
from immunoplan.registry.exporting import EXPORT_TABLES, export_research, export_tables
from immunoplan.services import records as rec
from immunoplan.synthetic import create_demo


@pytest.fixture(scope="module")
def demo_reg(tmp_path_factory):
    from immunoplan.registry.db import open_registry

    reg = open_registry(tmp_path_factory.mktemp("exp") / "demo.sqlite")
    create_demo(reg, seed=2, patients=40)
    rec.record_visit(
        reg,
        "dr.x",
        pseudo_id="S001-001",
        code="unscheduled",
        visit_on="2024-06-01",
        notes="called Mrs Example at home",
    )
    yield reg
    reg.dispose()


def test_csv_export_has_every_table_but_users(demo_reg, tmp_path):
    r = export_tables(demo_reg, tmp_path / "csv", "csv")
    assert "users" not in r["rows"] and set(r["rows"]) == set(EXPORT_TABLES)
    p = pd.read_csv(tmp_path / "csv" / "patients.csv")
    assert len(p) == r["rows"]["patients"] == 77
    courses = pd.read_csv(tmp_path / "csv" / "courses.csv")
    assert json.loads(courses.basis.iloc[0])[0]["id"] == "registry_demo_calibration"


def test_xlsx_export_one_sheet_per_table(demo_reg, tmp_path):
    out = tmp_path / "reg.xlsx"
    r = export_tables(demo_reg, out, "xlsx", tables=["patients", "reactions"])
    wb = load_workbook(out, read_only=True)
    assert wb.sheetnames == ["patients", "reactions"]
    assert wb["patients"].max_row == r["rows"]["patients"] + 1


def test_export_rejects_unknown_format_and_table(demo_reg, tmp_path):
    with pytest.raises(InvalidInput):
        export_tables(demo_reg, tmp_path, "pdf")
    with pytest.raises(InvalidInput):
        export_tables(demo_reg, tmp_path, "csv", tables=["users"])


def test_research_export_contains_no_direct_identifier(demo_reg, tmp_path):
    out = tmp_path / "research"
    export_research(demo_reg, out, seed=5)
    with demo_reg.engine.connect() as conn:
        pts = pd.read_sql_table("patients", conn)
    names = set(pts.display_name.dropna())
    pseudo = set(pts.pseudo_id)
    births = {str(d.date() if hasattr(d, "date") else d) for d in pts.birth_date.dropna()}
    text = "\n".join(p.read_text() for p in out.glob("*.csv"))
    assert names and not any(n in text for n in names)
    assert not any(pid in text for pid in pseudo)
    assert not any(b in text for b in births)
    assert "Mrs Example" not in text and "dr.x" not in text
    assert not (out / "users.csv").exists() and not (out / "audit_log.csv").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["policy"]["id"] == "registry_deidentification"


def test_research_export_shifts_dates_per_patient_and_keeps_intervals(demo_reg, tmp_path):
    out = tmp_path / "research"
    export_research(demo_reg, out, seed=5)
    with demo_reg.engine.connect() as conn:
        visits = pd.read_sql_table("visits", conn)
        pts = pd.read_sql_table("patients", conn)
    shifted = pd.read_csv(out / "visits.csv")
    assert len(shifted) == len(visits)
    orig = (
        visits.assign(day=pd.to_datetime(visits.visit_on))
        .groupby("patient_id")
        .day.apply(lambda d: (d - d.min()).dt.days.tolist())
    )
    new = (
        shifted.assign(day=pd.to_datetime(shifted.visit_on))
        .groupby("research_id")
        .day.apply(lambda d: (d - d.min()).dt.days.tolist())
    )
    assert sorted(map(tuple, orig)) == sorted(map(tuple, new))  # intervals preserved
    assert (
        pd.to_datetime(shifted.visit_on.sort_values()).to_numpy()
        != pd.to_datetime(visits.visit_on.sort_values()).to_numpy()
    ).any()
    assert pts.age_years.max() <= 90
    p = pd.read_csv(out / "patients.csv")
    assert set(p.columns).isdisjoint({"pseudo_id", "display_name", "birth_date", "id"})


def test_research_export_caps_ages(sqlite_registry, tmp_path):
    rec.register_patient(
        sqlite_registry, "t", pseudo_id="OLD", sex="female", age_years=97, birth_date=date(1928, 1, 1)
    )
    export_research(sqlite_registry, tmp_path / "r", seed=1)
    p = pd.read_csv(tmp_path / "r" / "patients.csv")
    assert p.age_years.tolist() == [90]
