"""CSV and XLSX import (columns documented in docs/data-dictionary.md).

- One CSV file holds one table (``--table`` or the file name: ``patients.csv``); an XLSX workbook holds one
  table per sheet named after it (the layout `exporting.export_xlsx` writes), imported in dependency order.
- Every row is validated with the same checks as the service layer. Any invalid row rejects the whole file:
  `ImportRejected` lists every bad row (row number as shown in a spreadsheet, column, reason) and nothing is
  written. A valid file is written in one audited transaction.
- Re-importing is idempotent: rows are matched on their natural key (patients: pseudo_id; visits: pseudo_id +
  code + visit_on; measurements: pseudo_id + kind + allergen + measured_on; questionnaires: pseudo_id +
  instrument + completed_on). Identical rows are left alone; changed values update the row (audited).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from immunoplan.errors import InvalidInput
from immunoplan.registry import checks as ck
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry

Parser = Callable[[Any], Any]


def _opt(parse: Parser) -> Parser:
    return lambda v: None if v in (None, "") else parse(v)


def _int(field_name: str) -> Parser:
    def parse(v: Any) -> int:
        x = ck.to_float(field_name, v)
        if x != int(x):
            raise InvalidInput(field_name, f"must be a whole number, got {v!r}")
        return int(x)

    return parse


def _text(v: Any) -> str:
    return str(v).strip()


def _items(v: Any) -> list[float]:
    parts = [p for p in str(v).replace(",", ";").split(";") if p.strip()]
    return [ck.to_float("items", p) for p in parts]


@dataclass(frozen=True)
class Column:
    name: str
    parse: Parser
    required: bool = False


def _patient_number(name: str) -> Parser:
    return _opt(lambda v: ck.patient_number(name, v))


SPECS: dict[str, list[Column]] = {
    "patients": [
        Column("pseudo_id", lambda v: ck.not_empty("pseudo_id", v), True),
        Column("sex", lambda v: ck.choice("sex", v, m.SEXES), True),
        Column("birth_date", _opt(lambda v: ck.to_date("birth_date", v))),
        Column("age_years", _opt(lambda v: int(ck.patient_number("age_years", v) or 0))),
        Column("age_group", _opt(lambda v: ck.choice("age_group", v, m.AGE_GROUPS))),
        Column("height_cm", _patient_number("height_cm")),
        Column("display_name", _opt(_text)),
        Column("smoking", _opt(lambda v: ck.choice("smoking", v, m.SMOKING))),
        Column("asthma_step", _opt(lambda v: int(ck.patient_number("asthma_step", v) or 0))),
        Column("cohort", _opt(_text)),
        Column("study_group", _opt(_text)),
        Column("enrolled_on", _opt(lambda v: ck.to_date("enrolled_on", v))),
        Column("family_history_asthma", lambda v: ck.to_bool("family_history_asthma", v)),
        Column("comorbid_allergies", lambda v: ck.to_bool("comorbid_allergies", v)),
        Column("previous_biologics", lambda v: ck.to_bool("previous_biologics", v)),
    ],
    "visits": [
        Column("pseudo_id", lambda v: ck.not_empty("pseudo_id", v), True),
        Column("code", lambda v: ck.choice("code", v, m.VISIT_CODES), True),
        Column("visit_on", lambda v: ck.to_date("visit_on", v), True),
        Column("week", _opt(_int("week"))),
        Column("asthma_step", _opt(lambda v: int(ck.patient_number("asthma_step", v) or 0))),
        Column("medication_score", _opt(lambda v: _non_negative("medication_score", v))),
        Column("notes", _opt(_text)),
    ],
    "measurements": [
        Column("pseudo_id", lambda v: ck.not_empty("pseudo_id", v), True),
        Column("kind", lambda v: ck.choice("kind", v, ck.measurement_kinds()), True),
        Column("value", lambda v: ck.to_float("value", v), True),
        Column("measured_on", lambda v: ck.to_date("measured_on", v), True),
        Column("allergen", _opt(_text)),
        Column("unit", _opt(_text)),
        Column("visit_code", _opt(lambda v: ck.choice("visit_code", v, m.VISIT_CODES))),
        Column("pct_predicted", _opt(lambda v: ck.to_float("pct_predicted", v))),
        Column("z_score", _opt(lambda v: ck.to_float("z_score", v))),
        Column("reference_equation", _opt(_text)),
        Column("method", _opt(_text)),
    ],
    "questionnaires": [
        Column("pseudo_id", lambda v: ck.not_empty("pseudo_id", v), True),
        Column("instrument", lambda v: ck.choice("instrument", v, m.QUESTIONNAIRES), True),
        Column("score", lambda v: ck.to_float("score", v), True),
        Column("completed_on", lambda v: ck.to_date("completed_on", v), True),
        Column("visit_code", _opt(lambda v: ck.choice("visit_code", v, m.VISIT_CODES))),
        Column("items", _opt(_items)),
    ],
    "courses": [
        Column("pseudo_id", lambda v: ck.not_empty("pseudo_id", v), True),
        Column("kind", lambda v: ck.choice("kind", v, m.COURSE_KINDS), True),
        Column("started_on", lambda v: ck.to_date("started_on", v), True),
        Column("product", _opt(_text)),
        Column("allergen", _opt(_text)),
        Column("drug", _opt(_text)),
        Column("regimen", _opt(_text)),
        Column("with_omalizumab", lambda v: bool(ck.to_bool("with_omalizumab", v))),
        Column("omalizumab_timing", _opt(lambda v: ck.choice("omalizumab_timing", v, m.OMALIZUMAB_TIMINGS))),
        Column("status", _opt(lambda v: ck.choice("status", v, m.COURSE_STATUSES))),
        Column("ended_on", _opt(lambda v: ck.to_date("ended_on", v))),
        Column("target_dose", _opt(lambda v: ck.positive_decimal("target_dose", v))),
        Column("dose_unit", _opt(_text)),
        Column("interval_days", _opt(_int("interval_days"))),
    ],
    "injections": [
        Column("pseudo_id", lambda v: ck.not_empty("pseudo_id", v), True),
        Column("course_kind", lambda v: ck.choice("course_kind", v, m.COURSE_KINDS), True),
        Column("course_started_on", lambda v: ck.to_date("course_started_on", v), True),
        Column("given_at", lambda v: ck.to_datetime("given_at", v), True),
        Column("dose", lambda v: ck.positive_decimal("dose", v), True),
        Column("dose_unit", lambda v: ck.not_empty("dose_unit", v), True),
        Column("volume_ml", _opt(lambda v: ck.positive_decimal("volume_ml", v))),
        Column("vial", _opt(_text)),
        Column("site", _opt(_text)),
        Column("lot", _opt(_text)),
        Column("phase", _opt(lambda v: ck.choice("phase", v, m.INJECTION_PHASES))),
        Column("observed_minutes", _opt(_int("observed_minutes"))),
    ],
}
ORDER = ("patients", "visits", "measurements", "questionnaires", "courses", "injections")


def _non_negative(name: str, v: Any) -> float:
    x = ck.to_float(name, v)
    if x < 0:
        raise InvalidInput(name, "must not be negative", "[0, inf)")
    return x


@dataclass
class RowError:
    table: str
    row: int
    column: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "row": self.row, "column": self.column, "reason": self.reason}


class ImportRejected(InvalidInput):
    """The file had invalid rows; ``errors`` lists every one. Nothing was written."""

    def __init__(self, errors: list[RowError]) -> None:
        rows = len({(e.table, e.row) for e in errors})
        first = errors[0]
        super().__init__(
            "file",
            f"{rows} invalid row(s), nothing imported; first: {first.table} row {first.row} "
            f"column {first.column}: {first.reason}",
        )
        self.errors = errors


@dataclass
class ImportReport:
    file: str
    tables: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "status": "imported", "tables": self.tables}


# ------------------------------------------------------------------------------------------------ reading
def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, str):
        return v.strip()
    return v


def read_rows(path: Path, table: str | None = None) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """{table: [(row number, {column: value})]} from a CSV file or an XLSX workbook."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        name = table or path.stem
        if name not in SPECS:
            raise InvalidInput("table", f"cannot tell the table of {path.name}", ", ".join(SPECS))
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            rows = [
                (i, dict(zip(header, (_cell(v) for v in r), strict=False)))
                for i, r in enumerate(reader, start=2)
                if any(c.strip() for c in r)
            ]
        return {name: [(0, {h: None for h in header})] + rows}
    if suffix == ".xlsx":
        from openpyxl import load_workbook

        try:
            wb = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a damaged file
            raise InvalidInput("file", f"not a readable XLSX workbook: {exc}") from None
        out: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        sheets = [table] if table else [s for s in wb.sheetnames if s in SPECS]
        if not sheets:
            raise InvalidInput("file", "no sheet named after a table", ", ".join(SPECS))
        for sheet in sheets:
            if sheet not in wb.sheetnames:
                raise InvalidInput("table", f"workbook has no sheet {sheet!r}", ", ".join(wb.sheetnames))
            it = wb[sheet].iter_rows(values_only=True)
            header = [str(h).strip() if h is not None else "" for h in next(it, ())]
            rows = [
                (i, dict(zip(header, (_cell(v) for v in r), strict=False)))
                for i, r in enumerate(it, start=2)
                if any(c not in (None, "") for c in r)
            ]
            out[sheet] = [(0, {h: None for h in header})] + rows
        wb.close()
        return out
    raise InvalidInput("file", f"unsupported file type {suffix!r}", ".csv, .xlsx")


