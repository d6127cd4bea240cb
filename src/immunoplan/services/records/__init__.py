"""Registry use cases shared by the CLI, the web app and the tests, one module (or package) per aggregate.

Each function runs in exactly one audited transaction (`Registry.transaction(actor, use_case)`): it validates
its input first (`InvalidInput` naming the field, nothing written), writes, and returns a JSON-able dict.
Patients are addressed by their pseudonymous id (``pseudo_id``).

Aggregates: `patients`, `assessments`, `courses`, `injections`, `omalizumab`, `reactions`,
`desensitization`, `visits`; `corrections` voids or amends an entry of any of them (each aggregate owns its
amendment). Shared: `common` (look-ups, conversions, ``live_rows``), `fields` (typed input fields),
`amending` (what every amendment does). The packages re-export their public names, so
``from immunoplan.services.records import injections`` then ``injections.record`` works as before; modules
use each other's public names only (``tests/test_layers.py``).
"""

from immunoplan.services.records.assessments import assess, record_dose_decision
from immunoplan.services.records.courses import plan_course
from immunoplan.services.records.desensitization import record_step, start_desensitization
from immunoplan.services.records.injections import list_due_injections, record_injection
from immunoplan.services.records.omalizumab import record_omalizumab
from immunoplan.services.records.patients import register_patient
from immunoplan.services.records.reactions import record_reaction
from immunoplan.services.records.visits import record_measurement, record_questionnaire, record_visit

__all__ = [
    "assess",
    "list_due_injections",
    "plan_course",
    "record_dose_decision",
    "record_injection",
    "record_measurement",
    "record_omalizumab",
    "record_questionnaire",
    "record_reaction",
    "record_step",
    "record_visit",
    "register_patient",
    "start_desensitization",
]
