"""Corrections, never deletions: void or amend a recorded entry, with a reason, in one transaction.

``kind`` is one of `KINDS`: injection, visit, reaction, omalizumab (administration), step (desensitization),
measurement, questionnaire.

- `void` marks the entry voided (who, when, why). A voided visit voids its questionnaires and measurements
  with it. The row stays in the registry; analyses, exports, next-dose rules and due lists ignore it.
- `amend` changes fields of the entry in place; the service that owns the entry (`correcting.AMENDERS`)
  re-validates each change with the same input model and field limits as recording (`InjectionIn`,
  `VisitIn`, `ReactionIn`, `immunoplan.reference.limits`) and recomputes derived values: questionnaire
  scores from the items, GLI results, a reaction's grade and timing; then a desensitization session's
  cumulative doses and an immunotherapy course's next due date (engine) follow.
- Both need a reason (1-`REASON_MAX_CHARS` characters) and refuse an entry already voided (`Conflict`).
- The original stays in the audit trail: the ORM audit hook writes the update's before/after
  (`immunoplan.registry.audit`), under the use case ``void_<kind>`` / ``amend_<kind>``; `history` reads it.

Who may correct is enforced at the edges (web: permissions ``record.void`` / ``record.amend``).

Modules: `kinds` (kinds, amendable fields, input models), `correcting` (`void`, `amend`), `views` (the
correction form and the audit history).
"""

from immunoplan.services.records.corrections.correcting import AMENDERS, amend, void
from immunoplan.services.records.corrections.kinds import (
    AMENDABLE,
    KIND_NAMES,
    KIND_OF_TABLE,
    KINDS,
    REASON_MAX_CHARS,
    AmendmentIn,
    CorrectionIn,
    parse_record_ref,
    patient_of,
    record_ref,
)
from immunoplan.services.records.corrections.views import correction_view, current_text, history

__all__ = [
    "AMENDABLE",
    "AMENDERS",
    "KINDS",
    "KIND_NAMES",
    "KIND_OF_TABLE",
    "REASON_MAX_CHARS",
    "AmendmentIn",
    "CorrectionIn",
    "amend",
    "correction_view",
    "current_text",
    "history",
    "parse_record_ref",
    "patient_of",
    "record_ref",
    "void",
]
