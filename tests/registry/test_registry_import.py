"""CSV/XLSX import: atomic, every bad row reported, idempotent re-import."""

from __future__ import annotations

import csv

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from immunoplan.errors import InvalidInput
from immunoplan.registry import models as m
from immunoplan.registry.importing import ImportRejected, import_file

PATIENTS = [
    ["pseudo_id", "sex", "birth_date", "height_cm", "cohort", "study_group", "family_history_asthma"],
    ["C-001", "female", "1980-04-02", "165", "clinic", "SCIT", "yes"],
    ["C-002", "male", "1975-11-30", "180.5", "clinic", "Omb+SCIT", "no"],
]
VISITS = [["pseudo_id", "code", "visit_on", "week"], ["C-001", "baseline", "2025-01-06", "0"]]
MEAS = [
    ["pseudo_id", "kind", "value", "measured_on", "allergen", "unit", "visit_code"],
    ["C-001", "total_ige_iu_ml", "185.5", "2025-01-06", "", "IU/mL", "baseline"],
    ["C-001", "sige_kua_l", "48.8", "2025-01-06", "d1", "", "baseline"],
    ["C-002", "fev1_pct_pred", "81", "2025-01-07", "", "", ""],
]


def _csv(path, rows):
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def _count(reg, model):
    with reg.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_csv_import_and_idempotent_reimport(registry, tmp_path):
    p = _csv(tmp_path / "patients.csv", PATIENTS)
    r = import_file(registry, p, "importer")
    assert r["tables"]["patients"] == {"inserted": 2, "updated": 0, "unchanged": 0}
    import_file(registry, _csv(tmp_path / "visits.csv", VISITS), "importer")
    meas = _csv(tmp_path / "m.csv", MEAS)
    assert (
        import_file(registry, meas, "importer", table="measurements")["tables"]["measurements"]["inserted"]
        == 3
    )
    again = import_file(registry, meas, "importer", table="measurements")
    assert again["tables"]["measurements"] == {"inserted": 0, "updated": 0, "unchanged": 3}
    assert import_file(registry, p, "importer")["tables"]["patients"]["unchanged"] == 2
    assert _count(registry, m.Patient) == 2 and _count(registry, m.Measurement) == 3
    with registry.session() as s:
        unit = s.scalar(select(m.Measurement.unit).where(m.Measurement.kind == "sige_kua_l"))
        visit = s.scalar(select(m.Measurement.visit_id).where(m.Measurement.kind == "sige_kua_l"))
    assert unit == "kUA/L" and visit is not None


def test_changed_value_updates_and_is_audited(sqlite_registry, tmp_path):
    reg = sqlite_registry
    import_file(reg, _csv(tmp_path / "patients.csv", PATIENTS), "a")
    changed = [PATIENTS[0], ["C-001", "female", "1980-04-02", "166", "clinic", "SCIT", "yes"], PATIENTS[2]]
    r = import_file(reg, _csv(tmp_path / "p2.csv", changed), "b", table="patients")
    assert r["tables"]["patients"] == {"inserted": 0, "updated": 1, "unchanged": 1}
    with reg.session() as s:
        upd = s.scalar(select(m.AuditEntry).where(m.AuditEntry.action == "update"))
    assert upd.actor == "b" and upd.before == {"height_cm": 165.0} and upd.after == {"height_cm": 166.0}


def test_one_bad_row_rejects_the_file_and_writes_nothing(registry, tmp_path):
    rows = PATIENTS + [["C-003", "female", "1990-01-01", "1650", "clinic", "SCIT", "yes"]]
    with pytest.raises(ImportRejected) as exc:
        import_file(registry, _csv(tmp_path / "patients.csv", rows), "importer")
    assert [e.to_dict() for e in exc.value.errors] == [
        {
            "table": "patients",
            "row": 4,
            "column": "height_cm",
            "reason": "1650 is above the accepted range (accepted: [30, 250] cm)",
        }
    ]
    assert _count(registry, m.Patient) == 0 and _count(registry, m.AuditEntry) == 0


def test_every_bad_row_and_column_is_reported(sqlite_registry, tmp_path):
    import_file(sqlite_registry, _csv(tmp_path / "patients.csv", PATIENTS), "a")
    bad = [
        MEAS[0],
        ["C-001", "total_ige_iu_ml", "abc", "2025-01-06", "", "", ""],
        ["C-001", "sige_kua_l", "48.8", "06/01/2025", "", "", ""],
        ["C-009", "fev1_pct_pred", "81", "2025-01-07", "", "", ""],
        ["C-002", "fev1_pct_pred", "81", "2025-01-07", "", "L", "week12"],
        MEAS[1],
        MEAS[1],
    ]
    with pytest.raises(ImportRejected) as exc:
        import_file(sqlite_registry, _csv(tmp_path / "measurements.csv", bad), "a")
    got = {(e.row, e.column) for e in exc.value.errors}
    # field errors, an unknown patient, an unknown visit and a duplicate row are all reported together
    assert got == {
        (2, "value"),
        (3, "measured_on"),
        (4, "pseudo_id"),
        (5, "unit"),
        (6, "visit_code"),
        (7, "pseudo_id"),
    }
    assert _count(sqlite_registry, m.Measurement) == 0


