"""The kinds of entry that can be corrected, their registry models and amendable fields (each declared by
the service that owns the entry), the input models of a correction, and how a `Conflict` names an entry."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
from sqlalchemy.orm import Session

from immunoplan.registry import models as m
from immunoplan.services.inputs import InputModel
from immunoplan.services.records import desensitization, injections, omalizumab, reactions, visits
from immunoplan.services.records.fields import choice_field, one_of

#: correctable kind -> registry model
KINDS: dict[str, type[Any]] = {
    "injection": m.Injection,
    "visit": m.Visit,
    "reaction": m.Reaction,
    "omalizumab": m.OmalizumabAdministration,
    "step": m.DesensitizationStep,
    "measurement": m.Measurement,
    "questionnaire": m.Questionnaire,
    "no-show": m.NoShow,  # front desk (services.records.front_desk): void only, nothing to amend
}
KIND_NAMES: tuple[str, ...] = tuple(KINDS)
#: registry table -> kind (audit entries, links)
KIND_OF_TABLE = {model.__tablename__: kind for kind, model in KINDS.items()}
REASON_MAX_CHARS = 500

#: the fields an amendment may change, per kind (input names; a form shows them with the current values)
AMENDABLE: dict[str, tuple[str, ...]] = {
    "injection": injections.AMENDABLE,
    "visit": visits.VISIT_COLUMNS,
    "reaction": reactions.AMENDABLE,
    "omalizumab": omalizumab.AMENDABLE,
    "step": desensitization.STEP_AMENDABLE,
    "measurement": visits.MEASUREMENT_AMENDABLE,
    "questionnaire": visits.QUESTIONNAIRE_AMENDABLE,
    "no-show": (),
}
#: the kinds an amendment may name (a kind without amendable fields is voided and recorded anew)
AMENDABLE_KIND_NAMES: tuple[str, ...] = tuple(k for k, fields in AMENDABLE.items() if fields)


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

    kind: Annotated[str, one_of(AMENDABLE_KIND_NAMES)] = choice_field(AMENDABLE_KIND_NAMES)
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


def patient_of(s: Session, kind: str, row: Any) -> int:
    """The registry id of the entry's patient (a step's: its session's)."""
    if kind == "step":
        sess = s.get(m.DesensitizationSession, row.session_id)
        assert sess is not None  # foreign key
        return int(sess.patient_id)
    return int(row.patient_id)
