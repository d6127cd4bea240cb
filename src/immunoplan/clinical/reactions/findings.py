"""Structured findings of one reaction, and the `Grade` every scale returns (scale + version stored)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from immunoplan import reference
from immunoplan.clinical import vocabularies
from immunoplan.errors import InvalidInput
from immunoplan.reference import Basis, limits
from immunoplan.validation import check_choice

SYMPTOMS = "grading_symptoms"
BRONCHODILATOR = vocabularies.BRONCHODILATOR_RESPONSES
INTERVENTIONS = ("none", "oral", "iv", "urgent")
TREATMENTS = (
    "antihistamine",
    "bronchodilator",
    "emergency_bronchodilator",
    "corticosteroid",
    "iv_fluids",
    "antiemetic",
    "epinephrine",
    "resuscitation",
)
BIOMARKERS = ("tryptase_elevated", "il6_elevated", "skin_test_positive")


def symptom_codes() -> list[str]:
    return list(reference.load(SYMPTOMS)["symptoms"])


def system_of(symptom: str) -> str:
    return str(reference.load(SYMPTOMS)["symptoms"][symptom]["system"])


@dataclass(frozen=True)
class Findings:
    """What was observed and done. Symptom codes come from reference file ``grading_symptoms``."""

    symptoms: frozenset[str] = frozenset()
    bronchodilator_response: str | None = None
    pef_drop_pct: Decimal | None = None
    epinephrine_minutes: Decimal | None = None
    onset_minutes: Decimal | None = None
    first_symptom: str | None = None
    treatments: frozenset[str] = frozenset()
    intervention: str | None = None
    infusion_interrupted: bool = False
    prompt_response: bool | None = None
    recurrence: bool = False
    hospitalization: bool = False
    life_threatening: bool = False
    persistent: bool = False
    death: bool = False
    vasovagal: bool = False
    biomarkers: frozenset[str] = frozenset()
    complement_prone_drug: bool = False
    sbp_mmhg: Decimal | None = None
    spo2_pct: Decimal | None = None
    heart_rate_bpm: Decimal | None = None
    #: the patient is an adult (Brown 2004's systolic BP criterion is for adults); None = not known
    adult: bool | None = None

    def __post_init__(self) -> None:
        known = symptom_codes()
        for s in self.symptoms:
            check_choice("symptom", s, known)
        if self.first_symptom is not None:
            check_choice("first_symptom", self.first_symptom, known)
        for t in self.treatments:
            check_choice("treatment", t, TREATMENTS)
        for b in self.biomarkers:
            check_choice("biomarker", b, BIOMARKERS)
        if self.bronchodilator_response is not None:
            check_choice("bronchodilator_response", self.bronchodilator_response, BRONCHODILATOR)
        if self.intervention is not None:
            check_choice("intervention", self.intervention, INTERVENTIONS)
        for name, lim in (
            ("pef_drop_pct", "pef_drop_pct"),
            ("epinephrine_minutes", "epinephrine_minutes"),
            ("onset_minutes", "onset_minutes"),
            ("sbp_mmhg", "systolic_bp_mmhg"),
            ("spo2_pct", "spo2_pct"),
            ("heart_rate_bpm", "heart_rate_bpm"),
        ):
            limits.check_optional(lim, getattr(self, name), name)  # field limits, with units
        if not (self.symptoms or self.death):
            raise InvalidInput(
                "symptom", "at least one symptom (or death) is needed to grade", "symptom codes"
            )

    def vital_sign_note(self, scale: str | None = None) -> str | None:
        """Numeric vital signs are recorded; only Brown 2004 grades on them (its SpO2 and systolic BP
        criteria, ``grading_brown2004`` ``severe_numeric_criteria``): on any other scale they are not graded
        on."""
        if self.sbp_mmhg is None and self.spo2_pct is None and self.heart_rate_bpm is None:
            return None
        if scale == "brown2004":
            if self.heart_rate_bpm is None:
                return None
            return "heart rate recorded, not a Brown 2004 criterion (not graded on)"
        return (
            "vital signs recorded, not used to grade on this scale (no numeric threshold of it was read): "
            "record hypotension or hypoxia as symptoms when the clinician judges them present"
        )

    def systems(self) -> set[str]:
        return {system_of(s) for s in self.symptoms}

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for k in ("symptoms", "treatments", "biomarkers"):
            d[k] = sorted(d[k])
        return d


@dataclass
class Grade:
    """A grade on one scale. ``grade`` is None when the scale cannot grade these findings (reason given)."""

    scale: str
    scale_version: str
    grade: str | None
    label: str
    reasons: list[str]
    basis: Basis
    suffix: str | None = None
    report: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "scale_version": self.scale_version,
            "grade": self.grade,
            "suffix": self.suffix,
            "label": self.label,
            "report": self.report,
            "reasons": self.reasons,
            "basis": self.basis.to_dict(),
            "warnings": self.warnings,
        }
