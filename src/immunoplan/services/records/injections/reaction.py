"""A reaction to the course's last injection on injection day: guided grading, and the recording with the
next due date recomputed in the same transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from immunoplan import clock, reference
from immunoplan.clinical import vocabularies
from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services import unit_of_work
from immunoplan.services.inputs import validate
from immunoplan.services.records.common import as_row
from immunoplan.services.records.courses import course_by_id
from immunoplan.services.records.injections.history import live_injections, recompute_next_due
from immunoplan.services.records.injections.inputs import LOCAL_SCALE, InjectionReactionIn
from immunoplan.services.records.reactions import ReactionIn, add_reaction


def grade_injection_reaction(data: InjectionReactionIn) -> dict[str, Any]:
    """The grade the chosen scale gives for a systemic reaction's findings (guided grading; nothing saved)."""
    from immunoplan.services.protocols import grade_reaction

    if not data.symptoms:
        raise InvalidInput(
            "symptoms", "choose at least one symptom", ", ".join(vocabularies.REACTION_SYMPTOMS)
        )
    graded = grade_reaction(
        data.scale,
        symptoms=list(data.symptoms),
        bronchodilator_response=data.bronchodilator_response,
        epinephrine_minutes=data.epinephrine_minutes,
        onset_minutes=data.onset_minutes,
    )
    return to_jsonable(graded)  # type: ignore[no-any-return]


def record_reaction_to_injection(
    reg: Registry, actor: str, injection_id: int, data: InjectionReactionIn, *, idempotency_key: Any = None
) -> dict[str, Any]:
    """`record_reaction_to_last_injection` for a named live injection (a delayed reaction may be recorded
    after a later injection); `LookupError` when there is no such live injection."""
    with reg.session() as s:
        inj = s.get(m.Injection, int(injection_id))
        if inj is None or inj.voided:
            raise LookupError(f"no injection {injection_id}")
        course_id = inj.course_id
    return record_reaction_to_last_injection(
        reg, actor, None, course_id, data, idempotency_key=idempotency_key, injection_id=int(injection_id)
    )


def record_reaction_to_last_injection(
    reg: Registry,
    actor: str,
    patient_id: int | None,
    course_id: int,
    data: InjectionReactionIn,
    *,
    idempotency_key: Any = None,
    injection_id: int | None = None,
) -> dict[str, Any]:
    """Grade (systemic) and record a reaction to the course's last live injection, in one transaction with
    the course's next due date recomputed by the engine (a reaction changes the next dose and ends a visit's
    same-day continuation). The reaction is written by `services.records.reactions.add_reaction` (the
    write of `record_reaction`, inside this transaction). Returns the reaction, the grading and ``next``."""
    graded = None
    if data.kind == "local":
        if data.local_size is None:
            raise InvalidInput(
                "local_size", "is required for a local reaction", ", ".join(vocabularies.LOCAL_REACTION_SIZES)
            )
        grade, scale = data.local_size, LOCAL_SCALE
        version, basis = reference.load("scit_adjustment")["version"], None
    else:
        graded = grade_injection_reaction(data)
        grade, scale, version, basis = (
            graded["grade"],
            data.scale,
            graded["basis"]["version"],
            graded["basis"],
        )

    def fn(s: Session) -> dict[str, Any]:
        c = course_by_id(s, course_id, lock=True, patient_id=patient_id)
        p = s.get(m.Patient, c.patient_id)
        assert p is not None  # foreign key
        live = live_injections(s, c.id)
        if not live:
            raise InvalidInput(
                "injection_id",
                "record the injection first: a reaction is linked to the injection that caused it",
            )
        last = live[-1]
        if injection_id is not None:
            named = [i for i in live if i.id == injection_id]
            if not named:
                raise LookupError(f"no injection {injection_id}")
            last = named[0]
        onset = None
        if data.onset_minutes is not None:
            onset = clock.to_utc_stored(last.given_at) + timedelta(minutes=float(data.onset_minutes))
        r = validate(
            ReactionIn,
            {
                "kind": data.kind,
                "grade": str(grade),
                "scale": scale,
                "scale_version": version,
                "findings": list(data.symptoms),
                "onset_at": onset,
                "injection_id": last.id,
                "basis": basis,
            },
        )
        row = add_reaction(s, p, r)
        return {
            "reaction": as_row(row),
            "grading": graded or {"grade": grade, "scale": scale},
            "next": recompute_next_due(s, c),
        }

    return unit_of_work.write(reg, actor, "record_reaction", fn, idempotency_key=idempotency_key)