# ------------------------------------------------------------------------------------------------ checking
def _validate(
    table: str, rows: list[tuple[int, dict[str, Any]]], errors: list[RowError]
) -> list[tuple[int, dict]]:
    specs = {c.name: c for c in SPECS[table]}
    header = list(rows[0][1])
    for h in header:
        if h not in specs and h != "id":
            errors.append(RowError(table, 1, h, "unknown column"))
    for c in specs.values():
        if c.required and c.name not in header:
            errors.append(RowError(table, 1, c.name, "required column is missing"))
    clean = []
    for rownum, raw in rows[1:]:
        out: dict[str, Any] = {}
        bad = False
        for name, c in specs.items():
            value = raw.get(name, "")
            if c.required and value in (None, ""):
                errors.append(RowError(table, rownum, name, "is required"))
                bad = True
                continue
            try:
                out[name] = c.parse(value)
            except InvalidInput as exc:
                errors.append(
                    RowError(
                        table,
                        rownum,
                        name,
                        exc.reason + (f" (accepted: {exc.accepted})" if exc.accepted else ""),
                    )
                )
                bad = True
        if not bad and table == "measurements":
            try:
                _, out["value"], out["allergen"], out["unit"] = ck.measurement(
                    out["kind"], out["value"], out.get("allergen") or "", out.get("unit")
                )
            except InvalidInput as exc:
                errors.append(
                    RowError(
                        table,
                        rownum,
                        exc.field,
                        exc.reason + (f" (accepted: {exc.accepted})" if exc.accepted else ""),
                    )
                )
                bad = True
        if not bad and table == "questionnaires":
            try:
                ck.questionnaire_score(out["instrument"], out["score"])
            except InvalidInput as exc:
                errors.append(RowError(table, rownum, "score", f"{exc.reason} (accepted: {exc.accepted})"))
                bad = True
        if not bad:
            clean.append((rownum, out))
    return clean


