"""Visits and what is measured at them: questionnaires, spirometry (GLI) and laboratory results.

- `record_visit_with_results` is the one use case behind the visit page, ``POST /api/patients/{id}/visits``
  and ``immunoplan visit record``: it scores the questionnaires (`immunoplan.clinical.questionnaires`),
  computes the GLI results (`immunoplan.clinical.spirometry`, with the patient's age AT THE VISIT DATE) and
  writes the visit with every result in ONE transaction (`unit_of_work.write`): a bad questionnaire leaves
  nothing written. Its input is `VisitIn`, declared once (field limits from `immunoplan.reference.limits`,
  vocabularies from `immunoplan.clinical.vocabularies`).
- A visit already recorded for the same patient, code and date is refused with a `Conflict` naming it
  (``record="visit 12"``): the caller corrects that visit (`services.records.corrections.amend`, which calls
  `amend_visit` here) instead of getting a database error.
- The keyword functions `record_visit`, `record_measurement` and `record_questionnaire` (tests, importer-style
  callers) write one row each, also through `unit_of_work.write`.

Modules: `inputs` (`VisitIn` and the field names), `scoring` (the engines' results), `lookups` (live rows and
duplicate refusals), `recording` (the use cases), `amend` (corrections), `views` (the pages' reads).
"""

from immunoplan.services.records.visits.amend import (
    amend_measurement,
    amend_questionnaire,
    amend_visit,
    void_visit_results,
)
from immunoplan.services.records.visits.inputs import (
    DEFAULT_EQUATION,
    LAB_KINDS,
    MEASUREMENT_AMENDABLE,
    QUESTIONNAIRE_AMENDABLE,
    QUESTIONNAIRE_FIELDS,
    SPIROMETRY_FIELDS,
    USE_CASE,
    VISIT_COLUMNS,
    VisitIn,
    VisitResultsInvalid,
    questionnaire_engine_id,
    split_items,
)
from immunoplan.services.records.visits.lookups import live_results, live_visit, visit_conflict
from immunoplan.services.records.visits.recording import (
    record_measurement,
    record_questionnaire,
    record_visit,
    record_visit_with_results,
)
from immunoplan.services.records.visits.scoring import VisitResults, age_at, measurement_rows, score_visit
from immunoplan.services.records.visits.views import (
    load_instrument,
    questionnaire_hints,
    visit_form_defaults,
    visit_view,
)

__all__ = [
    "DEFAULT_EQUATION",
    "LAB_KINDS",
    "MEASUREMENT_AMENDABLE",
    "QUESTIONNAIRE_AMENDABLE",
    "QUESTIONNAIRE_FIELDS",
    "SPIROMETRY_FIELDS",
    "USE_CASE",
    "VISIT_COLUMNS",
    "VisitIn",
    "VisitResults",
    "VisitResultsInvalid",
    "age_at",
    "amend_measurement",
    "amend_questionnaire",
    "amend_visit",
    "live_results",
    "live_visit",
    "load_instrument",
    "measurement_rows",
    "questionnaire_engine_id",
    "questionnaire_hints",
    "record_measurement",
    "record_questionnaire",
    "record_visit",
    "record_visit_with_results",
    "score_visit",
    "split_items",
    "visit_conflict",
    "visit_form_defaults",
    "visit_view",
    "void_visit_results",
]
