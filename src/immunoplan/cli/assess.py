"""CLI commands for patient assessment: risk, eligibility, biomarkers, score, score-response, spirometry,
assess, demo-tour. Numbers are read as text and validated by the core, so a bad value gives one line naming
the field and its accepted range (exit 2).
"""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from immunoplan.cli.output import JSON_OPTION_HELP, console, emit, to_jsonable
from immunoplan.clinical import biomarkers, questionnaires
from immunoplan.clinical import eligibility as elig
from immunoplan.clinical import risk as sr_risk
from immunoplan.clinical import spirometry as spiro
from immunoplan.errors import InvalidInput
from immunoplan.reference import limits
from immunoplan.services.assessment import PatientAssessment, assess_patient

JSON = typer.Option(False, "--json", help=JSON_OPTION_HELP)
LOOSE = {
    "ignore_unknown_options": True
}  # let "-1" reach the item validator instead of being read as an option


def _help(text: str, field: str) -> str:
    """Option help ending with the field limit's accepted range (`immunoplan.reference.limits`)."""
    return limits.limit(field).help(text)


def _fmt(v: Any) -> str:
    v = to_jsonable(v)
    return "-" if v is None else str(v)


def _rules_table(rules: list[dict[str, Any]], title: str = "Rules that fired") -> Table:
    t = Table(title=title, show_lines=False)
    t.add_column("rule", overflow="fold")
    t.add_column("status")
    t.add_column("finding", overflow="fold", ratio=3)
    t.add_column("source (full text: --json)", overflow="fold", ratio=2)
    for r in rules:
        src = r["source"] if len(r["source"]) <= 60 else r["source"][:59] + "…"
        t.add_row(r["rule"], r["status"], r["finding"], f"{r['table']} {r['version']}: {src}")
    return t


def _kv_table(title: str, rows: list[tuple[str, Any]]) -> Table:
    t = Table(title=title, show_header=False)
    t.add_column("", style="bold")
    t.add_column("")
    for k, v in rows:
        t.add_row(k, _fmt(v))
    return t


def _warnings(ws: list[str]) -> None:
    for w in ws:
        console.print(f"[yellow]warning:[/yellow] {w}")


# ---------------------------------------------------------------- risk
def _render_risk(res: sr_risk.RiskResult) -> None:
    d = res.to_dict()
    console.print(
        _kv_table(
            "Systemic-reaction risk (seed 000)",
            [
                ("sIgE class", d["sige_class"]),
                ("sIgE/total IgE (%)", d["ratio_percent"]),
                ("age group", d["age_group"]),
                ("risk tier", d["risk_tier"]),
                ("omalizumab pre-treatment", d["omalizumab_pretreatment"]),
                ("efficacy note", d["efficacy_note"]),
                ("contraindications", ", ".join(d["contraindications"]) or "none found"),
                ("risk factors", ", ".join(d["risk_factors"]) or "none found"),
            ],
        )
    )
    console.print(_rules_table(d["rules"]))
    _warnings(d["warnings"])


def risk_cmd(
    age: str = typer.Option(..., "--age", help=_help("Age in years.", "age_years")),
    total_ige: str = typer.Option(
        ..., "--total-ige", help=_help("Total IgE (IU/mL = kU/L).", "total_ige_iu_ml")
    ),
    sige: str = typer.Option(..., "--sige", help=_help("Allergen-specific IgE (kUA/L).", "sige_kua_l")),
    allergen: str = typer.Option("mite", "--allergen", help="Allergen (seed 000 studied house dust mite)."),
    asthma_control: str = typer.Option(
        None, "--asthma-control", help="controlled, partly-controlled, uncontrolled."
    ),
    fev1_pct: str = typer.Option(
        None, "--fev1-pct", help=_help("FEV1 % predicted (pre-bronchodilator).", "fev1_pct_pred")
    ),
    beta_blocker: bool = typer.Option(None, "--beta-blocker/--no-beta-blocker", help="Takes a beta-blocker."),
    as_json: bool = JSON,
) -> None:
    """Systemic-reaction risk tier before mite immunotherapy and omalizumab pre-treatment advice."""
    res = sr_risk.risk(
        age,
        total_ige,
        sige,
        allergen=allergen,
        asthma_control=asthma_control,
        fev1_percent_predicted=fev1_pct,
        beta_blocker=beta_blocker,
    )
    emit(res, as_json, _render_risk)


