"""Migration 0003 converts the courses stored before it: ``product|regimen`` packed into ``regimen`` by the
web app, and the product/regimen named in words by imports, become ``product_id``/``regimen_id`` columns; the
schedule parameters come from the stored planning request. The upgrade keeps every other row and link
(SQLite rebuilds tables in batch mode: the rebuild must not fire ON DELETE actions)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select, text

from immunoplan.registry import models as m
from immunoplan.registry.db import current_revision, head_revision, make_engine, migrate, open_registry

REQUEST = {
    "product": "alutard-sq-hdm",
    "regimen": "cluster",
    "start": "2025-01-06",
    "start_time": "09:00",
    "maintenance_interval_weeks": "6",
    "omalizumab": "pre",
    "omalizumab_lead_weeks": "8",
}
OLD_COURSES = [
    # (kind, product, regimen, plan)
    (
        "cluster",
        "Alutard SQ house dust mite (ALK)",
        "alutard-sq-hdm|cluster",
        {"request": REQUEST, "result": {}},
    ),
    ("SCIT", "Alutard SQ house dust mite", "weekly build-up (15 injections)", None),
    ("RIT", "Tyrosine-adsorbed house dust mite extract", "1-day rush", None),
    ("drug_desensitization", None, "12-step", None),
]


def _old_registry(path: Path) -> None:
    engine = make_engine(f"sqlite:///{path}")
    assert migrate(engine, "0002") == "0002"
    insert_course = text(
        "INSERT INTO courses (patient_id, kind, product, regimen, plan, with_omalizumab, omalizumab_timing, "
        "status, created_at) "
        "VALUES (1, :kind, :product, :regimen, :plan, :om, :timing, 'active', '2025-01-01')"
    )
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO patients (pseudo_id, sex, cohort, created_at) "
                "VALUES ('OLD-1', 'female', 'clinic', '2025-01-01')"
            )
        )
        for kind, product, regimen, plan in OLD_COURSES:
            conn.execute(
                insert_course,
                {
                    "kind": kind,
                    "product": product,
                    "regimen": regimen,
                    "plan": None if plan is None else json.dumps(plan),
                    "om": plan is not None,
                    "timing": "pre" if plan is not None else "none",
                },
            )
        conn.execute(
            text("INSERT INTO visits (patient_id, code, visit_on) VALUES (1, 'baseline', '2025-01-06')")
        )
        conn.execute(
            text(
                "INSERT INTO measurements (patient_id, visit_id, kind, allergen, value, unit, measured_on) "
                "VALUES (1, 1, 'total_ige_iu_ml', '', 300, 'IU/mL', '2025-01-06')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO injections (course_id, patient_id, given_at, dose, dose_unit) "
                "VALUES (1, 1, '2025-01-06 17:00:00', '10', 'SQ-U')"
            )
        )
        conn.execute(
            text("INSERT INTO reactions (patient_id, kind, injection_id, visit_id) VALUES (1, 'local', 1, 1)")
        )
    engine.dispose()


def test_upgrade_converts_old_courses_to_id_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _old_registry(path)
    reg = open_registry(path)  # upgrades to head
    try:
        assert current_revision(reg.engine) == head_revision()
        with reg.session() as s:
            rows = {c.id: c for c in s.scalars(select(m.Course).order_by(m.Course.id))}
            web, imported, rush, desens = (rows[i] for i in (1, 2, 3, 4))
            assert (web.product_id, web.regimen_id, web.regimen) == ("alutard-sq-hdm", "cluster", "cluster")
            assert (web.start_time, web.maintenance_interval_weeks, web.omalizumab_lead_weeks) == (
                "09:00",
                6,
                8,
            )
            assert (imported.product_id, imported.regimen_id) == ("alutard-sq-hdm", "conventional")
            assert imported.regimen == "weekly build-up (15 injections)"  # the words shown stay
            assert imported.maintenance_interval_weeks is None  # no planning request: nothing invented
            assert (rush.product_id, rush.regimen_id) == ("hdm-tyrosine-ultrarush", "rush")
            assert (desens.product_id, desens.regimen_id) == (None, None)
            assert all("|" not in (c.regimen or "") for c in rows.values())
            # links survive the batch rebuilds of visits and injections
            assert s.scalar(select(m.Measurement.visit_id)) == 1
            assert s.execute(select(m.Reaction.injection_id, m.Reaction.visit_id)).one() == (1, 1)
            assert s.scalar(select(m.Patient.mrn)) is None
        with reg.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # back on after the upgrade
    finally:
        reg.dispose()
