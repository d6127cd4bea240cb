"""Systemic-reaction (SR) risk before mite rush immunotherapy, and omalizumab pre-treatment advice.

Rules from seed 000 (retrospective, 202 patients with mite allergic asthma, rush IT +/- omalizumab): tier
``low`` when sIgE class 1-2 and sIgE/T-IgE < 10 %, ``high`` when class 3-6 and ratio >= 10 %, otherwise
``elevated``; omalizumab pre-treatment ``recommended`` / ``consider`` / ``not-needed``; efficacy note for a
ratio > 16 %. Extra cautions (uncontrolled asthma, FEV1 % predicted, beta-blockers, age, sIgE >= 17.5, total
IgE >= 327.8) come from clinical_measures.md section 5. All of it is data:
``reference/data/assess_sr_risk.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from immunoplan.clinical import biomarkers
from immunoplan.clinical.assess_rules import (
    FiredRule,
    InputRecord,
    age_years,
    evaluate,
    fire,
    optional_choice,
)
from immunoplan.reference import limits, load

TABLE = "assess_sr_risk"
ASTHMA_CONTROL = ("controlled", "partly-controlled", "uncontrolled")
TIERS = ("low", "elevated", "high")
PRETREATMENT = ("not-needed", "consider", "recommended")


@dataclass(frozen=True)
class RiskInput(InputRecord):
    """Validated inputs (see `validate_risk_input`)."""

    age_years: Decimal
    total_ige_iu_ml: Decimal
    sige_kua_l: Decimal
    allergen: str = "mite"
    asthma_control: str | None = None
    fev1_percent_predicted: Decimal | None = None
    beta_blocker: bool | None = None


def validate_risk_input(
    age: Any,
    total_ige: Any,
    sige: Any,
    allergen: str = "mite",
    asthma_control: str | None = None,
    fev1_percent_predicted: Any = None,
    beta_blocker: bool | None = None,
) -> RiskInput:
    """Check every input against its field limit (`immunoplan.reference.limits`); raise `InvalidInput`
    naming the field and accepted range."""
    return RiskInput(
        age_years=age_years(age),
        total_ige_iu_ml=biomarkers.total_ige_iu_ml(total_ige),
        sige_kua_l=biomarkers.sige_kua_l(sige),
        allergen=(allergen or "mite").strip().lower(),
        asthma_control=optional_choice("asthma_control", asthma_control, ASTHMA_CONTROL),
        fev1_percent_predicted=limits.check_optional(
            "fev1_pct_pred", fev1_percent_predicted, "fev1_percent_predicted"
        ),
        beta_blocker=beta_blocker,
    )


@dataclass(frozen=True)
class RiskResult:
    """Risk tier, age group, omalizumab advice, efficacy note and every rule that fired."""

    inputs: RiskInput
    sige_class: int
    ratio_percent: Decimal
    ratio_percent_exact: Decimal
    age_group: str
    risk_tier: str
    omalizumab_pretreatment: str
    efficacy_note: str | None
    contraindications: list[FiredRule] = field(default_factory=list)
    risk_factors: list[FiredRule] = field(default_factory=list)
    rules: list[FiredRule] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs.to_dict(),
            "sige_class": self.sige_class,
            "ratio_percent": self.ratio_percent,
            "age_group": self.age_group,
            "risk_tier": self.risk_tier,
            "omalizumab_pretreatment": self.omalizumab_pretreatment,
            "efficacy_note": self.efficacy_note,
            "contraindications": [r.rule for r in self.contraindications],
            "risk_factors": [r.rule for r in self.risk_factors],
            "rules": [r.to_dict() for r in self.rules],
            "warnings": list(self.warnings),
        }


def _tier(facts: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    for tier in data["tiers"]:
        if tier["when"] == "otherwise" or evaluate(tier["when"], facts):
            return tier
    raise AssertionError("assess_sr_risk has no 'otherwise' tier")  # pragma: no cover


def assess_risk(inp: RiskInput) -> RiskResult:
    """Apply the seed-000 tier rules and the section-5 cautions to validated inputs."""
    data = load(TABLE)
    cls = biomarkers.sige_class(inp.sige_kua_l)
    ratio = biomarkers.ratio_percent(inp.sige_kua_l, inp.total_ige_iu_ml)
    facts: dict[str, Any] = {**inp.to_dict(), "sige_class": cls, "ratio_percent": ratio}
    rules = [biomarkers.sige_class_rule(cls), biomarkers.ratio_rule()]
    warnings: list[str] = []

    if inp.allergen != "mite":
        warnings.append(
            f"seed 000 studied house dust mite only; the tiers are extrapolated to {inp.allergen!r}"
        )
    if ratio > 100:
        warnings.append("sIgE exceeds total IgE (ratio > 100 %): check the results and units")

    tier = _tier(facts, data)
    rules.append(fire(TABLE, tier, tier["id"], tier["finding"]))
    sens = data["not_sensitized"]
    if evaluate(sens["when"], facts):
        rules.append(fire(TABLE, sens, sens["id"], sens["finding"]))
        warnings.append(sens["finding"])

    ag = data["age_group"]
    child = inp.age_years < Decimal(ag["child_adolescent_below_years"])
    age_group = "child-adolescent" if child else "adult"
    rules.append(fire(TABLE, ag, f"age_group_{age_group}", ag["finding_child" if child else "finding_adult"]))

    advice = data["omalizumab_pretreatment"][tier["tier"]]
    rules.append(fire(TABLE, advice, f"omalizumab_{advice['advice']}", advice["finding"]))
    if advice["status"] == "UNVERIFIED":
        warnings.append(f"omalizumab advice '{advice['advice']}' is a project rule, not a published finding")

    eff = data["efficacy"]
    efficacy_note = eff["finding"] if evaluate(eff["when"], facts) else None
    if efficacy_note:
        rules.append(fire(TABLE, eff, eff["id"], eff["finding"]))

    contraindications: list[FiredRule] = []
    risk_factors: list[FiredRule] = []
    for caution in data["cautions"]:
        if evaluate(caution["when"], facts):
            fired = fire(TABLE, caution, caution["id"], caution["finding"], action=caution["action"])
            rules.append(fired)
            (risk_factors if caution["action"] == "risk-factor" else contraindications).append(fired)
    if inp.asthma_control is None or inp.fev1_percent_predicted is None:
        warnings.append(
            "asthma control and FEV1 % predicted not both given: the contraindication checks are incomplete"
        )

    return RiskResult(
        inputs=inp,
        sige_class=cls,
        ratio_percent=biomarkers.display_ratio(ratio),
        ratio_percent_exact=ratio,
        age_group=age_group,
        risk_tier=tier["tier"],
        omalizumab_pretreatment=advice["advice"],
        efficacy_note=efficacy_note,
        contraindications=contraindications,
        risk_factors=risk_factors,
        rules=rules,
        warnings=warnings,
    )


def risk(age: Any, total_ige: Any, sige: Any, **kwargs: Any) -> RiskResult:
    """Validate and assess in one call (see `validate_risk_input` for the keyword arguments)."""
    return assess_risk(validate_risk_input(age, total_ige, sige, **kwargs))
