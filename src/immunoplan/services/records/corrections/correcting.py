"""The two use cases, `void` and `amend`: load the entry locked, refuse one already voided, let the owner of
the entry change it (`AMENDERS`), recompute what follows from it, in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from immunoplan import clock
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.inputs import validate
from immunoplan.services.records import desensitization, injections, omalizumab, reactions, visits
from immunoplan.services.records.amending import NOTHING_TO_CHANGE
from immunoplan.services.records.corrections.kinds import (
    AMENDABLE,
    KINDS,
    AmendmentIn,
    CorrectionIn,
    patient_of,
    record_ref,
)
from immunoplan.services.records.corrections.views import current_text
from immunoplan.services.unit_of_work import write

Amender = Callable[[Session, str, Any, Mapping[str, Any], str, datetime], dict[str, Any]]
#: kind -> the owner's amendment (in the caller's transaction; stamps the entry, refuses "nothing to change")
AMENDERS: dict[str, Amender] = {
    "injection": injections.amend_injection,
    "visit": visits.amend_visit,
    "reaction": reactions.amend_reaction,
    "omalizumab": omalizumab.amend_administration,
    "step": desensitization.amend_step,
    "measurement": visits.amend_measurement,
    "questionnaire": visits.amend_questionnaire,
}


def _load(s: Session, kind: str, record_id: int) -> Any:
    """The entry, locked for the rest of the transaction (PostgreSQL ``FOR UPDATE``; SQLite holds the write
    lock from BEGIN IMMEDIATE)."""
    row = s.get(KINDS[kind], record_id, with_for_update=True)
    if row is None:
        raise InvalidInput("record_id", f"no {kind} {record_id} in the registry")
    return row


def _refuse_voided(kind: str, row: Any) -> None:
    if row.voided_at is not None:
        raise Conflict(
            "record_id",
            f"{kind} {row.id} was already voided by {row.voided_by} at {clock.format_local(row.voided_at)} "
            f"({row.void_reason}): a voided entry cannot be corrected again; record the right entry anew",
            record_ref(kind, row.id),
        )


def _after_change(s: Session, kind: str, row: Any) -> dict[str, Any]:
    """Derived values that follow the corrected entry."""
    if kind == "injection":
        return {"course": injections.recompute_course_after_correction(s, row.course_id)}
    if kind == "reaction" and row.injection_id is not None:
        inj = s.get(m.Injection, row.injection_id)
        if inj is not None:
            return {"course": injections.recompute_course_after_correction(s, inj.course_id)}
    if kind == "step":
        desensitization.recompute_cumulative_doses(s, row.session_id)
    return {}


def _correct(
    reg: Registry,
    actor: str,
    verb: str,
    data: CorrectionIn,
    change: Callable[[Session, Any, datetime], dict[str, Any]],
    idempotency_key: Any,
) -> dict[str, Any]:
    """One correction in one transaction (audited as ``<verb>_<kind>``): the entry loaded and locked, refused
    when voided, changed by ``change`` (one audit entry per row: the changes and the stamp together), then
    what follows from it recomputed."""

    def run(s: Session) -> dict[str, Any]:
        row = _load(s, data.kind, data.record_id)
        _refuse_voided(data.kind, row)
        at = clock.now()
        with s.no_autoflush:
            done = change(s, row, at)
        followed = _after_change(s, data.kind, row)
        s.flush()
        return {
            "kind": data.kind,
            "id": row.id,
            "patient_id": patient_of(s, data.kind, row),
            **done,
            **followed,
        }

    return write(reg, actor, f"{verb}_{data.kind}", run, idempotency_key=idempotency_key)


def void(
    reg: Registry,
    actor: str,
    kind: str,
    record_id: Any,
    reason: Any,
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Void an entry with a reason (package docstring). Returns the entry's correction stamp and what
    followed (``also_voided``: a visit's results; ``course``: the recomputed next due date)."""
    data = validate(CorrectionIn, {"kind": kind, "record_id": record_id, "reason": reason})

    def change(s: Session, row: Any, at: datetime) -> dict[str, Any]:
        row.voided_at, row.voided_by, row.void_reason = at, actor, data.reason
        also = visits.void_visit_results(s, actor, row, data.reason, at) if data.kind == "visit" else []
        return {
            "voided_at": clock.iso_local(at),
            "voided_by": actor,
            "void_reason": data.reason,
            "also_voided": also,
        }

    return _correct(reg, actor, "void", data, change, idempotency_key)


def amend(
    reg: Registry,
    actor: str,
    kind: str,
    record_id: Any,
    changes: Mapping[str, Any],
    reason: Any,
    idempotency_key: Any = None,
    *,
    form_text: bool = False,
) -> dict[str, Any]:
    """Amend an entry's fields with a reason (package docstring). ``changes`` maps `AMENDABLE` fields to new
    values (text as typed, or typed values; empty text clears an optional field). ``form_text``: ``changes``
    is a whole correction form; fields whose text is the current text (`correction_view`) are not changes.
    Returns ``changed`` (``{field: {"before", "after"}}``) and what followed (``course``: the recomputed
    next due date)."""
    if not isinstance(changes, Mapping):
        raise InvalidInput("changes", "must map field names to new values", "field=value")
    data = validate(
        AmendmentIn,
        {"kind": kind, "record_id": record_id, "reason": reason, "changes": dict(changes) or None},
    )

    def change(s: Session, row: Any, at: datetime) -> dict[str, Any]:
        wanted = dict(data.changes)
        if form_text:
            wanted = {
                k: v
                for k, v in wanted.items()
                if k not in AMENDABLE[data.kind] or str(v).strip() != current_text(data.kind, row, k)
            }
            if not wanted:
                raise InvalidInput("changes", NOTHING_TO_CHANGE)
        done = AMENDERS[data.kind](s, actor, row, wanted, data.reason, at)
        return {"amended_at": clock.iso_local(at), "amended_by": actor, "amend_reason": data.reason, **done}

    return _correct(reg, actor, "amend", data, change, idempotency_key)
