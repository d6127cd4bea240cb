"""Seed 001 classes for SCIT adverse reactions: local, or mild / moderate / severe systemic.

Definitions (seed 001 methods; reference file ``grading_seed001``):
- mild: self-limiting urticaria; transient wheezing responsive to bronchodilator; mild dyspnea; nausea or
  vomiting resolving spontaneously;
- moderate: generalized urticaria requiring antihistamines; persistent wheezing or dyspnea requiring
  bronchodilators or corticosteroids; GI symptoms requiring IV fluids or antiemetics;
- severe: bronchospasm with marked airway narrowing requiring emergency bronchodilators; angioedema of lips,
  face or throat with airway risk; hypotension requiring IV fluids or epinephrine; anaphylactic shock.
Severe systemic reactions led to discontinuation of AIT in seed 001.
"""

from __future__ import annotations

from immunoplan import reference

from .findings import Findings, Grade

DATA = "grading_seed001"
RESP = {"wheeze", "dyspnea", "lower_airway_cough", "chest_tightness"}
GI = {"nausea", "vomiting", "diarrhea", "abdominal_cramps"}
URT = {"urticaria", "generalized_urticaria"}


def grade_seed001(f: Findings) -> Grade:
    d = reference.load(DATA)
    sym, tx = set(f.symptoms), set(f.treatments)
    reasons: list[str] = []
    systemic = {s for s in sym if not s.startswith("local_")}
    cls: str
    if not systemic:
        cls, reasons = "local", ["injection-site signs only"]
    else:
        severe = []
        if "emergency_bronchodilator" in tx and sym & RESP:
            severe.append("bronchospasm requiring emergency bronchodilators")
        if "airway_angioedema" in sym:
            severe.append("angioedema of lips, face or throat with airway risk")
        if "hypotension" in sym:
            severe.append(
                "hypotension"
                + (" requiring IV fluids/epinephrine" if tx & {"iv_fluids", "epinephrine"} else "")
            )
        if "anaphylactic_shock" in sym or "resuscitation" in tx:
            severe.append("anaphylactic shock / resuscitation")
        moderate = []
        if sym & URT and "antihistamine" in tx:
            moderate.append("urticaria requiring antihistamines")
        if sym & RESP and (f.persistent or "corticosteroid" in tx):
            moderate.append("persistent wheezing/dyspnea requiring bronchodilators or corticosteroids")
        if sym & GI and tx & {"iv_fluids", "antiemetic"}:
            moderate.append("GI symptoms requiring IV fluids or antiemetics")
        if severe:
            cls, reasons = "severe", severe
        elif moderate:
            cls, reasons = "moderate", moderate
        else:
            cls, reasons = "mild", ["systemic symptoms, self-limiting or responsive to a bronchodilator"]
    g = Grade("seed001", d["scale_version"], cls, d["classes"][cls], reasons, reference.basis(DATA, cls))
    if cls == "severe":
        g.warnings.append(d["consequence"]["severe"])
    return g
