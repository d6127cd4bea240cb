"""One write = one use case = one transaction, with idempotency and clear conflicts.

`write(reg, actor, use_case, fn, idempotency_key=...)` runs ``fn(session)`` inside one audited transaction
(`Registry.transaction`): everything ``fn`` writes commits together or not at all.

- **Idempotency.** Every write from a form or the API carries a client key (a hidden form field, the
  ``Idempotency-Key`` header, ``--idempotency-key`` on the CLI). The first write with a key stores its result;
  a re-post, double submit or reload with the same key returns that stored result (``replayed: true``) and
  writes nothing. A key used for another use case is a conflict.
- **Conflicts, never 500s.** A unique-key violation, SQLite's "database is locked" or PostgreSQL's
  serialization/deadlock failure becomes `immunoplan.errors.Conflict` (HTTP 409, CLI exit 2): another user
  changed the same record at the same moment; nothing of this write was saved.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from immunoplan import clock
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry

KEY_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
KEY_ACCEPTED = "8-128 characters: letters, digits, . _ : -"
IDEMPOTENCY_TABLE = m.Base.metadata.tables["idempotency_keys"]
CONCURRENT = "another user changed this record at the same moment; nothing was saved: reload and try again"


def check_key(key: Any) -> str | None:
    """A client's idempotency key (None when not given)."""
    if key in (None, ""):
        return None
    text = str(key).strip()
    if not KEY_PATTERN.match(text):
        raise InvalidInput("idempotency_key", "is not a valid key", KEY_ACCEPTED)
    return text


def _stored(s: Session, key: str, use_case: str) -> dict[str, Any] | None:
    row = s.execute(
        select(m.IdempotencyKey.use_case, m.IdempotencyKey.result).where(m.IdempotencyKey.key == key)
    ).first()
    if row is None:
        return None
    if row.use_case != use_case:
        raise Conflict("idempotency_key", f"this key was already used for {row.use_case}", f"key {key}")
    result = dict(row.result or {})
    result["replayed"] = True
    return result


def _is_lock_error(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return any(w in text for w in ("database is locked", "deadlock", "could not serialize", "busy"))


def write(
    reg: Registry,
    actor: str,
    use_case: str,
    fn: Callable[[Session], dict[str, Any]],
    *,
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Run ``fn`` in one audited transaction; replay a stored result for a key already used."""
    key = check_key(idempotency_key)
    try:
        with reg.transaction(actor, use_case) as s:
            if key is not None:
                done = _stored(s, key, use_case)
                if done is not None:
                    return done
            result = to_jsonable(fn(s))
            if key is not None:
                s.execute(
                    insert(IDEMPOTENCY_TABLE).values(
                        key=key, use_case=use_case, actor=actor, created_at=clock.now(), result=result
                    )
                )
            return result  # type: ignore[no-any-return]
    except IntegrityError:
        if key is not None:  # the same key committed by a concurrent request: that request's result
            with reg.session() as s:
                done = _stored(s, key, use_case)
            if done is not None:
                return done
        raise Conflict(use_case, CONCURRENT) from None
    except OperationalError as exc:
        if _is_lock_error(exc):
            raise Conflict(use_case, CONCURRENT) from None
        raise
