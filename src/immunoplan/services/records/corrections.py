"""Corrections, never deletions: void or amend a recorded entry, with a reason, in one transaction.

``kind`` is one of `KINDS`: injection, visit, reaction, omalizumab (administration), step (desensitization),
measurement, questionnaire.

- `void` marks the entry voided (who, when, why). A voided visit voids its questionnaires and measurements
  with it. The row stays in the registry; analyses, exports, next-dose rules and due lists ignore it.
- `amend` changes fields of the entry in place; each change is re-validated with the same input model and
  field limits as recording (`InjectionIn`, `VisitIn`, `ReactionIn`, `immunoplan.reference.limits`), and
  derived values are recomputed: questionnaire scores from the items, GLI results, a reaction's grade and
  timing, a desensitization session's cumulative doses, an immunotherapy course's next due date (engine).
- Both need a reason (1-`REASON_MAX_CHARS` characters) and refuse an entry already voided (`Conflict`).
- The original stays in the audit trail: the ORM audit hook writes the update's before/after
  (`immunoplan.registry.audit`), under the use case ``void_<kind>`` / ``amend_<kind>``; `history` reads it.

Who may correct is enforced at the edges (web: permissions ``record.void`` / ``record.amend``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from immunoplan import clock
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.reference.limits import limit
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.inputs import InputModel, validate
from immunoplan.services.records import injections, reactions, visits
from immunoplan.services.records.fields import choice_field, one_of
from immunoplan.services.unit_of_work import write

#: correctable kind -> registry model
KINDS: dict[str, type[Any]] = {
    "injection": m.Injection,
    "visit": m.Visit,
    "reaction": m.Reaction,
    "omalizumab": m.OmalizumabAdministration,
    "step": m.DesensitizationStep,
    "measurement": m.Measurement,
    "questionnaire": m.Questionnaire,
}
KIND_NAMES: tuple[str, ...] = tuple(KINDS)
#: registry table -> kind (audit entries, links)
KIND_OF_TABLE = {model.__tablename__: kind for kind, model in KINDS.items()}
REASON_MAX_CHARS = 500

#: the fields an amendment may change, per kind (input names; a form shows them with the current values)
AMENDABLE: dict[str, tuple[str, ...]] = {
    "injection": (
        "given_at",
        "dose_ml",
        "vial",
        "dose",
        "dose_unit",
        "site",
        "lot",
        "phase",
        "observed_minutes",
    ),
    "visit": visits.VISIT_COLUMNS,
    "reaction": reactions.AMENDABLE,
    "omalizumab": ("given_at", "dose_mg", "interval_weeks", "site", "lot"),
    "step": ("dose_mg", "rate_ml_h", "minutes", "started_at"),
    "measurement": ("value", "measured_on", "allergen", "method"),
    "questionnaire": ("items", "completed_on", "score"),
}


class CorrectionIn(InputModel):
    """A void (and the common part of an amendment): which entry, and why."""

    kind: Annotated[str, one_of(KIND_NAMES)] = choice_field(KIND_NAMES)
    record_id: int = Field(ge=1, le=2**31 - 1)
    reason: str = Field(
        min_length=1,
        max_length=REASON_MAX_CHARS,
        json_schema_extra={"accepted": f"1-{REASON_MAX_CHARS} characters: why the entry is corrected"},
    )


class AmendmentIn(CorrectionIn):
    """An amendment: the new values of some fields (`AMENDABLE`), re-validated as when recording."""

    changes: dict[str, Any] = Field(min_length=1, max_length=40)


def record_ref(kind: str, record_id: int) -> str:
    """How a `Conflict` names an entry: ``"visit 12"``."""
    return f"{kind} {record_id}"


def parse_record_ref(text: str | None) -> tuple[str, int] | None:
    """(kind, id) of a `record_ref` text (e.g. a `Conflict`'s ``record``), or None when it names no
    correctable entry."""
    parts = (text or "").split()
    if len(parts) == 2 and parts[0] in KINDS and parts[1].isdigit():
        return parts[0], int(parts[1])
    return None


# ------------------------------------------------------------------------------------------------ helpers


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


def patient_of(s: Session, kind: str, row: Any) -> int:
    if kind == "step":
        sess = s.get(m.DesensitizationSession, row.session_id)
        assert sess is not None  # foreign key
        return int(sess.patient_id)
    return int(row.patient_id)


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, datetime) and isinstance(new, datetime):
        return clock.to_utc_stored(old) == clock.to_utc_stored(new)
    if isinstance(old, (Decimal, float, int)) and isinstance(new, (Decimal, float, int)):
        return Decimal(str(old)) == Decimal(str(new))
    return bool(old == new)


def _apply(row: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    """Set the columns that change; returns ``{column: {"before", "after"}}``."""
    changed: dict[str, Any] = {}
    for column, new in values.items():
        old = getattr(row, column)
        if not _same(old, new):
            changed[column] = {"before": to_jsonable(old), "after": to_jsonable(new)}
            setattr(row, column, new)
    return changed


def _unknown(kind: str, changes: Mapping[str, Any]) -> None:
    bad = sorted(set(changes) - set(AMENDABLE[kind]))
    if bad:
        raise InvalidInput(
            bad[0],
            f"is not a field of {'an' if kind[0] in 'aeiou' else 'a'} {kind}",
            ", ".join(AMENDABLE[kind]),
        )


def _text(field: str, value: Any, max_chars: int) -> str | None:
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    if len(text) > max_chars:
        raise InvalidInput(field, "is too long", f"at most {max_chars} characters")
    return text


def recompute_course_after_correction(s: Session, course_id: int) -> dict[str, Any]:
    """After an injection (or its reaction) is voided or amended: the course's next due date from the engine
    over its live injections (`injections.recompute_next_due`, as a recording sets it), else the planned
    interval after the last live injection; and whether the target dose is still reached. Returns what the
    course now says."""
    c = s.get(m.Course, course_id, with_for_update=True)
    assert c is not None  # injections.course_id is a non-null foreign key
    s.flush()
    live = injections.live_injections(s, c.id)
    planned = None
    if live and c.interval_days:
        planned = clock.local_date(live[-1].given_at) + timedelta(days=c.interval_days)
    injections.recompute_next_due(s, c, fallback_due=planned)
    if c.target_dose is not None:
        reached = [
            i for i in live if i.dose_unit == c.dose_unit and Decimal(i.dose) >= Decimal(c.target_dose)
        ]
        c.target_reached = bool(reached)
        c.target_reached_on = clock.local_date(reached[0].given_at) if reached else None
    return {"course_id": c.id, "next_due_on": c.next_due_on, "target_reached": c.target_reached}


def _recompute_cumulative(s: Session, session_id: int) -> None:
    """A desensitization session's cumulative doses over its live steps given, in step order (exact)."""
    s.flush()
    total = Decimal(0)
    for st in s.scalars(
        select(m.DesensitizationStep)
        .where(m.DesensitizationStep.session_id == session_id, m.DesensitizationStep.voided_at.is_(None))
        .order_by(m.DesensitizationStep.step_no)
    ):
        if st.status == "given":
            total += Decimal(st.dose_mg)
        if st.cumulative_dose_mg is None or Decimal(st.cumulative_dose_mg) != total:
            st.cumulative_dose_mg = total


def _after_change(s: Session, kind: str, row: Any) -> dict[str, Any]:
    """Derived values that follow the corrected entry."""
    if kind == "injection":
        return {"course": recompute_course_after_correction(s, row.course_id)}
    if kind == "reaction" and row.injection_id is not None:
        inj = s.get(m.Injection, row.injection_id)
        if inj is not None:
            return {"course": recompute_course_after_correction(s, inj.course_id)}
    if kind == "step":
        _recompute_cumulative(s, row.session_id)
    return {}


# ------------------------------------------------------------------------------------------------ amend


def _amend_injection(s: Session, row: m.Injection, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Re-validate with `injections.InjectionIn`; a new volume or vial recomputes the dose from the product's
    vial strength (as recording does); refuses a time in the future or the same act as another injection."""
    c = s.get(m.Course, row.course_id, with_for_update=True)
    assert c is not None
    data = validate(injections.InjectionIn, {"course_id": row.course_id, **changes})
    values: dict[str, Any] = {}
    when = clock.to_utc_stored(row.given_at)
    if "given_at" in changes:
        if data.given_at is None:
            raise InvalidInput("given_at", "is required", injections.CLINIC_TIME)
        when = data.given_at
        injections.refuse_future_given_at(when, clock.now())
        values["given_at"] = when
    if {"dose_ml", "vial"} & set(changes):
        merged = data.model_copy(
            update={
                "dose_ml": data.dose_ml if data.dose_ml is not None else row.volume_ml,
                "vial": data.vial if data.vial is not None else row.vial,
            }
        )
        units, unit, vial = injections.dose_in_product_units(c, merged, None)
        values.update(volume_ml=merged.dose_ml, dose=units, dose_unit=unit, vial=vial)
    elif "dose" in changes:
        if data.dose is None:
            raise InvalidInput("dose", "is required", "a positive number in product units")
        values.update(dose=data.dose, dose_unit=data.dose_unit or row.dose_unit)
    elif "dose_unit" in changes and data.dose_unit:
        values["dose_unit"] = data.dose_unit
    for name in ("site", "lot", "phase", "observed_minutes"):
        if name in changes:
            values[name] = getattr(data, name)
    units = values.get("dose", row.dose)
    for other in injections.same_minute_injections(s, row.course_id, when, other_than=row.id):
        if clock.to_utc_stored(other.given_at) == when or Decimal(other.dose) == units:
            raise Conflict(
                "given_at",
                f"injection {other.id} is already recorded at {clock.format_local(other.given_at)} "
                f"({other.dose} {other.dose_unit}, same course): correct or void that one instead",
                record_ref("injection", other.id),
            )
    return _apply(row, values)


def _amend_omalizumab(
    s: Session, row: m.OmalizumabAdministration, changes: Mapping[str, Any]
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "given_at" in changes:
        when = clock.parse_local("given_at", changes["given_at"])
        start = when.replace(second=0, microsecond=0)
        other = s.scalar(
            select(m.OmalizumabAdministration).where(
                m.OmalizumabAdministration.patient_id == row.patient_id,
                m.OmalizumabAdministration.voided_at.is_(None),
                m.OmalizumabAdministration.id != row.id,
                m.OmalizumabAdministration.given_at >= start,
                m.OmalizumabAdministration.given_at < start + timedelta(minutes=1),
            )
        )
        if other is not None:
            raise Conflict(
                "given_at",
                f"omalizumab administration {other.id} is already recorded at "
                f"{clock.format_local(other.given_at)}: correct or void that one instead",
                record_ref("omalizumab", other.id),
            )
        values["given_at"] = when
    if "dose_mg" in changes:
        values["dose_mg"] = limit("omalizumab_dose_mg").check(changes["dose_mg"], "dose_mg")
    if "interval_weeks" in changes:
        d = limit("omalizumab_interval_weeks").check_optional(changes["interval_weeks"], "interval_weeks")
        if d is not None and d != d.to_integral_value():
            raise InvalidInput(
                "interval_weeks", "must be whole weeks", limit("omalizumab_interval_weeks").accepted
            )
        values["interval_weeks"] = None if d is None else int(d)
    for name, size in (("site", 32), ("lot", 64)):
        if name in changes:
            values[name] = _text(name, changes[name], size)
    return _apply(row, values)


def _amend_step(s: Session, row: m.DesensitizationStep, changes: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "dose_mg" in changes:
        values["dose_mg"] = limit("desensitization_dose_mg").check(changes["dose_mg"], "dose_mg")
    if "rate_ml_h" in changes:
        values["rate_ml_h"] = limit("rate_ml_h").check_optional(changes["rate_ml_h"])
    if "minutes" in changes:
        values["minutes"] = limit("step_minutes").check_optional(changes["minutes"], "minutes")
    if "started_at" in changes:
        text = changes["started_at"]
        values["started_at"] = None if text in (None, "") else clock.parse_local("started_at", text)
    return _apply(row, values)


def _amend(
    s: Session, actor: str, kind: str, row: Any, changes: Mapping[str, Any], reason: str, at: datetime
) -> dict[str, Any]:
    if kind == "visit":
        return visits.amend_visit(s, actor, row, changes, reason, at)
    if kind == "questionnaire":
        return visits.amend_questionnaire(s, actor, row, changes, reason, at)
    if kind == "measurement":
        return visits.amend_measurement(s, actor, row, changes, reason, at)
    if kind == "reaction":
        return reactions.amend_reaction(s, actor, row, changes, reason, at)
    _unknown(kind, changes)
    if kind == "injection":
        changed = _amend_injection(s, row, changes)
    elif kind == "omalizumab":
        changed = _amend_omalizumab(s, row, changes)
    else:
        changed = _amend_step(s, row, changes)
    if not changed:
        raise InvalidInput("changes", "nothing to change: every value is the one already recorded")
    row.amended_at, row.amended_by, row.amend_reason = at, actor, reason
    return {"changed": changed}


# ------------------------------------------------------------------------------------------------ use cases


def void(
    reg: Registry,
    actor: str,
    kind: str,
    record_id: Any,
    reason: Any,
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Void an entry with a reason (module docstring). Returns the entry's correction stamp and what followed
    (``also_voided``: a visit's results; ``course``: the recomputed next due date)."""
    data = validate(CorrectionIn, {"kind": kind, "record_id": record_id, "reason": reason})

    def run(s: Session) -> dict[str, Any]:
        row = _load(s, data.kind, data.record_id)
        _refuse_voided(data.kind, row)
        at = clock.now()
        with s.no_autoflush:
            row.voided_at, row.voided_by, row.void_reason = at, actor, data.reason
            also = visits.void_visit_results(s, actor, row, data.reason, at) if data.kind == "visit" else []
        followed = _after_change(s, data.kind, row)
        s.flush()
        return {
            "kind": data.kind,
            "id": row.id,
            "patient_id": patient_of(s, data.kind, row),
            "voided_at": clock.iso_local(at),
            "voided_by": actor,
            "void_reason": data.reason,
            "also_voided": also,
            **followed,
        }

    return write(reg, actor, f"void_{data.kind}", run, idempotency_key=idempotency_key)


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
    """Amend an entry's fields with a reason (module docstring). ``changes`` maps `AMENDABLE` fields to new
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

    def run(s: Session) -> dict[str, Any]:
        row = _load(s, data.kind, data.record_id)
        _refuse_voided(data.kind, row)
        at = clock.now()
        wanted = dict(data.changes)
        if form_text:
            wanted = {
                k: v
                for k, v in wanted.items()
                if k not in AMENDABLE[data.kind] or str(v).strip() != _current_text(data.kind, row, k)
            }
            if not wanted:
                raise InvalidInput("changes", "nothing to change: every value is the one already recorded")
        with s.no_autoflush:  # one audit entry per row: the changes and the correction stamp together
            done = _amend(s, actor, data.kind, row, wanted, data.reason, at)
        followed = _after_change(s, data.kind, row)
        s.flush()
        return {
            "kind": data.kind,
            "id": row.id,
            "patient_id": patient_of(s, data.kind, row),
            "amended_at": clock.iso_local(at),
            "amended_by": actor,
            "amend_reason": data.reason,
            **done,
            **followed,
        }

    return write(reg, actor, f"amend_{data.kind}", run, idempotency_key=idempotency_key)


# ------------------------------------------------------------------------------------------------ reading


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


def _current_text(kind: str, row: Any, name: str) -> str:
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
        fields = AMENDABLE[kind]
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
            "fields": [(f, _current_text(kind, row, f)) for f in fields],
            "history": history(s, kind, rid),
        }
