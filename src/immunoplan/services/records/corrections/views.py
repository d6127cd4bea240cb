"""What a correction form shows: the entry's current values as a form shows them, and its history from the
audit trail."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from immunoplan import clock
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.records.corrections.kinds import AMENDABLE, KIND_OF_TABLE, KINDS, patient_of


def _entry(e: m.AuditEntry) -> dict[str, Any]:
    return {
        "at": e.at,
        "actor": e.actor,
        "action": e.action,
        "use_case": e.use_case,
        "kind": KIND_OF_TABLE.get(e.table_name, e.table_name),
        "row_id": e.row_id,
        "before": e.before,
        "after": e.after,
    }


def history(s: Session, kind: str, record_id: int) -> list[dict[str, Any]]:
    """The audit trail of an entry, oldest first: its insert and every update (before/after). For a visit,
    also the entries of its questionnaires and measurements."""
    model = KINDS[kind]
    keys = [(model.__tablename__, record_id)]
    if kind == "visit":
        for child in (m.Questionnaire, m.Measurement):
            ids = s.scalars(select(child.id).where(child.visit_id == record_id)).all()
            keys += [(child.__tablename__, i) for i in ids]
    cond = or_(*[(m.AuditEntry.table_name == t) & (m.AuditEntry.row_id == i) for t, i in keys])
    return [_entry(e) for e in s.scalars(select(m.AuditEntry).where(cond).order_by(m.AuditEntry.id))]


def current_text(kind: str, row: Any, name: str) -> str:
    """The current value of an amendable field, as a form shows it (times in clinic time)."""
    column = {"dose_ml": "volume_ml"}.get(name, name) if kind == "injection" else name
    value = getattr(row, column, None)
    if value is None:
        return ""
    if isinstance(value, datetime):
        return clock.local(value).strftime("%Y-%m-%dT%H:%M")
    if isinstance(value, list):
        return ", ".join(str(to_jsonable(x)) for x in value)
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return str(int(value))
    return str(to_jsonable(value))


def correction_view(reg: Registry, kind: str, record_id: Any) -> dict[str, Any] | None:
    """What a correction form shows: the entry (current values), its correction stamp, the amendable fields
    with their current text, and its history from the audit trail. None: no such entry."""
    if kind not in KINDS:
        return None
    try:
        rid = int(record_id)
    except (TypeError, ValueError):
        return None
    with reg.session() as s:
        row = s.get(KINDS[kind], rid)
        if row is None:
            return None
        pid = patient_of(s, kind, row)
        p = s.get(m.Patient, pid)
        return {
            "kind": kind,
            "id": rid,
            "patient_id": pid,
            "pseudo_id": p.pseudo_id if p else None,
            "row": {  # instants in clinic time with the zone, as every page shows them
                k: clock.format_local(v) if isinstance(v, datetime) else to_jsonable(v)
                for k, v in ((c.key, getattr(row, c.key)) for c in row.__mapper__.column_attrs)
            },
            "entry": row,
            "voided": row.voided_at is not None,
            "fields": [(f, current_text(kind, row, f)) for f in AMENDABLE[kind]],
            "history": history(s, kind, rid),
        }
