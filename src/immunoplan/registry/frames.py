"""Read the registry tables the cohort analyses need, as pandas DataFrames (no analysis here).

`immunoplan.analysis.datasets.from_tables` turns them into a `CohortData`; `immunoplan.services.analysis`
joins the two, so the analysis layer never opens a database.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from immunoplan.errors import InvalidInput
from immunoplan.registry.db import open_registry

#: corrections, never deletions: analyses read only entries that were not voided (amended ones as amended)
LIVE = " where voided_at is null"


def read_analysis_tables(url_or_path: str) -> dict[str, pd.DataFrame]:
    """The raw tables (patients, visits, measurements, questionnaires, risk_assessments, courses,
    injections with ``abs_day`` = days since the epoch, reactions) of the registry at ``url_or_path``."""
    if "://" not in str(url_or_path) and not Path(url_or_path).exists():
        raise InvalidInput("db", f"no registry at {url_or_path}", "an existing SQLite file or a database URL")
    reg = open_registry(url_or_path)
    try:
        with reg.engine.connect() as conn:
            return _read_all(conn)
    finally:
        reg.dispose()


def _read_all(conn) -> dict[str, pd.DataFrame]:  # type: ignore[no-untyped-def]
    days = (
        "julianday(given_at)" if conn.dialect.name == "sqlite" else "extract(epoch from given_at) / 86400.0"
    )
    patients = _read(
        conn,
        "select id as patient_id, pseudo_id, cohort, study_group as grp, age_years, age_group, "
        "sex, height_cm, smoking, family_history_asthma, comorbid_allergies, previous_biologics, "
        "asthma_step from patients",
    )
    return {
        "patients": patients.rename(columns={"grp": "group"}),
        "visits": _read(
            conn, "select id as visit_id, patient_id, code as visit, medication_score from visits" + LIVE
        ),
        "measurements": _read(
            conn, "select patient_id, visit_id, kind, allergen, value, pct_predicted from measurements" + LIVE
        ),
        "questionnaires": _read(
            conn, "select patient_id, visit_id, instrument, score as value from questionnaires" + LIVE
        ),
        "risk_assessments": _read(
            conn,
            "select patient_id, id, sige_class, sige_total_ratio_pct, sige_kua_l, total_ige_iu_ml "
            "from risk_assessments",
        ),
        "courses": _read(
            conn, "select id as course_id, patient_id, kind, with_omalizumab, target_reached from courses"
        ),
        "injections": _read(conn, f"select patient_id, course_id, {days} as abs_day from injections" + LIVE),
        "reactions": _read(
            conn,
            "select patient_id, visit_id, kind, grade, days_from_first_dose as day from reactions" + LIVE,
        ),
    }


def _read(conn, sql: str) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """Run a read-only query on the raw DB-API cursor (SQLAlchemy row objects are too slow for 10^6 rows)."""
    cur = conn.connection.cursor()
    try:
        cur.execute(sql)
        cols = [c[0] for c in cur.description]
        rows = cur.fetchall()
    finally:
        cur.close()
    return pd.DataFrame.from_records(rows, columns=cols)