# ---------------------------------------------------------------- eligibility
def _render_eligibility(res: elig.EligibilityResult) -> None:
    t = Table(title="Biologic eligibility (label criteria)")
    for col in ("biologic", "answer", "failed", "missing"):
        t.add_column(col, overflow="fold")
    for b in res.biologics:
        t.add_row(b.biologic, b.answer, ", ".join(b.failed) or "-", ", ".join(b.missing) or "-")
    console.print(t)
    c = Table(title="Criteria checked")
    for col in ("biologic", "criterion", "met", "status", "source"):
        c.add_column(col, overflow="fold")
    for b in res.biologics:
        for ch in b.criteria:
            c.add_row(b.biologic, ch.text, _fmt(ch.met), ch.rule.basis.status, ch.rule.basis.source)
    console.print(c)


def eligibility_cmd(
    age: str = typer.Option(..., "--age", help=_help("Age in years.", "age_years")),
    total_ige: str = typer.Option(
        None, "--total-ige", help=_help("Pre-treatment total IgE (IU/mL).", "total_ige_iu_ml")
    ),
    weight_kg: str = typer.Option(None, "--weight-kg", help=_help("Body weight (kg).", "weight_kg")),
    eosinophils: str = typer.Option(
        None, "--eosinophils", help=_help("Blood eosinophils (cells/uL).", "eosinophils_cells_ul")
    ),
    feno: str = typer.Option(None, "--feno", help=_help("FeNO (ppb).", "feno_ppb")),
    perennial: bool = typer.Option(
        None,
        "--perennial-sensitization/--no-perennial-sensitization",
        help="Positive skin test / sIgE to a perennial aeroallergen.",
    ),
    severity: str = typer.Option(None, "--severity", help="mild, moderate or severe asthma."),
    uncontrolled: bool = typer.Option(
        None, "--uncontrolled/--controlled", help="Inadequately controlled on inhaled corticosteroids."
    ),
    ocs_dependent: bool = typer.Option(None, "--ocs-dependent/--no-ocs-dependent", help="Maintenance OCS."),
    as_json: bool = JSON,
) -> None:
    """Eligibility for omalizumab, mepolizumab, benralizumab, dupilumab, tezepelumab (missing = unknown)."""
    res = elig.eligibility(
        age,
        total_ige=total_ige,
        weight_kg=weight_kg,
        eosinophils=eosinophils,
        feno=feno,
        perennial_sensitization=perennial,
        severity=severity,
        uncontrolled=uncontrolled,
        ocs_dependent=ocs_dependent,
    )
    emit(res, as_json, _render_eligibility)


# ---------------------------------------------------------------- biomarkers
def biomarkers_cmd(
    sige: str = typer.Option(
        None,
        "--sige",
        help=_help("Allergen-specific IgE (kUA/L): class and, with --total-ige, ratio.", "sige_kua_l"),
    ),
    total_ige: str = typer.Option(
        None, "--total-ige", help=_help("Total IgE (IU/mL); also converted to ng/mL.", "total_ige_iu_ml")
    ),
    ige_ng_ml: str = typer.Option(None, "--ige-ng-ml", help="Total IgE in ng/mL, converted to IU/mL."),
    factor: str = typer.Option(
        None, "--factor", help="ng per IU: 2.42 (default, UNVERIFIED) or 2.4 (SECONDARY)."
    ),
    eosinophils: str = typer.Option(
        None, "--eosinophils", help=_help("Blood eosinophils (cells/uL).", "eosinophils_cells_ul")
    ),
    feno: str = typer.Option(None, "--feno", help=_help("FeNO (ppb); needs --age.", "feno_ppb")),
    age: str = typer.Option(
        None, "--age", help=_help("Age in years (chooses adult or child FeNO cut-offs).", "age_years")
    ),
    as_json: bool = JSON,
) -> None:
    """sIgE class, sIgE/total-IgE ratio, IgE unit conversion, eosinophil and FeNO categories."""
    out: dict[str, Any] = {}
    rules: list[dict[str, Any]] = []
    warnings: list[str] = []
    if sige is not None:
        cls = biomarkers.sige_class(sige)
        out["sige_class"] = cls
        rules.append(biomarkers.sige_class_rule(cls).to_dict())
        if total_ige is not None:
            out["ratio_percent"] = biomarkers.display_ratio(biomarkers.ratio_percent(sige, total_ige))
            rules.append(biomarkers.ratio_rule().to_dict())
    if total_ige is not None:
        conv = biomarkers.iu_ml_to_ng_ml(total_ige, factor)
        out["total_ige_ng_ml"] = conv.value
        warnings += [conv.warning] if conv.warning else []
        rules.append(conv.rule.to_dict())
    if ige_ng_ml is not None:
        conv = biomarkers.ng_ml_to_iu_ml(ige_ng_ml, factor)
        out["total_ige_iu_ml"] = conv.value
        warnings += [conv.warning] if conv.warning else []
        rules.append(conv.rule.to_dict())
    if eosinophils is not None:
        cat = biomarkers.eosinophil_category(eosinophils)
        out["eosinophils"] = {"category": cat.category, "meaning": cat.meaning}
        rules.append(cat.rule.to_dict())
    if feno is not None:
        if age is None:
            raise InvalidInput(
                "age_years",
                "needed with --feno (adult and child cut-offs differ)",
                limits.limit("age_years").accepted,
            )
        cat = biomarkers.feno_category(feno, age)
        out["feno"] = {"category": cat.category, "meaning": cat.meaning}
        rules.append(cat.rule.to_dict())
    if not out:
        raise InvalidInput(
            "biomarkers", "give at least one value", "--sige, --total-ige, --ige-ng-ml, --eosinophils, --feno"
        )
    result = {**out, "rules": rules, "warnings": warnings}

    def render(r: dict[str, Any]) -> None:
        console.print(
            _kv_table(
                "Biomarkers",
                [
                    (k, v if not isinstance(v, dict) else v["category"])
                    for k, v in r.items()
                    if k not in ("rules", "warnings")
                ],
            )
        )
        console.print(_rules_table(r["rules"]))
        _warnings(r["warnings"])

    emit(result, as_json, render)


