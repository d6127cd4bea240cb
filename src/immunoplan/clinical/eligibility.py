"""Biologic eligibility for asthma by label criteria: omalizumab, mepolizumab, benralizumab, dupilumab,
tezepelumab. Criteria are data (``reference/data/assess_biologics.json``; sources: the US labels and EU-style
thresholds in clinical_measures.md 4.3, seed 002). Each biologic is ``eligible``, ``not-eligible`` (a
criterion fails) or ``insufficient-data`` (no criterion fails but an input is missing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from immunoplan.clinical.assess_rules import (
    FiredRule,
    InputRecord,
    age_years,
    evaluate,
    fire,
    optional_choice,
)
from immunoplan.reference import limits, load

TABLE = "assess_biologics"
SEVERITIES = ("mild", "moderate", "severe")
ANSWERS = ("eligible", "not-eligible", "insufficient-data")


@dataclass(frozen=True)
class EligibilityInput(InputRecord):
    """Validated eligibility inputs; ``None`` means not known."""

    age_years: Decimal
    total_ige_iu_ml: Decimal | None = None
    weight_kg: Decimal | None = None
    eosinophils_cells_ul: Decimal | None = None
    feno_ppb: Decimal | None = None
    perennial_sensitization: bool | None = None
    severity: str | None = None
    uncontrolled: bool | None = None
    ocs_dependent: bool | None = None


def validate_eligibility_input(
    age: Any,
    total_ige: Any = None,
    weight_kg: Any = None,
    eosinophils: Any = None,
    feno: Any = None,
    perennial_sensitization: bool | None = None,
    severity: str | None = None,
    uncontrolled: bool | None = None,
    ocs_dependent: bool | None = None,
) -> EligibilityInput:
    """Check every input against its field limit (`immunoplan.reference.limits`); raise `InvalidInput`
    naming the field and accepted range."""
    return EligibilityInput(
        age_years=age_years(age),
        total_ige_iu_ml=limits.check_optional("total_ige_iu_ml", total_ige),
        weight_kg=limits.check_optional("weight_kg", weight_kg),
        eosinophils_cells_ul=limits.check_optional("eosinophils_cells_ul", eosinophils),
        feno_ppb=limits.check_optional("feno_ppb", feno),
        perennial_sensitization=perennial_sensitization,
        severity=optional_choice("severity", severity, SEVERITIES),
        uncontrolled=uncontrolled,
        ocs_dependent=ocs_dependent,
    )


@dataclass(frozen=True)
class CriterionCheck:
    """One label criterion: met (True), failed (False) or unknown (None)."""

    criterion: str
    text: str
    met: bool | None
    rule: FiredRule

    def to_dict(self) -> dict[str, Any]:
        return {"criterion": self.criterion, "text": self.text, "met": self.met, **self.rule.to_dict()}


@dataclass(frozen=True)
class BiologicEligibility:
    biologic: str
    target: str
    answer: str
    criteria: list[CriterionCheck] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        return [c.criterion for c in self.criteria if c.met is False]

    @property
    def missing(self) -> list[str]:
        return [c.criterion for c in self.criteria if c.met is None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "biologic": self.biologic,
            "target": self.target,
            "answer": self.answer,
            "failed": self.failed,
            "missing": self.missing,
            "criteria": [c.to_dict() for c in self.criteria],
        }


@dataclass(frozen=True)
class EligibilityResult:
    inputs: EligibilityInput
    biologics: list[BiologicEligibility]

    def by_name(self) -> dict[str, BiologicEligibility]:
        return {b.biologic: b for b in self.biologics}

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs.to_dict(),
            "summary": {b.biologic: b.answer for b in self.biologics},
            "biologics": [b.to_dict() for b in self.biologics],
            "note": load(TABLE)["note"],
        }


def _answer(checks: list[CriterionCheck]) -> str:
    if any(c.met is False for c in checks):
        return "not-eligible"
    if any(c.met is None for c in checks):
        return "insufficient-data"
    return "eligible"


def assess_eligibility(inp: EligibilityInput) -> EligibilityResult:
    """Check each biologic's label criteria (those whose ``applies_if`` holds) against the inputs."""
    facts = inp.to_dict()
    results = []
    for drug in load(TABLE)["biologics"]:
        checks = []
        for crit in drug["criteria"]:
            if "applies_if" in crit and not evaluate(crit["applies_if"], facts):
                continue
            met = evaluate(crit["when"], facts)
            verdict = {True: "met", False: "not met", None: "unknown (input missing)"}[met]
            rule = fire(TABLE, crit, f"{drug['id']}.{crit['id']}", f"{crit['text']}: {verdict}")
            checks.append(CriterionCheck(crit["id"], crit["text"], met, rule))
        results.append(BiologicEligibility(drug["name"], drug["target"], _answer(checks), checks))
    return EligibilityResult(inp, results)


def eligibility(age: Any, **kwargs: Any) -> EligibilityResult:
    """Validate and assess in one call (see `validate_eligibility_input`)."""
    return assess_eligibility(validate_eligibility_input(age, **kwargs))
