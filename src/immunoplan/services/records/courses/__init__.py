"""Treatment courses: plan one and store what it is (product id, regimen id and schedule parameters as
columns, the calendar shown with its basis in ``plan``), one transaction each.

- `plan_immunotherapy`: a SCIT course (conventional / cluster / rush, ``scit_products``); the schedule is
  computed here with `immunoplan.services.protocols.plan_scit_schedule`, optionally with omalizumab as an
  adjuvant (``pre``: from ``omalizumab_lead_weeks`` before the first injection; ``concurrent``: from the first
  injection) at the label dose. A regimen whose schedule is UNVERIFIED (the engine answers ``cannot-answer``)
  is refused, and so is an adjuvant whose label lookup gives no dose.
- `plan_omalizumab_course`: omalizumab alone, the label dose (`immunoplan.services.omalizumab`) every label
  interval.
- `plan_course`: the keyword form (tests, desensitization, import-like callers) storing what it is given.
- read helpers for the pages and the CLI: `immunotherapy_choices`, `planning_defaults`, `show_course`,
  `stored_label_dose`.

Modules: `inputs`, `immunotherapy`, `omalizumab_alone`, `as_given` (`plan_course`), `planned` (shared by the
plans), `reads`.
"""

from immunoplan.services.records.courses.as_given import plan_course
from immunoplan.services.records.courses.immunotherapy import (
    immunotherapy_choices,
    plan_immunotherapy,
    preview_immunotherapy,
)
from immunoplan.services.records.courses.inputs import (
    OVERRIDE_FIELD,
    USE_CASE,
    ImmunotherapyCourseIn,
    OmalizumabCourseIn,
    OmalizumabDosingIn,
)
from immunoplan.services.records.courses.omalizumab_alone import (
    plan_omalizumab_course,
    preview_omalizumab_course,
)
from immunoplan.services.records.courses.planned import calendar
from immunoplan.services.records.courses.reads import (
    course_by_id,
    planned_with_omalizumab,
    planning_defaults,
    show_course,
    stored_label_dose,
)

__all__ = [
    "OVERRIDE_FIELD",
    "USE_CASE",
    "ImmunotherapyCourseIn",
    "OmalizumabCourseIn",
    "OmalizumabDosingIn",
    "calendar",
    "course_by_id",
    "immunotherapy_choices",
    "plan_course",
    "plan_immunotherapy",
    "plan_omalizumab_course",
    "planned_with_omalizumab",
    "planning_defaults",
    "preview_immunotherapy",
    "preview_omalizumab_course",
    "show_course",
    "stored_label_dose",
]
