"""Immunotherapy injections: record one (one transaction, every safety rule), the next injection, the due/late
list and the injection-day read model. Web, API, CLI, importer, FHIR, demo and tests all come here.

Rules of `record_injection` (each refusal names the field, the rule and the accepted range, or the record):
- only immunotherapy courses (`IMMUNOTHERAPY_KINDS`);
- ``given_at`` (clinic time) at most ``future_tolerance_minutes`` after the clinic clock (project rule,
  reference file ``registry_recording``);
- the same clinical act twice (same course, same dose, same clinic minute, among injections not voided) is a
  `Conflict` naming the first record (``registry_recording`` ``same-clinical-act``);
- not before the engine's earliest time for the next injection (same-visit interval or next visit's date,
  ``scit_adjustment`` ``intervals`` / ``scit_products``) unless an ``override_reason`` is given (stored);
- the next dose and its due date are computed by the engine in the same transaction, from the course's live
  injections, and the due date is stored on the course (``next_due_on``).

Voided injections (and voided reactions) are ignored everywhere: sequence, history, next dose, duplicates.

Modules: `inputs` (input models, constants), `history` (live injections, the engine's next injection,
`next_dose`, `recompute_next_due`), `recording` (`record`, `record_injection`), `due` (`list_due_injections`),
`day` (the injection-day page), `reaction` (a reaction to the last injection), `amend` (corrections).
"""

from immunoplan.services.records.courses import course_by_id
from immunoplan.services.records.fields import CLINIC_TIME
from immunoplan.services.records.injections.amend import (
    AMENDABLE,
    amend_injection,
    recompute_course_after_correction,
)
from immunoplan.services.records.injections.day import check_course, injection_day, last_injection
from immunoplan.services.records.injections.due import list_due_injections
from immunoplan.services.records.injections.history import (
    catalogue_ids,
    injection_row,
    live_injections,
    next_dose,
    next_injection_view,
    reactions_by_injection,
    recompute_next_due,
)
from immunoplan.services.records.injections.inputs import (
    CHECK_ANSWER_MAX_CHARS,
    ENGINE_SCALES,
    IMMUNOTHERAPY_KINDS,
    LOCAL_SCALE,
    RECORDING,
    InjectionIn,
    InjectionReactionIn,
    future_tolerance_minutes,
)
from immunoplan.services.records.injections.reaction import (
    grade_injection_reaction,
    record_reaction_to_injection,
    record_reaction_to_last_injection,
)
from immunoplan.services.records.injections.recording import (
    dose_in_product_units,
    record,
    record_injection,
    refuse_future_given_at,
    same_minute_injections,
)

__all__ = [
    "AMENDABLE",
    "CLINIC_TIME",
    "CHECK_ANSWER_MAX_CHARS",
    "ENGINE_SCALES",
    "IMMUNOTHERAPY_KINDS",
    "LOCAL_SCALE",
    "RECORDING",
    "InjectionIn",
    "InjectionReactionIn",
    "amend_injection",
    "catalogue_ids",
    "check_course",
    "course_by_id",
    "dose_in_product_units",
    "future_tolerance_minutes",
    "grade_injection_reaction",
    "injection_day",
    "injection_row",
    "last_injection",
    "list_due_injections",
    "live_injections",
    "next_dose",
    "next_injection_view",
    "reactions_by_injection",
    "recompute_next_due",
    "recompute_course_after_correction",
    "record",
    "record_injection",
    "record_reaction_to_injection",
    "record_reaction_to_last_injection",
    "refuse_future_given_at",
    "same_minute_injections",
]
