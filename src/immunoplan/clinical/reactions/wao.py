"""WAO systemic reaction grades 1-5 with the epinephrine-timing suffix (a-d, z).

WAO 2010: Cox L et al. JACI 2010;125:569-74. WAO 2017 modification: Cox LS, Sanchez-Borges M, Lockey RF,
JACI Pract 2017;5:58-62. Criteria as data in reference file ``grading_wao`` (protocols.md 5.1-5.2).
"""

from __future__ import annotations

from decimal import Decimal

from immunoplan import reference

from .findings import Findings, Grade, system_of

DATA = "grading_wao"
LOWER_RESP = {"wheeze", "lower_airway_cough", "dyspnea"}


def suffix(epinephrine_minutes: Decimal | None) -> str:
    """a <= 5 min; b > 5-10; c > 10-20; d > 20; z not given (WAO 2010, same in 2017)."""
    s = reference.load(DATA)["suffix"]
    if epinephrine_minutes is None:
        return str(s["not_given"])
    for band in s["bands"]:
        if band["max_minutes"] is None or epinephrine_minutes <= Decimal(band["max_minutes"]):
            return str(band["letter"])
    raise AssertionError("last band is open")  # pragma: no cover


def grade_wao(f: Findings, scale: str) -> Grade:
    """Grade ``f`` on ``scale`` ('wao2010' or 'wao2017'); the highest grade whose criteria are met wins."""
    data = reference.load(DATA)
    s = data["scales"][scale]
    reasons: list[str] = []
    warnings: list[str] = []
    sym = set(f.symptoms)
    g = 0
    g1_systems = set(s["grade1_systems"])
    present = {x for x in f.systems() if x in g1_systems}
    if "other" in present and not (sym & set(s["grade1_other_symptoms"])):
        present.discard("other")
    if "headache" in sym and "headache" not in s["grade1_other_symptoms"]:
        warnings.append("headache is not a WAO 2017 criterion; ignored")
    airway = sym & set(s["grade3_upper_airway"])
    if scale == "wao2017" and (sym & {"tongue_edema", "uvula_edema"}):
        present.add("cutaneous")  # WAO 2017 grade 1 cutaneous: angioedema that is not laryngeal
        reasons.append("tongue/uvula edema counted as non-laryngeal angioedema (WAO 2017 grade 1)")
    if present:
        g = 1
        reasons.append(f"organ system(s): {', '.join(sorted(present))}")
    if len(present) > 1:
        g = 2
        reasons.append("more than one organ system")
    grade2_systems = f.systems() & set(s["grade2_systems"])
    if grade2_systems:
        g = max(g, 2)
        reasons.append(f"{', '.join(sorted(grade2_systems))} symptoms")
    lower = sym & LOWER_RESP
    if lower:
        not_resp = f.bronchodilator_response in ("not-responding", "worsening")
        if not_resp:
            g = max(g, 3)
            reasons.append("bronchospasm not responding to (or worsening despite) treatment")
        else:
            g = max(g, 2)
            reasons.append("lower respiratory symptoms responding to a bronchodilator")
            if f.bronchodilator_response is None:
                warnings.append("bronchodilator response not recorded: graded as responding (grade 2)")
    if airway:
        if s["grade3_requires_stridor"] and "stridor" not in sym:
            warnings.append(
                "WAO 2017 grade 3 needs laryngeal edema WITH stridor; without stridor it is not grade 3"
            )
            g = max(g, 1)
        else:
            g = max(g, 3)
            reasons.append(f"upper airway edema: {', '.join(sorted(airway))}")
    g4 = sym & set(s["grade4"])
    if "loss_of_consciousness" in g4 and f.vasovagal:
        g4.discard("loss_of_consciousness")
        warnings.append("loss of consciousness attributed to a vasovagal reaction: excluded")
    if g4:
        g = max(g, 4)
        reasons.append(f"{', '.join(sorted(g4))}")
    if (
        scale == "wao2010"
        and "loss_of_consciousness" in sym
        and not (sym & {"respiratory_failure", "hypotension"})
    ):
        warnings.append("WAO 2010 grade 4 requires respiratory failure or hypotension (with or without LOC)")
    if f.death:
        g = 5
        reasons.append("death")
    used = (
        {x for x in sym if system_of(x) in g1_systems}
        | (sym & LOWER_RESP)
        | {x for x in sym if system_of(x) in set(s["grade2_systems"])}
        | airway
        | {"stridor"}
        | set(s["grade4"])
    )
    unused = sorted(x for x in sym - used if not x.startswith("local_"))
    if unused:
        warnings.append(f"not {scale.upper()} criteria (not graded on): {', '.join(unused)}")
    basis = reference.basis(DATA, scale, status=s["status"])
    if g == 0:
        return Grade(
            scale,
            s["version"],
            None,
            "not a WAO systemic reaction",
            ["no WAO systemic criterion met (local or unlisted symptoms only)"],
            basis,
            warnings=warnings,
        )
    sfx = suffix(f.epinephrine_minutes)
    report = f"Grade {g}{sfx}"
    if f.first_symptom:
        report += f"; {f.first_symptom.replace('_', ' ')}"
        if f.onset_minutes is not None:
            report += f": {f.onset_minutes} min"
    else:
        warnings.append("record the first symptom and its onset time for the WAO report")
    return Grade(scale, s["version"], str(g), s["grades"][str(g)], reasons, basis, sfx, report, warnings)