def _key(table: str, row: dict[str, Any]) -> tuple[Any, ...]:
    return {
        "patients": lambda r: (r["pseudo_id"],),
        "visits": lambda r: (r["pseudo_id"], r["code"], r["visit_on"]),
        "measurements": lambda r: (r["pseudo_id"], r["kind"], r.get("allergen") or "", r["measured_on"]),
        "questionnaires": lambda r: (r["pseudo_id"], r["instrument"], r["completed_on"]),
        "courses": lambda r: (r["pseudo_id"], r["kind"], r["started_on"]),
        "injections": lambda r: (r["pseudo_id"], r["course_kind"], r["course_started_on"], r["given_at"]),
    }[table](row)


# ------------------------------------------------------------------------------------------------ writing
class _Context:
    """Lookups against the database plus the rows of this file (a file may add a patient and its visits)."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.patients: dict[str, m.Patient] = {}

    def patient(self, pid: str) -> m.Patient | None:
        if pid not in self.patients:
            p = self.s.scalar(select(m.Patient).where(m.Patient.pseudo_id == pid))
            if p is None:
                return None
            self.patients[pid] = p
        return self.patients[pid]

    def visit(self, p: m.Patient, code: str) -> m.Visit | None:
        return self.s.scalar(
            select(m.Visit)
            .where(m.Visit.patient_id == p.id, m.Visit.code == code, m.Visit.voided_at.is_(None))
            .order_by(m.Visit.visit_on.desc())
        )


def _existing(s: Session, table: str, p: m.Patient, row: dict[str, Any]) -> m.Base | None:
    if table == "patients":
        return p
    if table == "visits":
        return s.scalar(
            select(m.Visit).where(
                m.Visit.patient_id == p.id,
                m.Visit.code == row["code"],
                m.Visit.visit_on == row["visit_on"],
                m.Visit.voided_at.is_(None),  # a voided entry is never updated by an import
            )
        )
    if table == "measurements":
        return s.scalar(
            select(m.Measurement).where(
                m.Measurement.patient_id == p.id,
                m.Measurement.kind == row["kind"],
                m.Measurement.allergen == (row.get("allergen") or ""),
                m.Measurement.measured_on == row["measured_on"],
                m.Measurement.voided_at.is_(None),
            )
        )
    if table == "courses":
        return _course(s, p, row["kind"], row["started_on"])
    if table == "injections":
        course = _course(s, p, row["course_kind"], row["course_started_on"])
        return (
            None
            if course is None
            else s.scalar(
                select(m.Injection).where(
                    m.Injection.course_id == course.id,
                    m.Injection.given_at == row["given_at"],
                    m.Injection.voided_at.is_(None),
                )
            )
        )
    return s.scalar(
        select(m.Questionnaire).where(
            m.Questionnaire.patient_id == p.id,
            m.Questionnaire.instrument == row["instrument"],
            m.Questionnaire.completed_on == row["completed_on"],
            m.Questionnaire.voided_at.is_(None),
        )
    )


def _course(s: Session, p: m.Patient, kind: str, started_on: Any) -> m.Course | None:
    """A patient's course, identified by its kind and start date."""
    return s.scalar(
        select(m.Course).where(
            m.Course.patient_id == p.id, m.Course.kind == kind, m.Course.started_on == started_on
        )
    )


