"""Reaction grading: WAO 2010 / 2017 (with epinephrine suffix), Brown 2004, CTCAE, seed 001 classes, and drug
reaction phenotypes. Every `Grade` stores the scale and its version. Pure functions over `Findings`."""

from __future__ import annotations

from immunoplan.validation import check_choice

from .brown import grade_brown, numeric_severe
from .ctcae import grade_ctcae
from .findings import BIOMARKERS, BRONCHODILATOR, INTERVENTIONS, TREATMENTS, Findings, Grade, symptom_codes
from .phenotype import phenotype
from .seed001 import grade_seed001
from .wao import grade_wao, suffix

SCALES = ("wao2010", "wao2017", "brown2004", "ctcae-irr", "ctcae-allergic", "seed001", "phenotype")


def grade(scale: str, findings: Findings) -> Grade:
    """Grade ``findings`` on ``scale`` (one of `SCALES`)."""
    check_choice("scale", scale, SCALES)
    g = _grade(scale, findings)
    note = findings.vital_sign_note(scale)
    if note:
        g.warnings.append(note)
    return g


def _grade(scale: str, findings: Findings) -> Grade:
    if scale in ("wao2010", "wao2017"):
        return grade_wao(findings, scale)
    if scale == "brown2004":
        return grade_brown(findings)
    if scale == "ctcae-irr":
        return grade_ctcae(findings, "infusion_related_reaction")
    if scale == "ctcae-allergic":
        return grade_ctcae(findings, "allergic_reaction")
    if scale == "seed001":
        return grade_seed001(findings)
    return phenotype(findings)


__all__ = [
    "BIOMARKERS",
    "BRONCHODILATOR",
    "INTERVENTIONS",
    "SCALES",
    "TREATMENTS",
    "Findings",
    "Grade",
    "grade",
    "grade_brown",
    "numeric_severe",
    "grade_ctcae",
    "grade_seed001",
    "grade_wao",
    "phenotype",
    "suffix",
    "symptom_codes",
]
