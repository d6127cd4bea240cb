"""The clinical vocabularies: one definition of every coded value that the engines, the registry, the forms,
the API and the CLI share. Where reference data defines a vocabulary it is derived from the data (never
retyped), so a new grade or rule in the data is a new accepted value everywhere.

Each vocabulary is a tuple of strings in display order; ``registry.models`` re-exports the ones stored in
database columns under its historical names (``SEXES``, ``COURSE_KINDS``, ...). Pure: no I/O beyond the
packaged reference data (cached by `immunoplan.reference.load`).
"""

from __future__ import annotations

from immunoplan import reference

# --------------------------------------------------------------------------------------------- patients
SEXES: tuple[str, ...] = ("female", "male", "other", "unknown")
"""Administrative sex as recorded (registry ``patients.sex``); ``female``/``male`` select the GLI 2012 and
Global Lung Function equations in the spirometry engine (``assess_spirometry``)."""

AGE_GROUPS: tuple[str, ...] = ("child", "adolescent", "adult")
"""Age groups of the registry and the seed 001 / assessment reports (registry ``patients.age_group``)."""

# --------------------------------------------------------------------------------------------- courses
COURSE_KINDS: tuple[str, ...] = ("SCIT", "RIT", "cluster", "OIT", "drug_desensitization", "omalizumab")
"""What a treatment course is (registry ``courses.kind``): subcutaneous immunotherapy (conventional, rush,
cluster; ``scit_products``), oral immunotherapy (``oit_protocols``), rapid drug desensitization
(``rdd_protocols``), omalizumab (``omalizumab_*`` tables)."""

COURSE_STATUSES: tuple[str, ...] = ("planned", "active", "completed", "stopped")
"""Life cycle of a course (registry ``courses.status``)."""

OMALIZUMAB_MODES: tuple[str, ...] = ("none", "pre", "concurrent")
"""Omalizumab with SCIT (registry ``courses.omalizumab_timing``): none; ``pre`` = pre-treatment before the
first injection (lead time: field limit ``omalizumab_lead_weeks``); ``concurrent`` = from the first SCIT
injection, 'initiated simultaneously with AIT' (seed 001, ``omalizumab_regimens``)."""

OMALIZUMAB_ADJUVANT_MODES: tuple[str, ...] = tuple(m for m in OMALIZUMAB_MODES if m != "none")
"""The modes that plan omalizumab administrations (``services.protocols.plan_scit_schedule``)."""

INJECTION_PHASES: tuple[str, ...] = ("build-up", "maintenance")
"""Phase of a SCIT injection (registry ``injections.phase``; the schedule engine's visit phases, from the
up-dosing and maintenance parts of each regimen in ``scit_products``)."""

INJECTION_SITES: tuple[str, ...] = ("left arm", "right arm")
"""Where a SCIT injection was given, as recorded (formerly ``SITES`` in ``web/routes/injections.py``). A
recording vocabulary only: no reference file defines injection sites and no rule reads them."""

VISIT_CODES: tuple[str, ...] = (
    "screening",
    "baseline",
    "week12",
    "week24",
    "week48",
    "month12",
    "unscheduled",
)
"""Visit codes of the registry (``visits.code``); baseline, week12, week24 and week48 are the seed 001
visits (``registry_demo_calibration`` ``visits``)."""

QUESTIONNAIRES: tuple[str, ...] = tuple(reference.load("registry_measurements")["questionnaires"])
"""Questionnaire instruments the registry stores, with their score ranges (``registry_measurements``)."""

# --------------------------------------------------------------------------------------------- reactions
REACTION_KINDS: tuple[str, ...] = ("local", "systemic")
"""Kind of a reaction after a dose (registry ``reactions.kind``): the two branches of the SCIT adjustment
rules (``scit_adjustment`` ``local`` and ``systemic``)."""

LOCAL_REACTION_SIZES: tuple[str, ...] = tuple(reference.load("scit_adjustment")["local"]["rules"])
"""Sizes of a local reaction read by the SCIT adjustment rules, from ``scit_adjustment`` ``local.rules`` (LSU
clinic rules, SECONDARY): ``up-to-quarter`` (do not increase), ``larger-than-quarter`` (half the dose)."""

