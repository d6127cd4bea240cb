"""Brown 2004 severity grade (mild / moderate / severe) of generalized hypersensitivity reactions.

Brown SGA, JACI 2004;114:371-6 (abstract): mild = skin and subcutaneous tissue only; moderate = features
suggesting respiratory, cardiovascular or gastrointestinal involvement; severe = hypoxia, hypotension or
neurological compromise (confusion, collapse, unconsciousness, incontinence). The numeric criteria of the
severe grade (cyanosis or SpO2 <= 92 % at any stage; systolic BP < 90 mmHg in adults) were read as a
quotation of Brown 2004 (Clin Rev Allergy Immunol 2022;62:432-48, Table 2): a grade that rests on them
carries status SECONDARY. A finding that is not a Brown feature is named in a warning and never lowers the
grade of the features that are. Reference file ``grading_brown2004``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from immunoplan import reference

from .findings import Findings, Grade

DATA = "grading_brown2004"


def numeric_severe(f: Findings, d: dict[str, Any] | None = None) -> tuple[list[str], list[str]]:
    """(reasons, warnings) of the numeric severe criteria met by ``f``'s SpO2 and systolic BP."""
    crit = (d or reference.load(DATA))["severe_numeric_criteria"]
    reasons: list[str] = []
    warnings: list[str] = []
    spo2_max = Decimal(crit["spo2_pct_at_most"])
    sbp_below = Decimal(crit["systolic_bp_mmhg_below"])
    if f.spo2_pct is not None and f.spo2_pct <= spo2_max:
        reasons.append(f"hypoxia: SpO2 {f.spo2_pct} % (at most {spo2_max} %)")
    if f.sbp_mmhg is not None and f.sbp_mmhg < sbp_below:
        if f.adult is False:
            warnings.append(
                f"systolic BP {f.sbp_mmhg} mmHg: the Brown 2004 hypotension criterion (< {sbp_below} mmHg) "
                "is for adults and was not applied to a child; record 'hypotension' as a finding when it is "
                "present"
            )
        else:
            reasons.append(f"hypotension: systolic BP {f.sbp_mmhg} mmHg (below {sbp_below} mmHg, adults)")
            if f.adult is None:
                warnings.append("the systolic BP criterion is for adults: the patient's age was not known")
    return reasons, warnings


def grade_brown(f: Findings) -> Grade:
    d = reference.load(DATA)
    sym = set(f.symptoms)
    version = d["scale_version"]
    crit = d["severe_numeric_criteria"]
    placed = set().union(*(set(d["grades"][g]["features"]) for g in d["grades"])) | set(crit["features"])
    unplaced = sorted(x for x in sym - placed if not x.startswith("local_"))
    warnings: list[str] = []
    if unplaced:
        warnings.append(
            f"not Brown 2004 features (not graded on; the grade is not lowered): {', '.join(unplaced)}"
        )
    numeric, numeric_warnings = numeric_severe(f, d)
    warnings.extend(numeric_warnings)
    named = sym & set(crit["features"])
    severe = sym & set(d["grades"]["severe"]["features"])
    if severe:  # neurological compromise: read in the abstract
        return Grade(
            "brown2004",
            version,
            "severe",
            d["grades"]["severe"]["text"],
            [f"severe features: {', '.join(sorted(severe))}", *numeric],
            reference.basis(DATA, "severe"),
            warnings=warnings,
        )
    if numeric or named:
        reasons = [*numeric, *([f"{', '.join(sorted(named))} recorded as findings"] if named else [])]
        return Grade(
            "brown2004",
            version,
            "severe",
            crit["text"],
            reasons,
            reference.basis(DATA, "severe numeric criteria", status=crit["status"], source=crit["source"]),
            warnings=warnings,
        )
    for level in ("moderate", "mild"):
        hit = sym & set(d["grades"][level]["features"])
        if hit:
            return Grade(
                "brown2004",
                version,
                level,
                d["grades"][level]["text"],
                [f"{level} features: {', '.join(sorted(hit))}"],
                reference.basis(DATA, level),
                warnings=warnings,
            )
    return Grade(
        "brown2004",
        version,
        None,
        "not graded",
        ["no Brown 2004 feature present"],
        reference.basis(DATA),
        warnings=warnings,
    )
