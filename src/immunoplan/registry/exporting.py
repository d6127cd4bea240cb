"""Exports: CSV/XLSX per table, and a de-identified research export.

- `export_tables`: every registry table except ``users`` (password hashes) as CSV files in a folder or as
  one XLSX workbook with a sheet per table. JSON columns are written as JSON text.
- `export_research`: CSV per clinical table without direct identifiers (policy in reference data
  ``registry_deidentification``): names, birth dates, pseudonymous ids, free text and staff names are dropped;
  ``patient_id`` becomes a random ``research_id``; all dates and times of a patient move by the same random
  number of days (intervals are preserved); ages are capped. A ``manifest.json`` records the policy version.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import JSON, Date, DateTime, select

from immunoplan.errors import InvalidInput
from immunoplan.reference import basis, load
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry

EXPORT_TABLES = tuple(t for t in m.Base.metadata.tables if t not in ("users", "idempotency_keys"))


def _frame(reg: Registry, table: str, *, live_only: bool = False) -> pd.DataFrame:
    """A table as a DataFrame; ``live_only``: without voided entries (corrections, never deletions)."""
    t = m.Base.metadata.tables[table]
    q = select(t).order_by(t.c.id)
    if live_only and "voided_at" in t.c:
        q = q.where(t.c.voided_at.is_(None))
    with reg.engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
    df = pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in t.columns])
    for c in t.columns:
        if isinstance(c.type, JSON):
            df[c.name] = df[c.name].map(lambda v: None if v is None else json.dumps(v, default=str))
    return df


def _prepare(reg: Registry, table: str) -> pd.DataFrame:
    """A table as written by `export_tables`: JSON as text, date-times in ISO 8601."""
    df = _frame(reg, table)
    for c in m.Base.metadata.tables[table].columns:
        if isinstance(c.type, DateTime):
            df[c.name] = df[c.name].map(lambda v: None if v is None or pd.isna(v) else v.isoformat())
    return df


def export_tables(
    reg: Registry, out: str | Path, fmt: str = "csv", tables: list[str] | None = None
) -> dict[str, Any]:
    """Write tables as CSV files into folder ``out`` or as one XLSX workbook ``out``."""
    if fmt not in ("csv", "xlsx"):
        raise InvalidInput("format", f"unknown format {fmt!r}", "csv, xlsx")
    chosen = list(tables or EXPORT_TABLES)
    for t in chosen:
        if t not in EXPORT_TABLES:
            raise InvalidInput("table", f"cannot export {t!r}", ", ".join(EXPORT_TABLES))
    path = Path(out).expanduser()
    counts: dict[str, int] = {}
    if fmt == "csv":
        path.mkdir(parents=True, exist_ok=True)
        for t in chosen:
            df = _prepare(reg, t)
            df.to_csv(path / f"{t}.csv", index=False)
            counts[t] = len(df)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        with pd.ExcelWriter(path, engine="openpyxl") as xw:
            for t in chosen:
                df = _prepare(reg, t)
                df.to_excel(xw, sheet_name=t[:31], index=False)
                counts[t] = len(df)
    return {"out": str(path), "format": fmt, "rows": counts}


def _patient_of(reg: Registry, table: str, df: pd.DataFrame) -> pd.Series:
    if "patient_id" in df.columns:
        return df["patient_id"]
    if table == "desensitization_steps":
        sessions = _frame(reg, "desensitization_sessions").set_index("id")["patient_id"]
        return df["session_id"].map(sessions)
    raise AssertionError(f"{table} has no patient link")


def export_research(reg: Registry, out: str | Path, *, seed: int | None = None) -> dict[str, Any]:
    """De-identified CSV export into folder ``out`` (see module docstring). ``seed`` only for tests."""
    policy = load("registry_deidentification")
    lo, hi = policy["date_shift_days"]
    cap = int(policy["age_cap_years"])
    rng = np.random.default_rng(seed if seed is not None else secrets.randbits(64))
    path = Path(out).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    patients = _frame(reg, "patients")
    order = rng.permutation(len(patients))
    research_id = {int(pid): f"R{n + 1:06d}" for pid, n in zip(patients["id"], order, strict=True)}
    shift = {int(pid): int(rng.integers(lo, hi + 1)) for pid in patients["id"]}
    drop_all = set(policy["dropped_columns"]["*"])
    counts: dict[str, int] = {}
    for table in EXPORT_TABLES:
        if table in policy["dropped_tables"]:
            continue
        df = _frame(reg, table, live_only=True)  # research data: voided entries are not exported
        pids = df["id"] if table == "patients" else _patient_of(reg, table, df)
        days = pd.to_timedelta(pids.map(shift).fillna(0).astype(int), unit="D")
        for c in m.Base.metadata.tables[table].columns:
            if isinstance(c.type, DateTime):
                df[c.name] = (pd.to_datetime(df[c.name], utc=True) + days).map(
                    lambda v: None if pd.isna(v) else v.isoformat()
                )
            elif isinstance(c.type, Date):
                df[c.name] = (pd.to_datetime(df[c.name]) + days).dt.date
        if table == "patients":
            age = df["age_years"].astype("Float64")
            df["age_years"] = age.clip(upper=cap).astype("Int64")
            df.insert(0, "research_id", df["id"].map(research_id))
            df = df.drop(columns=["id"])
        else:
            df.insert(1, "research_id", pids.map(research_id))
            if "patient_id" in df.columns:
                df = df.drop(columns=["patient_id"])
        drop = drop_all | set(policy["dropped_columns"].get(table, []))
        df = df.drop(columns=[c for c in df.columns if c in drop])
        df.to_csv(path / f"{table}.csv", index=False)
        counts[table] = len(df)
    manifest = {
        "policy": basis("registry_deidentification").to_dict(),
        "age_cap_years": cap,
        "date_shift_days": [lo, hi],
        "tables": counts,
    }
    (path / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return {"out": str(path), **manifest}