MODEL = {
    "patients": m.Patient,
    "visits": m.Visit,
    "measurements": m.Measurement,
    "questionnaires": m.Questionnaire,
    "courses": m.Course,
    "injections": m.Injection,
}


def _values(table: str, row: dict[str, Any], p: m.Patient | None, visit: m.Visit | None) -> dict[str, Any]:
    vals = {
        k: v
        for k, v in row.items()
        if k not in ("pseudo_id", "visit_code", "course_kind", "course_started_on")
    }
    if table == "patients":
        vals["pseudo_id"] = row["pseudo_id"]
        vals["cohort"] = vals.get("cohort") or "clinic"
    else:
        assert p is not None
        vals["patient_id"] = p.id
    if table in ("measurements", "questionnaires"):
        vals["visit_id"] = visit.id if visit else None
    if table == "measurements":
        vals["allergen"] = vals.get("allergen") or ""
    if table == "courses":
        vals["status"] = vals.get("status") or "active"
        vals["omalizumab_timing"] = vals.get("omalizumab_timing") or "none"
    return vals


def _write(
    ctx: _Context,
    table: str,
    rows: list[tuple[int, dict[str, Any]]],
    errors: list[RowError],
    counts: dict[str, int],
) -> None:
    s = ctx.s
    seen: dict[tuple[Any, ...], int] = {}
    for rownum, row in rows:
        key = _key(table, row)
        if key in seen:
            errors.append(
                RowError(table, rownum, "pseudo_id", f"duplicates row {seen[key]} (same natural key)")
            )
            continue
        seen[key] = rownum
        p = ctx.patient(row["pseudo_id"])
        if table != "patients" and p is None:
            errors.append(
                RowError(
                    table,
                    rownum,
                    "pseudo_id",
                    f"no patient {row['pseudo_id']!r} in the registry or in this file",
                )
            )
            continue
        visit = None
        if row.get("visit_code"):
            visit = ctx.visit(p, row["visit_code"]) if p is not None else None
            if visit is None:
                errors.append(
                    RowError(
                        table,
                        rownum,
                        "visit_code",
                        f"patient {row['pseudo_id']} has no {row['visit_code']} visit",
                    )
                )
                continue
        course = None
        if table == "injections" and p is not None:
            course = _course(s, p, row["course_kind"], row["course_started_on"])
            if course is None:
                errors.append(
                    RowError(
                        table,
                        rownum,
                        "course_started_on",
                        f"patient {row['pseudo_id']} has no {row['course_kind']} course started on "
                        f"{row['course_started_on']}; import or plan it first",
                    )
                )
                continue
        current = _existing(s, table, p, row) if p is not None else None
        vals = _values(table, row, p, visit)
        if course is not None:
            vals["course_id"] = course.id
            if current is None:
                vals["sequence"] = (
                    len(s.scalars(select(m.Injection.id).where(m.Injection.course_id == course.id)).all()) + 1
                )
        if current is None:
            obj = MODEL[table](**vals)
            s.add(obj)
            s.flush()
            if table == "patients":
                ctx.patients[row["pseudo_id"]] = obj  # type: ignore[assignment]
            counts["inserted"] += 1
            continue
        changed = False
        for k, v in vals.items():
            if k in ("cohort",) and row.get("cohort") in (None, ""):
                continue
            if not _same(getattr(current, k), v):
                setattr(current, k, v)
                changed = True
        counts["updated" if changed else "unchanged"] += 1
        if changed:
            s.flush()