def test_header_problems_are_reported(sqlite_registry, tmp_path):
    with pytest.raises(ImportRejected) as exc:
        import_file(
            sqlite_registry, _csv(tmp_path / "patients.csv", [["pseudo_id", "colour"], ["X", "red"]]), "a"
        )
    got = {(e.row, e.column, e.reason) for e in exc.value.errors}
    assert (1, "colour", "unknown column") in got and (1, "sex", "required column is missing") in got


def test_xlsx_workbook_with_several_sheets(registry, tmp_path):
    wb = Workbook()
    wb.remove(wb.active)
    for name, rows in (("measurements", MEAS), ("patients", PATIENTS), ("visits", VISITS)):
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    path = tmp_path / "registry.xlsx"
    wb.save(path)
    r = import_file(registry, path, "importer")
    assert r["tables"]["measurements"]["inserted"] == 3 and r["tables"]["patients"]["inserted"] == 2
    assert import_file(registry, path, "importer")["tables"]["visits"]["unchanged"] == 1


@pytest.mark.parametrize("name", ["data.txt", "unknown.csv"])
def test_unreadable_inputs(sqlite_registry, tmp_path, name):
    path = tmp_path / name
    path.write_text("a,b\n1,2\n")
    with pytest.raises(InvalidInput):
        import_file(sqlite_registry, path, "a")


def test_cli_import_reports_rejected_rows_and_exit_2(cli, tmp_path):
    db = tmp_path / "r.sqlite"
    good = _csv(tmp_path / "patients.csv", PATIENTS)
    r = cli("import", good, "--db", db, "--json")
    assert r.code == 0, r.stderr
    assert r.json["tables"]["patients"]["inserted"] == 2
    bad = _csv(tmp_path / "visits.csv", [VISITS[0], ["C-001", "week99", "2025-01-06", "0"]])
    r = cli("import", bad, "--db", db, "--json")
    assert r.code == 2 and r.json["status"] == "rejected"
    assert r.json["errors"] == [
        {
            "table": "visits",
            "row": 2,
            "column": "code",
            "reason": "unknown value 'week99' (accepted: screening, baseline, week12, "
            "week24, week48, month12, unscheduled)",
        }
    ]
    human = cli("import", bad, "--db", db)
    assert human.code == 2 and "week99" in human.stderr and "Traceback" not in human.stderr
    assert cli("import", tmp_path / "missing.csv", "--db", db).code == 2


COURSES = [
    ["pseudo_id", "kind", "started_on", "product", "target_dose", "dose_unit", "interval_days"],
    ["C-001", "SCIT", "2025-01-06", "Alutard SQ", "100000", "SQ-U", "7"],
]
INJECTIONS = [
    ["pseudo_id", "course_kind", "course_started_on", "given_at", "dose", "dose_unit", "volume_ml", "vial"],
    ["C-001", "SCIT", "2025-01-06", "2025-01-06T09:00", "20", "SQ-U", "0.2", "1"],
    ["C-001", "SCIT", "2025-01-06", "2025-01-13T09:00+01:00", "40", "SQ-U", "0.4", "1"],
]


def test_courses_and_injections_import_idempotently_with_exact_doses(registry, tmp_path):
    import_file(registry, _csv(tmp_path / "patients.csv", PATIENTS), "a")
    import_file(registry, _csv(tmp_path / "courses.csv", COURSES), "a")
    inj = _csv(tmp_path / "injections.csv", INJECTIONS)
    assert import_file(registry, inj, "a")["tables"]["injections"]["inserted"] == 2
    assert import_file(registry, inj, "a")["tables"]["injections"] == {
        "inserted": 0,
        "updated": 0,
        "unchanged": 2,
    }
    with registry.session() as s:
        rows = s.execute(
            select(m.Injection.sequence, m.Injection.dose, m.Injection.volume_ml).order_by(
                m.Injection.given_at
            )
        ).all()
    from decimal import Decimal

    assert rows == [(1, Decimal("20"), Decimal("0.2")), (2, Decimal("40"), Decimal("0.4"))]


def test_injection_for_an_unknown_course_is_reported(sqlite_registry, tmp_path):
    import_file(sqlite_registry, _csv(tmp_path / "patients.csv", PATIENTS), "a")
    with pytest.raises(ImportRejected) as exc:
        import_file(sqlite_registry, _csv(tmp_path / "injections.csv", INJECTIONS[:2]), "a")
    assert [(e.row, e.column) for e in exc.value.errors] == [(2, "course_started_on")]
    bad = [INJECTIONS[0], ["C-001", "SCIT", "2025-01-06", "2025-01-06T09:00", "-5", "SQ-U", "", ""]]
    with pytest.raises(ImportRejected) as exc2:
        import_file(sqlite_registry, _csv(tmp_path / "i2.csv", bad), "a", table="injections")
    assert {(e.row, e.column) for e in exc2.value.errors} == {(2, "dose")}
