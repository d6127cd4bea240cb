"""Rapid drug desensitization sessions: plan, run step by step, breakthrough reactions, finish.

Every write is one use case in ONE transaction (`immunoplan.services.unit_of_work.write`: audited, replayed
for an idempotency key already used, a concurrent write becomes `Conflict`); the rules are those of the
clinical core (`immunoplan.clinical.desensitization.session`, each with its id and source), checked inside the
transaction after the session row is locked, so every caller (page, API, CLI, import, test) gets the same.

- `start_session` plans with the engine (`services.protocols.plan_desensitization`) and opens the session on
  the patient's desensitization course for that drug (one course per patient and drug, its sessions the
  cycles; created with the first session).
- `record_step` records one step of the stored plan (or of the re-planned continuation) at the clinic's time.
- `record_breakthrough` records a breakthrough reaction at a step (the final one included) and, in the same
  transaction, stops the protocol and stores the engine's re-plan (its continuation steps keep their place).
- `record_baseline` records the session's baseline tryptase (ng/mL, with its time) and vital signs.
- `finish_session` ends the session completed (with or without reactions) or stopped, with the dose given.
- `start_desensitization` (keyword style, kept for the importer, the demo and the tests) opens a session on an
  existing course; ``record_step(..., imported=True)`` loads a step of history as it happened (audited as
  ``import_desensitization_step``).
- Reads: `plan_session` (a plan, nothing stored), `session_view` (steps, statuses, reactions, re-plans).

Modules: `inputs` (the input models, declared once and used by the API bodies, the form parsers and the CLI),
`state` (the session as the rules see it, shared by the use cases), `sessions` (plan, start, finish),
`steps`, `breakthrough`, `views`, `amend` (corrections of a step).
"""

from immunoplan.services.records.desensitization.amend import (
    STEP_AMENDABLE,
    amend_step,
    recompute_cumulative_doses,
)
from immunoplan.services.records.desensitization.baseline import record_baseline
from immunoplan.services.records.desensitization.breakthrough import (
    BREAKTHROUGH_SCALE,
    grade_breakthrough,
    grade_phenotype,
    record_breakthrough,
)
from immunoplan.services.records.desensitization.inputs import (
    TREATMENT_TEXT,
    BaselineFields,
    BaselineIn,
    BreakthroughFields,
    BreakthroughIn,
    FinishFields,
    FinishIn,
    PlanIn,
    SessionFields,
    SessionStartIn,
    StepFields,
    StepIn,
    TreatmentGiven,
)
from immunoplan.services.records.desensitization.sessions import (
    KIND,
    OPEN_COURSE,
    finish_session,
    plan_session,
    start_desensitization,
    start_session,
)
from immunoplan.services.records.desensitization.state import session_state, view_json
from immunoplan.services.records.desensitization.steps import mark_step, record_step
from immunoplan.services.records.desensitization.views import blocked_reason, reaction_steps, session_view

__all__ = [
    "BREAKTHROUGH_SCALE",
    "TREATMENT_TEXT",
    "BaselineFields",
    "BaselineIn",
    "TreatmentGiven",
    "grade_phenotype",
    "record_baseline",
    "KIND",
    "OPEN_COURSE",
    "STEP_AMENDABLE",
    "BreakthroughFields",
    "BreakthroughIn",
    "FinishFields",
    "FinishIn",
    "PlanIn",
    "SessionFields",
    "SessionStartIn",
    "StepFields",
    "StepIn",
    "amend_step",
    "blocked_reason",
    "reaction_steps",
    "finish_session",
    "grade_breakthrough",
    "mark_step",
    "plan_session",
    "recompute_cumulative_doses",
    "record_breakthrough",
    "record_step",
    "session_state",
    "session_view",
    "start_desensitization",
    "start_session",
    "view_json",
]