def _same(stored: Any, new: Any) -> bool:
    """Equal values; date-times compare in UTC (SQLite hands back naive UTC values)."""
    if isinstance(stored, datetime) and isinstance(new, datetime):

        def utc(d: datetime) -> datetime:
            return d.replace(tzinfo=UTC) if d.tzinfo is None else d.astimezone(UTC)

        return utc(stored) == utc(new)
    return bool(stored == new)


class _Rollback(Exception):
    pass


def import_file(reg: Registry, path: str | Path, actor: str, *, table: str | None = None) -> dict[str, Any]:
    """Validate and import a CSV/XLSX file atomically; raises `ImportRejected` listing every bad row."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise InvalidInput("file", f"no file {file}")
    if table is not None:
        ck.choice("table", table, tuple(SPECS))
    data = read_rows(file, table)
    errors: list[RowError] = []
    clean = {t: _validate(t, rows, errors) for t, rows in data.items()}
    # The valid rows are written even when others failed, so reference errors (unknown patient or visit) are
    # found too; any error rolls the whole transaction back.
    report = ImportReport(file=str(file))
    try:
        with reg.transaction(actor, f"import:{file.name}") as s:
            ctx = _Context(s)
            for t in ORDER:
                if t in clean:
                    counts = {"inserted": 0, "updated": 0, "unchanged": 0}
                    _write(ctx, t, clean[t], errors, counts)
                    report.tables[t] = counts
            if errors:
                raise _Rollback
    except _Rollback:
        errors.sort(key=lambda e: (ORDER.index(e.table), e.row))
        raise ImportRejected(errors) from None
    return report.to_dict()


def iter_specs() -> Iterator[tuple[str, list[Column]]]:
    """Tables and columns the importer accepts (used by the data-dictionary test)."""
    return iter(SPECS.items())
