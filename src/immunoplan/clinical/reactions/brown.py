"""Brown 2004 severity grade (mild / moderate / severe) of generalized hypersensitivity reactions.

Brown SGA, JACI 2004;114:371-6 (abstract): mild = skin and subcutaneous tissue only; moderate = features
suggesting respiratory, cardiovascular or gastrointestinal involvement; severe = confusion, collapse,
unconsciousness, incontinence. The numeric hypotension/hypoxia criteria were not read: a grade that rests on
them is returned with status UNVERIFIED. Reference file ``grading_brown2004``.
"""

from __future__ import annotations

from typing import Any

from immunoplan import reference

from .findings import Findings, Grade

DATA = "grading_brown2004"


def grade_brown(f: Findings) -> Grade:
    d = reference.load(DATA)
    sym = set(f.symptoms)
    version = d["scale_version"]
    warnings: list[str] = []
    for level in ("severe", "moderate", "mild"):
        hit = sym & set(d["grades"][level]["features"])
        if hit:
            if level == "mild" and (sym - set(d["grades"]["mild"]["features"])) - _local(sym):
                other = sorted((sym - set(d["grades"]["mild"]["features"])) - _local(sym))
                warnings.append(f"not Brown features (ignored): {', '.join(other)}")
            basis = reference.basis(DATA, level)
            if level != "severe":
                numeric = sym & set(d["severe_numeric_criteria"]["features"])
                if numeric:
                    return _severe_on_numeric(
                        d, f"{', '.join(sorted(numeric))} (numeric criterion UNVERIFIED)"
                    )
            return Grade(
                "brown2004",
                version,
                level,
                d["grades"][level]["text"],
                [f"{level} features: {', '.join(sorted(hit))}"],
                basis,
                warnings=warnings,
            )
    numeric = sym & set(d["severe_numeric_criteria"]["features"])
    if numeric:
        return _severe_on_numeric(d, ", ".join(sorted(numeric)))
    return Grade(
        "brown2004",
        version,
        None,
        "not graded",
        ["no Brown 2004 feature present"],
        reference.basis(DATA),
        warnings=warnings,
    )


def _severe_on_numeric(d: dict[str, Any], reason: str) -> Grade:
    """``severe`` resting on the hypotension/hypoxia criteria, which were not read (UNVERIFIED)."""
    crit = d["severe_numeric_criteria"]
    return Grade(
        "brown2004",
        d["scale_version"],
        "severe",
        crit["text"],
        [reason],
        reference.basis(DATA, "severe numeric criteria", status="UNVERIFIED", source=crit["source"]),
        warnings=["severe on hypotension/hypoxia: criterion UNVERIFIED; confirm clinically"],
    )


def _local(sym: set[str]) -> set[str]:
    return {s for s in sym if s.startswith("local_")}