LOCAL_REACTIONS: tuple[str, ...] = ("none", *LOCAL_REACTION_SIZES)
"""A recorded injection's local reaction: none, or one of `LOCAL_REACTION_SIZES` (adjustment engine input)."""

SCIT_ADJUSTMENT_SCALES: tuple[str, ...] = ("wao2010", "wao2017", "seed001")
"""Grading scales whose systemic grades the SCIT adjustment rules read (``scit_adjustment``
``systemic.severe_definition``: seed 001 'severe' or WAO grade 3-5). The WAO grades come from ``grading_wao``,
the seed 001 classes from ``grading_seed001``."""

BROWN_SEVERITIES: tuple[str, ...] = tuple(reference.load("grading_brown2004")["grades"])
"""Brown 2004 severity grades (``grading_brown2004``: mild, moderate, severe), as used by the desensitization
breakthrough rules (``rdd_breakthrough`` options' ``when``)."""

REACTION_SYMPTOMS: tuple[str, ...] = tuple(reference.load("grading_symptoms")["symptoms"])
"""Structured reaction findings (symptom codes) every grading scale reads, from ``grading_symptoms``."""

BRONCHODILATOR_RESPONSES: tuple[str, ...] = ("responds", "not-responding", "worsening")
"""Response of bronchospasm to a bronchodilator: WAO 2010 grade 3 'not responding to an inhaled
bronchodilator' vs grade 2 (``grading_wao``)."""

DESENSITIZATION_SYMPTOMS: tuple[str, ...] = (
    "flushing",
    "urticaria",
    "pruritus",
    "respiratory",
    "gastrointestinal",
    "hypotension",
)
"""Symptoms recorded with a desensitization breakthrough reaction. ``flushing`` and ``respiratory`` come from
``rdd_premedication`` (UpToDate platinum worksheet: aspirin if flushing, montelukast if respiratory symptoms,
read by the breakthrough engine for the next course: `premedication_symptoms`, a test keeps them in this
tuple); urticaria and pruritus are cutaneous-only (Lee 2004, ``rdd_breakthrough``
``next-unchanged-if-cutaneous``), gastrointestinal and hypotension extracutaneous. Formerly
``web/routes/desensitization.py`` ``SYMPTOMS``."""


def premedication_symptoms() -> tuple[str, ...]:
    """Symptoms that change the next course's premedication (``rdd_premedication`` ``if_symptoms`` keys)."""
    keys = (
        k for reg in reference.load("rdd_premedication")["regimens"] for k in reg.get("if_symptoms") or {}
    )
    return tuple(dict.fromkeys(keys))


# ------------------------------------------------------------------------------- desensitization reactions
BREAKTHROUGH_SCALES: tuple[str, ...] = ("brown2004", "wao2017", "ctcae-allergic", "ctcae-irr")
"""Scales a clinician may record a desensitization breakthrough reaction on (graders in
``clinical/reactions``: Brown 2004, the default, which the re-plan options of ``rdd_breakthrough`` are keyed
by and which is always computed too; WAO 2017; CTCAE 'allergic reaction' (hypersensitivity) and 'infusion
related reaction')."""

REACTION_PHENOTYPES: tuple[str, ...] = ("type I", "cytokine release", "mixed")
"""Endophenotypes of a drug hypersensitivity reaction a clinician may choose when the findings do not decide
(``grading_phenotypes``: Brigham phenotypes, Isabwe 2018; seed 004)."""

TREATMENT_ROUTES: tuple[str, ...] = (
    "IV",
    "IM",
    "SC",
    "PO",
    "inhaled",
    "nebulised",
    "intranasal",
    "topical",
    "other",
)
"""Routes of a treatment given for a reaction (``IV`` and ``PO`` as written in ``rdd_premedication``)."""

TREATMENT_UNITS: tuple[str, ...] = ("mg", "mcg", "g", "mL", "L/min", "puffs", "units", "mg/kg", "mcg/kg")
"""Units of the dose of a treatment given for a reaction (``L/min`` for oxygen, ``mL`` for fluids)."""
