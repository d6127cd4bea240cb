"""Audit trail: every ORM insert/update/delete inside a registry transaction writes one `audit_log` row
(who, when, what, before, after). The audit table is append-only: there is no update or delete path in the
code, and the migration installs triggers that refuse UPDATE/DELETE on SQLite and PostgreSQL.

Bulk loads that bypass the ORM (demo cohorts) call `record_bulk` so the trail still says who loaded what.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import event, insert, inspect
from sqlalchemy.orm import Session, attributes

from immunoplan import clock
from immunoplan.registry.models import AuditEntry, Base

AUDIT_TABLE = Base.metadata.tables["audit_log"]


#: Columns whose values never enter the audit trail (the trail records that they changed, not the secret).
SECRET_COLUMNS = frozenset({"password_hash"})
REDACTED = "[redacted]"


def _value(key: str, value: Any) -> Any:
    if key in SECRET_COLUMNS:
        return None if value is None else REDACTED
    return _jsonable(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def _row(obj: Base) -> dict[str, Any]:
    mapper = inspect(obj).mapper
    return {c.key: _value(c.key, getattr(obj, c.key)) for c in mapper.column_attrs}


def _changes(obj: Base) -> tuple[dict[str, Any], dict[str, Any]]:
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for attr in inspect(obj).mapper.column_attrs:
        hist = attributes.get_history(obj, attr.key)
        if hist.has_changes():
            before[attr.key] = _value(attr.key, hist.deleted[0]) if hist.deleted else None
            after[attr.key] = _value(attr.key, hist.added[0]) if hist.added else None
    return before, after


def _actor(session: Session) -> str:
    actor = session.info.get("actor")
    if not actor:
        raise RuntimeError("registry change without an actor: use Registry.transaction(actor)")
    return str(actor)


def _entry(
    action: str, obj: Any, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> dict[str, Any]:
    return dict(
        action=action,
        table_name=obj.__tablename__,
        row_id=getattr(obj, "id", None),
        before=before,
        after=after,
    )


def _after_flush(session: Session, _flush_context: Any) -> None:
    rows: list[dict[str, Any]] = []
    now = clock.now()
    use_case = session.info.get("use_case")
    for obj in session.new:
        if isinstance(obj, AuditEntry):
            continue
        rows.append(_entry("insert", obj, None, _row(obj)))
    for obj in session.dirty:
        if isinstance(obj, AuditEntry) or not session.is_modified(obj, include_collections=False):
            continue
        before, after = _changes(obj)
        if after:
            rows.append(_entry("update", obj, before, after))
    for obj in session.deleted:
        if isinstance(obj, AuditEntry):
            continue
        rows.append(_entry("delete", obj, _row(obj), None))
    if rows:
        actor = _actor(session)
        for r in rows:
            r.update(actor=actor, at=now, use_case=use_case)
        session.connection().execute(insert(AUDIT_TABLE), rows)


def record_bulk(
    session: Session,
    table_name: str,
    count: int,
    detail: dict[str, Any] | None = None,
    action: str = "bulk_insert",
) -> None:
    """Audit a change made outside the ORM: a bulk insert of ``count`` rows into ``table_name``, a restore."""
    after = {"rows": count, **(detail or {})}
    session.connection().execute(
        insert(AUDIT_TABLE),
        [
            dict(
                actor=_actor(session),
                at=clock.now(),
                action=action,
                table_name=table_name,
                row_id=None,
                before=None,
                after=after,
                use_case=session.info.get("use_case"),
            )
        ],
    )


def install(session_factory: Any) -> None:
    """Attach the audit hook to a new sessionmaker (call once per factory, as `open_registry` does).

    No ``event.contains`` guard: SQLAlchemy keys that check by ``id(target)``, so a new factory allocated
    where a garbage-collected one lived was taken as already hooked, and its changes went unaudited
    (intermittently).
    """
    event.listen(session_factory, "after_flush", _after_flush)
