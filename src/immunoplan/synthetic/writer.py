"""Bulk writer for the synthetic cohorts: rows per table with explicit ids, flushed with DBAPI executemany.

One ``bulk_insert`` audit entry per table (``immunoplan.registry.audit.record_bulk``) instead of one per row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from immunoplan import clock
from immunoplan.registry import models as m
from immunoplan.registry.audit import record_bulk

Progress = Callable[[int, int, str], None]
TABLES = (
    "patients",
    "diagnoses",
    "courses",
    "visits",
    "measurements",
    "questionnaires",
    "risk_assessments",
    "injections",
    "omalizumab_administrations",
    "reactions",
)
MODELS = {
    t.__tablename__: t
    for t in (
        m.Patient,
        m.Diagnosis,
        m.Course,
        m.Visit,
        m.Measurement,
        m.Questionnaire,
        m.RiskAssessment,
        m.Injection,
        m.OmalizumabAdministration,
        m.Reaction,
    )
}
CHUNK_PATIENTS = 2000


class Writer:
    """Collects rows per table with explicit ids and flushes them with bulk inserts."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.next_id = {t: (s.scalar(select(func.max(MODELS[t].id))) or 0) + 1 for t in TABLES}
        self.rows: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
        self.counts = dict.fromkeys(TABLES, 0)
        self.now = clock.now()

    def add(self, table: str, **row: Any) -> int:
        row["id"] = self.next_id[table]
        self.next_id[table] += 1
        self.rows[table].append(row)
        return int(row["id"])

    def flush(self) -> None:
        """Insert the collected rows: DBAPI executemany with SQLAlchemy's own per-column bind processors
        (the same stored values as an ORM insert, without its per-row overhead)."""
        conn = self.s.connection()
        dialect = conn.dialect
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        for t in TABLES:
            rows = self.rows[t]
            if not rows:
                continue
            cols = list(MODELS[t].__table__.columns)
            procs = [c.type._cached_bind_processor(dialect) for c in cols]
            defaults = [
                c.default.arg if c.default is not None and c.default.is_scalar else None for c in cols
            ]
            names = [c.name for c in cols]
            columns = []
            for n, d, proc in zip(names, defaults, procs, strict=True):
                values = [r.get(n, d) for r in rows]
                if proc is not None:
                    values = [None if v is None else proc(v) for v in values]
                columns.append(values)
            data = list(zip(*columns, strict=True))
            sql = f"INSERT INTO {t} ({', '.join(names)}) VALUES ({', '.join([mark] * len(names))})"
            conn.exec_driver_sql(sql, data)
            self.counts[t] += len(rows)
            self.rows[t] = []

    def finish(self, detail: dict[str, Any]) -> None:
        self.flush()
        for t, n in self.counts.items():
            if n:
                record_bulk(self.s, t, n, detail)
        if self.s.get_bind().dialect.name == "postgresql":  # explicit ids: move the sequences past them
            for t in TABLES:
                self.s.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), "
                        f"(SELECT COALESCE(MAX(id), 1) FROM {t}))"
                    )
                )
