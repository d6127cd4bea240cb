"""Drug hypersensitivity phenotype (Brigham; Isabwe 2018): type I, cytokine release (CRR), mixed, or
possible complement activation. Reference file ``grading_phenotypes``; symptom indicators of CRR (pain,
shivering/fever) from seed 004; biomarkers tryptase / skin test (type I) and IL-6 (CRR) from Isabwe 2018."""

from __future__ import annotations

from immunoplan import reference

from .findings import Findings, Grade

DATA = "grading_phenotypes"


def phenotype(f: Findings) -> Grade:
    d = reference.load(DATA)
    sym, bio = set(f.symptoms), set(f.biomarkers)
    t1 = (sym & set(d["type_i"]["symptoms"])) | (bio & set(d["type_i"]["biomarkers"]))
    crr = (sym & set(d["cytokine_release"]["symptoms"])) | (bio & set(d["cytokine_release"]["biomarkers"]))
    warnings: list[str] = []
    if t1 and crr:
        label, reasons = (
            "mixed",
            [f"type I: {', '.join(sorted(t1))}", f"cytokine release: {', '.join(sorted(crr))}"],
        )
    elif crr:
        label, reasons = "cytokine release", [", ".join(sorted(crr))]
    elif t1:
        label, reasons = "type I", [", ".join(sorted(t1))]
    else:
        label, reasons = "undetermined", ["no phenotype indicator among the findings"]
    status = "VERIFIED"
    if f.complement_prone_drug:
        warnings.append(
            "complement activation possible (solvent such as Cremophor/polysorbate, or liposomal "
            "drug); no symptom criteria published (UNVERIFIED)"
        )
    if not bio:
        warnings.append("no biomarker recorded (tryptase, IL-6, skin test): phenotype from symptoms only")
    basis = reference.basis(DATA, label, status=status)
    return Grade("phenotype", d["scale_version"], label, label, reasons, basis, warnings=warnings)
