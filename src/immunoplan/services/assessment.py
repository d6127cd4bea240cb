"""Use case: assess a patient before allergen immunotherapy (biomarkers, SR risk tier, omalizumab
pre-treatment advice, biologic eligibility). Called by the CLI (``immunoplan assess``/``demo-tour``), the
registry (stores ``to_dict()``) and the web layer (shows it).

Result shape (``PatientAssessment.to_dict()``, schema ``immunoplan.assessment/1``; keys are stable)::

    {
      "schema": "immunoplan.assessment/1",
      "label": str | null,                        # free text, e.g. "example adult"
      "inputs": {age_years, total_ige_iu_ml, sige_kua_l, allergen, weight_kg, eosinophils_cells_ul, feno_ppb,
                 perennial_sensitization, severity, uncontrolled, ocs_dependent, asthma_control,
                 fev1_percent_predicted, beta_blocker},      # validated inputs echoed (null = not given)
      "biomarkers": {"sige_class": 0-6, "ratio_percent": number (2 dp),
                     "eosinophils": {category, meaning} | null, "feno": {category, meaning} | null},
      "risk": {"risk_tier": "low"|"elevated"|"high", "age_group": "child-adolescent"|"adult",
               "omalizumab_pretreatment": "recommended"|"consider"|"not-needed", "efficacy_note": str | null,
               "contraindications": [rule ids], "risk_factors": [rule ids]},
      "omalizumab_pretreatment": {"advice": ..., "finding": str, "status": ..., "source": ...},
      "eligibility": {"omalizumab"|...: "eligible"|"not-eligible"|"insufficient-data", ...},
      "eligibility_detail": [{biologic, target, answer, failed, missing, criteria: [...]}],
      "rules": [{rule, finding, table, version, source, status, [action]}],   # every rule that fired
      "warnings": [str],
      "basis": [{id, version, source, status}],   # one per reference table used (file-level basis)
      "reference": {table id: version}            # data versions used
    }

Numbers are Decimals in the object and JSON numbers after ``immunoplan.cli.output.dumps``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from immunoplan.clinical import biomarkers, eligibility, risk
from immunoplan.clinical.assess_rules import FiredRule
from immunoplan.errors import InvalidInput
from immunoplan.reference import basis, load

SCHEMA = "immunoplan.assessment/1"
TABLES = (risk.TABLE, biomarkers.TABLE, eligibility.TABLE)


@dataclass(frozen=True)
class PatientAssessment:
    """The combined assessment; see the module docstring for the ``to_dict()`` shape."""

    label: str | None
    risk: risk.RiskResult
    eligibility: eligibility.EligibilityResult
    eosinophils: biomarkers.Category | None = None
    feno: biomarkers.Category | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def rules(self) -> list[FiredRule]:
        out = list(self.risk.rules)
        out += [c.rule for c in (self.eosinophils, self.feno) if c is not None]
        out += [c.rule for b in self.eligibility.biologics for c in b.criteria]
        return out

    def to_dict(self) -> dict[str, Any]:
        r = self.risk
        advice = next(x for x in r.rules if x.rule.startswith("omalizumab_"))
        inputs = {**r.inputs.to_dict(), **self.eligibility.inputs.to_dict()}
        return {
            "schema": SCHEMA,
            "label": self.label,
            "inputs": inputs,
            "biomarkers": {
                "sige_class": r.sige_class,
                "ratio_percent": r.ratio_percent,
                "eosinophils": _category(self.eosinophils),
                "feno": _category(self.feno),
            },
            "risk": {
                "risk_tier": r.risk_tier,
                "age_group": r.age_group,
                "omalizumab_pretreatment": r.omalizumab_pretreatment,
                "efficacy_note": r.efficacy_note,
                "contraindications": [x.rule for x in r.contraindications],
                "risk_factors": [x.rule for x in r.risk_factors],
            },
            "omalizumab_pretreatment": {
                "advice": r.omalizumab_pretreatment,
                "finding": advice.finding,
                "status": advice.basis.status,
                "source": advice.basis.source,
            },
            "eligibility": {b.biologic: b.answer for b in self.eligibility.biologics},
            "eligibility_detail": [b.to_dict() for b in self.eligibility.biologics],
            "rules": [x.to_dict() for x in self.rules],
            "warnings": list(self.warnings),
            "basis": [basis(t).to_dict() for t in TABLES],
            "reference": {t: load(t)["version"] for t in TABLES},
        }


def _category(c: Any) -> dict[str, Any] | None:
    """A biomarker category and its meaning (None when the biomarker was not given)."""
    return None if c is None else {"category": c.category, "meaning": c.meaning}


def assess_patient(
    *,
    age_years: Any,
    total_ige_iu_ml: Any,
    sige_kua_l: Any,
    allergen: str = "mite",
    weight_kg: Any = None,
    eosinophils_cells_ul: Any = None,
    feno_ppb: Any = None,
    perennial_sensitization: bool | None = None,
    severity: str | None = None,
    uncontrolled: bool | None = None,
    ocs_dependent: bool | None = None,
    asthma_control: str | None = None,
    fev1_percent_predicted: Any = None,
    beta_blocker: bool | None = None,
    label: str | None = None,
    **unknown: Any,
) -> PatientAssessment:
    """Validate every input first (raising `InvalidInput`, nothing computed), then assess.

    ``uncontrolled`` (for the omalizumab label criterion "inadequately controlled") defaults to
    ``asthma_control != "controlled"`` when only ``asthma_control`` is given. An unknown keyword (e.g. a
    misspelt field from a form or an import) is an `InvalidInput`, not a crash.
    """
    if unknown:
        accepted = ", ".join(p for p in inspect.signature(assess_patient).parameters if p != "unknown")
        raise InvalidInput(sorted(unknown)[0], "unknown assessment input", accepted)
    risk_in = risk.validate_risk_input(
        age_years,
        total_ige_iu_ml,
        sige_kua_l,
        allergen=allergen,
        asthma_control=asthma_control,
        fev1_percent_predicted=fev1_percent_predicted,
        beta_blocker=beta_blocker,
    )
    if uncontrolled is None and risk_in.asthma_control is not None:
        uncontrolled = risk_in.asthma_control != "controlled"
    elig_in = eligibility.validate_eligibility_input(
        age_years,
        total_ige=total_ige_iu_ml,
        weight_kg=weight_kg,
        eosinophils=eosinophils_cells_ul,
        feno=feno_ppb,
        perennial_sensitization=perennial_sensitization,
        severity=severity,
        uncontrolled=uncontrolled,
        ocs_dependent=ocs_dependent,
    )
    eos = (
        None
        if elig_in.eosinophils_cells_ul is None
        else biomarkers.eosinophil_category(elig_in.eosinophils_cells_ul)
    )
    feno = None if elig_in.feno_ppb is None else biomarkers.feno_category(elig_in.feno_ppb, risk_in.age_years)
    risk_result = risk.assess_risk(risk_in)
    return PatientAssessment(
        label=label,
        risk=risk_result,
        eligibility=eligibility.assess_eligibility(elig_in),
        eosinophils=eos,
        feno=feno,
        warnings=list(risk_result.warnings),
    )