# ---------------------------------------------------------------- questionnaires
def _render_score(res: questionnaires.ScoreResult) -> None:
    d = res.to_dict()
    rows: list[tuple[str, Any]] = [
        ("instrument", d["instrument"]),
        ("score", d["score"]),
        ("category", d["category"]),
        ("bands", d["bands"]),
        ("MID", d["mid"]),
    ]
    rows += [(f"domain {k}", v) for k, v in d.get("domains", {}).items()]
    if "objective_scorad" in d:
        rows.append(("objective SCORAD", d["objective_scorad"]))
    console.print(_kv_table("Questionnaire", rows))
    console.print(_rules_table(d["rules"]))
    _warnings(d["warnings"])


def score_cmd(
    instrument: str = typer.Argument(..., help="act, c-act, acq5, acq6, acq7, aqlq, mini-aqlq or scorad."),
    items: list[str] = typer.Argument(
        ...,
        help="Item responses in questionnaire order (SCORAD: A, 6 intensity "
        "items, pruritus VAS, sleep VAS; AQLQ: grouped by domain).",
    ),
    fev1_pct: str = typer.Option(
        None, "--fev1-pct", help=_help("ACQ-7: FEV1 % predicted (then give 6 items).", "fev1_pct_pred")
    ),
    bands: str = typer.Option(
        None,
        "--bands",
        help="Category convention (ACQ: naepp, van-der-meer; SCORAD: chopra, kunz, fondation).",
    ),
    age: str = typer.Option(
        None, "--age", help=_help("Age in years: warns outside the validated age range.", "age_years")
    ),
    as_json: bool = JSON,
) -> None:
    """Score a questionnaire: total, category, minimal important difference."""
    res = questionnaires.score(instrument, items, fev1_percent_predicted=fev1_pct, bands=bands, age=age)
    emit(res, as_json, _render_score)


def score_response_cmd(
    instrument: str = typer.Argument(..., help="act, c-act, acq5, acq6, acq7, aqlq, mini-aqlq or scorad."),
    before: str = typer.Argument(..., help="Score at the first visit."),
    after: str = typer.Argument(..., help="Score at the later visit."),
    as_json: bool = JSON,
) -> None:
    """Classify the change between two visits against the minimal important difference."""
    res = questionnaires.response(instrument, before, after)
    emit(
        res,
        as_json,
        lambda r: console.print(
            _kv_table(
                "Response",
                [
                    ("instrument", r.instrument),
                    ("change", r.change),
                    ("percent change", r.percent_change),
                    ("MID", f"{_fmt(r.mid)} ({r.mid_kind})"),
                    ("classification", r.classification),
                ],
            )
        ),
    )


# ---------------------------------------------------------------- spirometry
def _render_spirometry(res: spiro.SpirometryResult) -> None:
    t = Table(title=f"Spirometry ({res.equation})")
    for col in ("measure", "observed", "predicted", "LLN", "ULN", "z", "% pred", "interpretation"):
        t.add_column(col)
    for name, m in res.measures.items():
        t.add_row(
            name,
            _fmt(m.observed),
            _fmt(m.predicted),
            _fmt(m.lln),
            _fmt(m.uln),
            _fmt(m.z),
            _fmt(m.percent_predicted),
            _fmt(m.interpretation),
        )
    console.print(t)
    console.print(_rules_table([r.to_dict() for r in res.rules]))
    _warnings(res.warnings)


