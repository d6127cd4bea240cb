"""CTCAE grades for 'infusion related reaction' and 'allergic reaction' (text from CTCAE v6.0; reference file
``grading_ctcae``). The anaphylaxis term is not graded (v5 text not read: UNVERIFIED)."""

from __future__ import annotations

from immunoplan import reference
from immunoplan.errors import InvalidInput
from immunoplan.validation import check_choice

from .findings import Findings, Grade

DATA = "grading_ctcae"
TERMS = ("infusion_related_reaction", "allergic_reaction")


def grade_ctcae(f: Findings, term: str) -> Grade:
    if term == "anaphylaxis":
        raise InvalidInput(
            "ctcae_term", "CTCAE anaphylaxis grade text was not read (UNVERIFIED)", ", ".join(TERMS)
        )
    check_choice("ctcae_term", term, TERMS)
    t = reference.load(DATA)["terms"][term]
    scale = f"ctcae-{term.replace('_', '-')}"
    reasons: list[str] = []
    warnings: list[str] = []
    intervention = f.intervention
    if intervention is None and f.treatments:
        if f.treatments & {"epinephrine", "resuscitation"}:
            intervention = "urgent"
        elif "iv_fluids" in f.treatments:
            intervention = "iv"
        if intervention:
            warnings.append(f"intervention inferred from treatments: {intervention}")
    if f.death:
        g, reasons = 5, ["death"]
    elif f.life_threatening or intervention == "urgent":
        g, reasons = 4, ["life-threatening consequences / urgent intervention"]
    elif term == "infusion_related_reaction":
        if f.recurrence or f.hospitalization or f.prompt_response is False:
            g = 3
            reasons = [
                r
                for r, on in (
                    ("recurrence after initial improvement", f.recurrence),
                    ("hospitalization indicated", f.hospitalization),
                    ("not rapidly responsive (prolonged)", f.prompt_response is False),
                )
                if on
            ]
        elif f.infusion_interrupted or (intervention not in (None, "none")):
            g, reasons = 2, ["interruption or treatment indicated, prompt response"]
            if f.prompt_response is None:
                warnings.append("response to treatment not recorded: assumed prompt (grade 2)")
        else:
            g, reasons = 1, ["mild transient; no interruption, no intervention"]
    else:
        if "wheeze" in f.symptoms or f.hospitalization or intervention == "iv":
            g = 3
            reasons = [
                r
                for r, on in (
                    ("bronchospasm", "wheeze" in f.symptoms),
                    ("hospitalization indicated", f.hospitalization),
                    ("IV intervention", intervention == "iv"),
                )
                if on
            ]
        elif intervention == "oral":
            g, reasons = 2, ["oral intervention"]
        else:
            g, reasons = 1, ["systemic intervention not indicated"]
            if intervention is None:
                warnings.append("intervention not recorded: assumed none")
    return Grade(
        scale,
        t["scale_version"],
        str(g),
        t["grades"][str(g)],
        reasons,
        reference.basis(DATA, term),
        warnings=warnings,
    )