def spirometry_cmd(
    equation: str = typer.Option(
        "gli-global-2022", "--equation", help="gli-global-2022 (default) or gli2012."
    ),
    sex: str = typer.Option(..., "--sex", help="male or female (sex at birth)."),
    age: str = typer.Option(..., "--age", help="Age in years (3-95)."),
    height_cm: str = typer.Option(..., "--height-cm", help=_help("Standing height (cm).", "height_cm")),
    ethnicity: str = typer.Option(
        None, "--ethnicity", help="gli2012 only: caucasian, african-american, ne-asian, se-asian, other."
    ),
    fev1: str = typer.Option(None, "--fev1", help=_help("Measured FEV1 (L).", "fev1_l")),
    fvc: str = typer.Option(None, "--fvc", help=_help("Measured FVC (L).", "fvc_l")),
    fev1_fvc: str = typer.Option(
        None, "--fev1-fvc", help=_help("Measured FEV1/FVC as a ratio (e.g. 0.72).", "fev1_fvc")
    ),
    as_json: bool = JSON,
) -> None:
    """GLI predicted values, LLN, ULN, z-scores and % predicted (all three measures when none is given)."""
    res = spiro.spirometry(
        sex=sex,
        age=age,
        height_cm=height_cm,
        equation=equation,
        ethnicity=ethnicity,
        fev1_l=fev1,
        fvc_l=fvc,
        fev1_fvc=fev1_fvc,
    )
    emit(res, as_json, _render_spirometry)


# ---------------------------------------------------------------- combined assessment
def render_assessment(a: PatientAssessment, extra: list[tuple[str, Any]] | None = None) -> None:
    """Rich view of one `PatientAssessment` (also used by the demo tour); ``extra`` rows go on top."""
    d = a.to_dict()
    i, r = d["inputs"], d["risk"]
    bm = d["biomarkers"]
    console.rule(f"[bold]{d['label'] or 'Patient assessment'}")
    console.print("inputs: " + ", ".join(f"{k}={_fmt(v)}" for k, v in i.items() if v is not None))
    console.print(
        _kv_table(
            "Assessment",
            [
                *(extra or []),
                ("sIgE class", bm["sige_class"]),
                ("sIgE/total IgE (%)", bm["ratio_percent"]),
                ("eosinophils", bm["eosinophils"]["category"] if bm["eosinophils"] else None),
                ("FeNO", bm["feno"]["category"] if bm["feno"] else None),
                ("age group", r["age_group"]),
                ("SR risk tier", r["risk_tier"]),
                ("omalizumab pre-treatment", r["omalizumab_pretreatment"]),
                ("efficacy note", r["efficacy_note"]),
                ("contraindications", ", ".join(r["contraindications"]) or "none found"),
                ("risk factors", ", ".join(r["risk_factors"]) or "none found"),
                *[(f"eligibility: {k}", v) for k, v in d["eligibility"].items()],
            ],
        )
    )
    console.print(
        _rules_table(
            [x for x in d["rules"] if x["table"] != "assess_biologics"],
            "Rules that fired (eligibility criteria: --json)",
        )
    )
    _warnings(d["warnings"])


def assess_cmd(
    age: str = typer.Option(..., "--age", help=_help("Age in years.", "age_years")),
    total_ige: str = typer.Option(..., "--total-ige", help=_help("Total IgE (IU/mL).", "total_ige_iu_ml")),
    sige: str = typer.Option(..., "--sige", help=_help("Allergen-specific IgE (kUA/L).", "sige_kua_l")),
    allergen: str = typer.Option("mite", "--allergen"),
    weight_kg: str = typer.Option(None, "--weight-kg", help=_help("Body weight (kg).", "weight_kg")),
    eosinophils: str = typer.Option(
        None, "--eosinophils", help=_help("Blood eosinophils (cells/uL).", "eosinophils_cells_ul")
    ),
    feno: str = typer.Option(None, "--feno", help=_help("FeNO (ppb).", "feno_ppb")),
    perennial: bool = typer.Option(None, "--perennial-sensitization/--no-perennial-sensitization"),
    severity: str = typer.Option(None, "--severity", help="mild, moderate or severe."),
    asthma_control: str = typer.Option(
        None, "--asthma-control", help="controlled, partly-controlled, uncontrolled."
    ),
    ocs_dependent: bool = typer.Option(None, "--ocs-dependent/--no-ocs-dependent"),
    fev1_pct: str = typer.Option(None, "--fev1-pct", help=_help("FEV1 % predicted.", "fev1_pct_pred")),
    beta_blocker: bool = typer.Option(None, "--beta-blocker/--no-beta-blocker"),
    label: str = typer.Option(None, "--label", help="Free-text label for the printout."),
    as_json: bool = JSON,
) -> None:
    """Full pre-immunotherapy assessment: biomarkers, SR risk, omalizumab advice, biologic eligibility."""
    a = assess_patient(
        age_years=age,
        total_ige_iu_ml=total_ige,
        sige_kua_l=sige,
        allergen=allergen,
        weight_kg=weight_kg,
        eosinophils_cells_ul=eosinophils,
        feno_ppb=feno,
        perennial_sensitization=perennial,
        severity=severity,
        asthma_control=asthma_control,
        ocs_dependent=ocs_dependent,
        fev1_percent_predicted=fev1_pct,
        beta_blocker=beta_blocker,
        label=label,
    )
    emit(a, as_json, render_assessment)


# ---------------------------------------------------------------- demo tour
DEMO_PATIENTS: list[dict[str, Any]] = [
    {
        "label": "Example 1: low-risk adult (34 y, mite allergic asthma)",
        "age_years": "34",
        "total_ige_iu_ml": "250",
        "sige_kua_l": "2.1",
        "weight_kg": "70",
        "eosinophils_cells_ul": "180",
        "feno_ppb": "22",
        "perennial_sensitization": True,
        "severity": "moderate",
        "asthma_control": "controlled",
        "beta_blocker": False,
        "act": ["5", "4", "5", "4", "4"],
        "spirometry": {"sex": "female", "height_cm": "165", "fev1_l": "2.9"},
    },
    {
        "label": "Example 2: high-risk adolescent (14 y, mite allergic asthma)",
        "age_years": "14",
        "total_ige_iu_ml": "420",
        "sige_kua_l": "68",
        "weight_kg": "52",
        "eosinophils_cells_ul": "420",
        "feno_ppb": "48",
        "perennial_sensitization": True,
        "severity": "severe",
        "asthma_control": "partly-controlled",
        "beta_blocker": False,
        "act": ["4", "4", "3", "4", "3"],
        "spirometry": {"sex": "male", "height_cm": "165", "fev1_l": "2.5"},
    },
]


def _demo_patient(p: dict[str, Any]) -> tuple[PatientAssessment, Any, spiro.SpirometryResult]:
    """Spirometry first (its FEV1 % predicted feeds the risk cautions), then ACT and the assessment."""
    sp = spiro.spirometry(age=p["age_years"], **p["spirometry"])
    act = questionnaires.score("act", p["act"], age=p["age_years"])
    args = {k: v for k, v in p.items() if k not in ("act", "spirometry")}
    a = assess_patient(**args, fev1_percent_predicted=sp.measures["fev1"].percent_predicted)
    return a, act, sp


def demo_tour_cmd(as_json: bool = JSON) -> None:
    """Scripted tour: assess two example patients (low-risk adult, high-risk adolescent)."""
    tour = [_demo_patient(p) for p in DEMO_PATIENTS]
    if as_json:
        emit({"patients": [{"assessment": a, "act": act, "spirometry": sp} for a, act, sp in tour]}, True)
        return
    console.print("[bold]immunoplan demo tour[/bold]: two example patients before mite rush immunotherapy.")
    console.print("Every answer names the rule, data version, source and evidence status it came from.\n")
    for a, act, sp in tour:
        f = sp.measures["fev1"]
        render_assessment(
            a,
            extra=[
                ("ACT", f"{_fmt(act.score)} ({act.category}; MID {_fmt(act.mid)})"),
                (
                    f"FEV1 ({sp.equation})",
                    f"{_fmt(f.observed)} L = {_fmt(f.percent_predicted)} % predicted, z {_fmt(f.z)} "
                    f"(LLN {_fmt(f.lln)} L)",
                ),
            ],
        )
        console.print()
    console.print(
        "More: immunoplan risk --age 14 --total-ige 420 --sige 68 --json | immunoplan score act 4 4 3 4 3"
    )
    console.print(
        "      immunoplan spirometry --sex male --age 40 --height-cm 175 --fev1 3.0 | immunoplan --help"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("risk")(risk_cmd)
    app.command("eligibility")(eligibility_cmd)
    app.command("biomarkers")(biomarkers_cmd)
    app.command("score", context_settings=LOOSE)(score_cmd)
    app.command("score-response", context_settings=LOOSE)(score_response_cmd)
    app.command("spirometry")(spirometry_cmd)
    app.command("assess")(assess_cmd)
    app.command("demo-tour")(demo_tour_cmd)
