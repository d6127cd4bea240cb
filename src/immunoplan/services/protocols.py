"""Use cases for treatment protocols, shared by the CLI, the web app and the registry.

Every function takes plain user values (strings or numbers, as typed in a form or on the command line),
validates them (raising `immunoplan.errors.InvalidInput` naming the field), calls the pure clinical core and
returns a result object with ``to_dict()`` that echoes the inputs and the basis (table, rule, version, source,
status) of every number.

- `plan_desensitization`  -- rapid drug desensitization plan (+ preparation, premedication, bedside checklist)
- `replan_desensitization` -- options after a breakthrough reaction at a given step
- `plan_scit_schedule`     -- dated SCIT up-dosing and maintenance calendar (optionally with omalizumab)
- `scit_next_dose`         -- next SCIT dose from a course history (rules engine)
- `plan_oit`               -- OIT up-dosing calendar with omalizumab cover and taper
- `grade_reaction`         -- grade a reaction on a named scale
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from immunoplan.clinical import desensitization as rdd
from immunoplan.clinical import vocabularies
from immunoplan.clinical.desensitization import breakthrough, drug_data
from immunoplan.clinical.desensitization.premedication import bedside_checklist, premedication
from immunoplan.errors import InvalidInput
from immunoplan.reference import limits
from immunoplan.validation import check_choice, check_range, to_decimal

# ----------------------------------------------------------------------------------------------- helpers


def parse_start(value: str | datetime | time | None) -> datetime | time | None:
    """Parse ``09:00`` (a time of day) or ``2026-11-21T09:00`` (a datetime)."""
    if value is None or value == "":
        return None
    if isinstance(value, (datetime, time)):
        return value
    text = str(value).strip()
    try:
        if "T" in text or " " in text or len(text) > 8:
            return datetime.fromisoformat(text)
        return time.fromisoformat(text)
    except ValueError:
        raise InvalidInput("start", f"cannot read {value!r} as a time", "HH:MM or YYYY-MM-DDTHH:MM") from None


def parse_date(field_name: str, value: str | date) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise InvalidInput(field_name, f"cannot read {value!r} as a date", "YYYY-MM-DD") from None


def _opt_decimal(field_name: str, value: Any) -> Decimal | None:
    return None if value is None or value == "" else to_decimal(field_name, value)


# ------------------------------------------------------------------------------------- desensitization


@dataclass
class DesensitizationResult:
    """A plan with its optional measurable preparation, premedication and the bedside checklist."""

    plan: rdd.RddPlan
    preparation: rdd.Preparation | None = None
    premedication: Any = None
    checklist: dict[str, Any] = field(default_factory=bedside_checklist)
    drug_preparation: drug_data.DrugPreparation | None = None
    concentration_checks: list[drug_data.ConcentrationCheck] = field(default_factory=list)
    rounding_flags: list[drug_data.RoundingFlag] = field(default_factory=list)
    dose_plausibility: drug_data.DosePlausibility | None = None
    dose_confirmation: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = self.plan.to_dict()
        d["preparation"] = self.preparation.to_dict() if self.preparation else None
        d["premedication"] = self.premedication.to_dict() if self.premedication else None
        d["checklist"] = self.checklist
        d["drug_preparation"] = self.drug_preparation.to_dict() if self.drug_preparation else None
        d["concentration_checks"] = self.concentration_checks
        d["dose_rounding_flags"] = self.rounding_flags
        threshold, basis = drug_data.rounding_threshold()
        d["dose_rounding_threshold"] = {"value_pct": threshold, "basis": basis.to_dict()}
        d["dose_plausibility"] = self.dose_plausibility.to_dict() if self.dose_plausibility else None
        d["dose_confirmation"] = self.dose_confirmation
        return d


def plan_desensitization(
    *,
    drug: str,
    dose_mg: Any,
    bag_volume_ml: Any,
    final_rate_ml_h: Any,
    bags: int = 3,
    dilution_bag_volume_ml: Any = None,
    step_minutes: Any = None,
    first_rate_variant: bool = False,
    rates: str | None = None,
    start: str | datetime | None = None,
    stock_mg_ml: Any = None,
    premedication_regimen: str | None = None,
    initial_symptoms: tuple[str, ...] = (),
    override_reason: str | None = None,
    weight_kg: Any = None,
    height_cm: Any = None,
    dose_confirmation: str | None = None,
) -> DesensitizationResult:
    """Plan a rapid drug desensitization (protocols.md section 1.2; reference file ``rdd_protocols``).

    The target is checked against the drug's usual dose ranges (``rdd_drug_preparation``; per m2 with the
    BSA from ``height_cm``/``weight_kg``): a sourced "outside" is refused (`InvalidInput` naming ``dose_mg``)
    unless ``dose_confirmation`` gives a reason, recorded in the result; a range that cannot be computed is a
    warning. The diluent, each bag's concentration against the label's limits, the stability and the
    drawn-volume roundings above the threshold are added to the result and its warnings."""
    if not drug or not str(drug).strip():
        raise InvalidInput("drug", "must not be empty", "a drug name")
    target = limits.check("desensitization_dose_mg", dose_mg, "dose_mg")
    req = rdd.RddRequest(
        drug=str(drug).strip(),
        target_mg=target,
        bag_volume_ml=to_decimal("bag_volume_ml", bag_volume_ml),
        final_rate_ml_h=to_decimal("final_rate_ml_h", final_rate_ml_h),
        bags=int(bags),
        dilution_bag_volume_ml=_opt_decimal("dilution_bag_volume_ml", dilution_bag_volume_ml),
        step_minutes=_opt_decimal("step_minutes", step_minutes),
        first_rate_variant=bool(first_rate_variant),
        rates_ml_h=rdd.parse_rates("rates", rates) if rates else None,
        start=parse_start(start),
        override_reason=override_reason,
    )
    confirmation = dose_confirmation.strip() if dose_confirmation and dose_confirmation.strip() else None
    plausibility = drug_data.dose_plausibility(req.drug, target, weight_kg=weight_kg, height_cm=height_cm)
    plausibility_warning = drug_data.require_confirmation(plausibility, confirmation)
    plan = rdd.generate(req)
    stock = _opt_decimal("stock_mg_ml", stock_mg_ml)
    prep = rdd.prepare(plan, stock) if stock is not None else None
    premed = premedication(premedication_regimen, tuple(initial_symptoms)) if premedication_regimen else None
    drug_prep = drug_data.drug_preparation(req.drug)
    checks = drug_data.concentration_checks(drug_prep, plan.bags)
    flags = drug_data.dose_rounding_flags(prep) if prep is not None else []
    warnings = [w for w in (plausibility_warning, drug_prep.message) if w]
    warnings += [c.message for c in checks if c.message]
    warnings += [f.message for f in flags]
    stability = drug_data.stability_warning(drug_prep, plan.total_minutes)
    if stability:
        warnings.append(stability)
    plan.warnings.extend(warnings)
    return DesensitizationResult(
        plan, prep, premed, bedside_checklist(), drug_prep, checks, flags, plausibility, confirmation
    )


def replan_desensitization(
    result_or_plan: DesensitizationResult | rdd.RddPlan,
    *,
    reaction_step: int,
    severity: str,
    minutes_into_step: Any = None,
    symptoms: tuple[str, ...] = (),
    steps_back: int = 1,
    chosen: str | None = None,
) -> breakthrough.Replan:
    """Options after a breakthrough reaction at ``reaction_step`` (protocols.md section 1.7)."""
    plan = result_or_plan.plan if isinstance(result_or_plan, DesensitizationResult) else result_or_plan
    return breakthrough.replan(
        plan,
        reaction_step=reaction_step,
        severity=severity,
        minutes_into_step=_opt_decimal("minutes_into_step", minutes_into_step),
        symptoms=tuple(symptoms),
        steps_back=steps_back,
        chosen=chosen,
    )


# ------------------------------------------------------------------------------------------- reactions


@dataclass
class GradingResult:
    findings: Any
    grades: list[Any]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "findings": self.findings.to_dict(),
            "grades": [g.to_dict() for g in self.grades],
        }
        if len(self.grades) == 1:
            out.update(self.grades[0].to_dict())
        return out


def make_findings(
    *,
    symptoms: tuple[str, ...] | list[str] = (),
    bronchodilator_response: str | None = None,
    pef_drop_pct: Any = None,
    epinephrine_minutes: Any = None,
    onset_minutes: Any = None,
    first_symptom: str | None = None,
    treatments: tuple[str, ...] | list[str] = (),
    intervention: str | None = None,
    infusion_interrupted: bool = False,
    prompt_response: bool | None = None,
    recurrence: bool = False,
    hospitalization: bool = False,
    life_threatening: bool = False,
    persistent: bool = False,
    death: bool = False,
    vasovagal: bool = False,
    biomarkers: tuple[str, ...] | list[str] = (),
    complement_prone_drug: bool = False,
    sbp_mmhg: Any = None,
    spo2_pct: Any = None,
    heart_rate_bpm: Any = None,
) -> Any:
    """Validated `Findings` from plain values (symptom codes: reference file ``grading_symptoms``)."""
    from immunoplan.clinical.reactions import Findings

    return Findings(
        symptoms=frozenset(symptoms),
        bronchodilator_response=bronchodilator_response or None,
        pef_drop_pct=_opt_decimal("pef_drop_pct", pef_drop_pct),
        epinephrine_minutes=_opt_decimal("epinephrine_minutes", epinephrine_minutes),
        onset_minutes=_opt_decimal("onset_minutes", onset_minutes),
        first_symptom=first_symptom or None,
        treatments=frozenset(treatments),
        intervention=intervention or None,
        infusion_interrupted=infusion_interrupted,
        prompt_response=prompt_response,
        recurrence=recurrence,
        hospitalization=hospitalization,
        life_threatening=life_threatening,
        persistent=persistent,
        death=death,
        vasovagal=vasovagal,
        biomarkers=frozenset(biomarkers),
        complement_prone_drug=complement_prone_drug,
        sbp_mmhg=_opt_decimal("sbp_mmhg", sbp_mmhg),
        spo2_pct=_opt_decimal("spo2_pct", spo2_pct),
        heart_rate_bpm=_opt_decimal("heart_rate_bpm", heart_rate_bpm),
    )


def grade_reaction(scale: str, **findings: Any) -> GradingResult:
    """Grade one reaction on ``scale`` (or ``all``): WAO 2010/2017, Brown 2004, CTCAE, seed 001, phenotype."""
    from immunoplan.clinical.reactions import SCALES, grade

    f = make_findings(**findings)
    if scale == "all":
        return GradingResult(f, [grade(s, f) for s in SCALES])
    return GradingResult(f, [grade(scale, f)])


# ------------------------------------------------------------------------------------------------ SCIT


@dataclass
class ScitScheduleResult:
    schedule: Any
    omalizumab: Any = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = self.schedule.to_dict()
        d["omalizumab"] = self.omalizumab
        d["warnings"] = d["warnings"] + self.warnings
        return d


def plan_scit_schedule(
    *,
    product: str,
    regimen: str,
    start: str | date,
    maintenance_interval_weeks: Any = None,
    maintenance_visits: Any = 3,
    start_time: str | None = None,
    omalizumab: str | None = None,
    omalizumab_lead_weeks: Any = None,
    age_years: Any = None,
    weight_kg: Any = None,
    total_ige_iu_ml: Any = None,
    indication: str = "asthma",
    region: str = "us",
    omalizumab_override_reason: str | None = None,
) -> ScitScheduleResult:
    """Dated SCIT calendar (protocols.md 2.1-2.3, 2.7), optionally joined by omalizumab visits."""
    from immunoplan.clinical.immunotherapy import build_schedule

    day = parse_date("start", start)
    st = parse_start(start_time) if start_time else None
    t = st.time() if isinstance(st, datetime) else st
    mi = (
        None
        if maintenance_interval_weeks in (None, "")
        else _int("maintenance_interval_weeks", maintenance_interval_weeks)
    )
    sched = build_schedule(
        product,
        regimen,
        day,
        maintenance_interval_weeks=mi,
        maintenance_visits=_int("maintenance_visits", maintenance_visits),
        start_time=t,
    )
    result = ScitScheduleResult(sched)
    if omalizumab and omalizumab != "none":
        _join_omalizumab(
            result,
            mode=omalizumab,
            lead_weeks=omalizumab_lead_weeks,
            age_years=age_years,
            weight_kg=weight_kg,
            total_ige_iu_ml=total_ige_iu_ml,
            indication=indication,
            region=region,
            override_reason=omalizumab_override_reason,
        )
    return result


OMALIZUMAB_MODES = vocabularies.OMALIZUMAB_ADJUVANT_MODES


def _join_omalizumab(
    result: ScitScheduleResult,
    *,
    mode: str,
    lead_weeks: Any,
    age_years: Any,
    weight_kg: Any,
    total_ige_iu_ml: Any,
    indication: str,
    region: str,
    override_reason: str | None,
) -> None:
    """Add omalizumab administrations (label-table dose and interval from the omalizumab service) to the
    SCIT calendar: ``concurrent`` starts with SCIT (seed 001: 'initiated simultaneously with AIT');
    ``pre`` starts ``lead_weeks`` before SCIT (seed 000: omalizumab-pretreated RIT; the lead time is not
    published there, so the clinician must enter it)."""
    check_choice("omalizumab", mode, OMALIZUMAB_MODES)
    try:
        from immunoplan.services.omalizumab import label_dose
    except ImportError:  # pragma: no cover - depends on the omalizumab issue having landed
        raise InvalidInput(
            "omalizumab", "the omalizumab service is not installed", "omit --omalizumab"
        ) from None
    for name, value in (
        ("age_years", age_years),
        ("weight_kg", weight_kg),
        ("total_ige_iu_ml", total_ige_iu_ml),
    ):
        if value in (None, ""):
            raise InvalidInput(name, "needed for the omalizumab label dose", "a number")
    lead = 0
    if mode == "pre":
        if lead_weeks in (None, ""):
            raise InvalidInput(
                "omalizumab_lead_weeks",
                "pre-treatment needs the lead time in weeks (not "
                "published in seed 000: the clinician sets it)",
                limits.limit("omalizumab_lead_weeks").accepted,
            )
        lead = int(limits.check("omalizumab_lead_weeks", lead_weeks))
    dose = label_dose(
        indication, region, age_years, weight_kg, total_ige_iu_ml, override_reason=override_reason
    )
    dd = dose.to_dict()
    sched = result.schedule
    info: dict[str, Any] = {"mode": mode, "lead_weeks": lead, "label_dose": dd, "administrations": []}
    result.omalizumab = info
    if dd["status"] != "dose" or not dd["interval_weeks"] or not sched.visits:
        result.warnings.append(
            f"Omalizumab not scheduled: label lookup answered {dd['status']!r} ({dd['reason']})."
        )
        return
    from datetime import timedelta

    first = sched.start - timedelta(weeks=lead)
    last = sched.visits[-1].date
    day, n = first, 0
    while day <= last:
        n += 1
        info["administrations"].append(
            {
                "n": n,
                "date": day,
                "dose_mg": dd["dose_mg"],
                "injections": dd["injections"],
                "same_day_as_scit": any(v.date == day for v in sched.visits),
            }
        )
        day += timedelta(weeks=int(dd["interval_weeks"]))
    result.warnings.append(
        f"Omalizumab {mode}: {dd['dose_mg']} mg every {dd['interval_weeks']} weeks from {first} "
        f"(label table; basis {dd['basis']['id'] if dd['basis'] else '-'}). "
        "Combination with SCIT is off-label; "
        "seed 000: benefit in high-risk patients (sIgE grade 3-6, sIgE/total IgE >= 10%)."
    )


def _int(field_name: str, value: Any) -> int:
    d = to_decimal(field_name, value)
    if d != d.to_integral_value():
        raise InvalidInput(field_name, f"must be a whole number, got {value!r}", "an integer")
    return int(d)


def _product_unit(product_id: str) -> str | None:
    from immunoplan.clinical.immunotherapy.catalogue import product

    try:
        return str(product(product_id)["unit"])
    except InvalidInput:
        return None  # an unknown product is refused later, with the list of products


def load_history(data: dict[str, Any]) -> tuple[str, str, list[Any], str | None]:
    """Parse a course history object: ``{"product", "regimen", "ruleset"?, "injections": [...]}``.

    Each injection: ``date``, and ``dose`` (product units) or ``vial`` + ``volume_ml``; optional
    ``local_reaction`` (none | up-to-quarter | larger-than-quarter) and ``systemic_reaction``
    (``{"scale": "wao2017", "grade": "2"}`` or ``{"scale": "seed001", "grade": "mild"}``).
    """
    from immunoplan.clinical.immunotherapy import GivenInjection, dose_of

    if not isinstance(data, dict):
        raise InvalidInput("history", "must be a JSON object", '{"product": ..., "injections": [...]}')
    product_id = data.get("product")
    regimen_id = data.get("regimen")
    if not product_id or not regimen_id:
        raise InvalidInput(
            "history", "needs 'product' and 'regimen'", "alutard-sq-hdm / conventional|cluster"
        )
    items = data.get("injections")
    if not isinstance(items, list) or not items:
        raise InvalidInput(
            "history.injections", "must be a non-empty list", "[{date, dose | vial+volume_ml}]"
        )
    out = []
    for i, it in enumerate(items):
        f = f"history.injections[{i}]"
        if not isinstance(it, dict) or "date" not in it:
            raise InvalidInput(f, "needs a date", "{date, dose | vial + volume_ml}")
        when = parse_date(f"{f}.date", it["date"])
        if "dose" in it:
            units = to_decimal(f"{f}.dose", it["dose"])
        elif "vial" in it and "volume_ml" in it:
            volume = limits.check("dose_ml", it["volume_ml"], f"{f}.volume_ml")
            units = dose_of(product_id, _int(f"{f}.vial", it["vial"]), volume).units
        else:
            raise InvalidInput(f, "needs 'dose' or 'vial' + 'volume_ml'", "dose in product units")
        if _product_unit(str(product_id)) == "SQ-U":
            limits.check("dose_sq_u", units, f"{f}.dose")
        else:  # other product units have no field limit of their own: positive
            check_range(f"{f}.dose", units, 0, None, low_inclusive=False)
        sr = it.get("systemic_reaction") or {}
        if sr and not isinstance(sr, dict):
            raise InvalidInput(f"{f}.systemic_reaction", "must be an object", '{"scale": ..., "grade": ...}')
        out.append(
            GivenInjection(
                when,
                units,
                str(it.get("local_reaction", "none")),
                sr.get("scale"),
                None if not sr else str(sr.get("grade")),
            )
        )
    rs = data.get("ruleset")
    return str(product_id), str(regimen_id), out, None if rs in (None, "") else str(rs)


def scit_next_dose(
    history: dict[str, Any], on: str | date, *, ruleset: str | None = None, new_vial: bool = False
) -> Any:
    """Next SCIT dose from a course history (rules engine; reference file ``scit_adjustment``)."""
    from immunoplan.clinical.immunotherapy import next_dose

    product_id, regimen_id, injections, rs = load_history(history)
    return next_dose(
        product_id, regimen_id, injections, parse_date("date", on), ruleset=ruleset or rs, new_vial=new_vial
    )


# ------------------------------------------------------------------------------------------------- OIT


def plan_oit(
    *,
    regimen: str,
    omalizumab_start: str | date,
    doses_mg: str | list[Any] | None = None,
    weight_kg: Any = None,
    arm_mg_per_kg_month: Any = None,
    pretreatment_weeks: Any = None,
) -> Any:
    """OIT up-dosing calendar under omalizumab cover (protocols.md section 3). ``doses_mg`` as a list or a
    comma-separated string of the clinician's up-dosing doses."""
    from immunoplan.clinical.oit import plan_oit as core

    doses = None
    if doses_mg:
        items = doses_mg.split(",") if isinstance(doses_mg, str) else list(doses_mg)
        doses = [to_decimal("doses_mg", str(x).strip()) for x in items if str(x).strip()]
    return core(
        regimen,
        parse_date("omalizumab_start", omalizumab_start),
        doses_mg=doses,
        weight_kg=_opt_decimal("weight_kg", weight_kg),
        arm_mg_per_kg_month=_opt_decimal("arm_mg_per_kg_month", arm_mg_per_kg_month),
        pretreatment_weeks=None
        if pretreatment_weeks in (None, "")
        else _int("pretreatment_weeks", pretreatment_weeks),
    )


# --------------------------------------------------------------------------------------------- choices


def choices() -> dict[str, Any]:
    """Every accepted value for the protocol forms (products, regimens, premedications, scales, codes)."""
    from immunoplan import reference
    from immunoplan.clinical.desensitization.breakthrough import SEVERITIES
    from immunoplan.clinical.desensitization.premedication import regimen_ids
    from immunoplan.clinical.immunotherapy import LOCAL, RULESETS
    from immunoplan.clinical.oit import regimen_ids as oit_regimens
    from immunoplan.clinical.reactions import (
        BIOMARKERS,
        BRONCHODILATOR,
        INTERVENTIONS,
        SCALES,
        TREATMENTS,
        symptom_codes,
    )

    products = reference.load("scit_products")["products"]
    return {
        "rdd_bags": [1, 2, 3, 4],
        "rdd_premedication": regimen_ids(),
        "rdd_severity": list(SEVERITIES),
        "rdd_options": [o["id"] for o in reference.load("rdd_breakthrough")["options"]],
        "scit_products": {
            k: {"name": v["name"], "regimens": {r: x["status"] for r, x in v["regimens"].items()}}
            for k, v in products.items()
        },
        "scit_rulesets": list(RULESETS),
        "scit_local_reactions": list(LOCAL),
        "scit_omalizumab": ["none", *OMALIZUMAB_MODES],
        "oit_regimens": oit_regimens(),
        "grading_scales": [*SCALES, "all"],
        "symptoms": symptom_codes(),
        "treatments": list(TREATMENTS),
        "interventions": list(INTERVENTIONS),
        "bronchodilator_responses": list(BRONCHODILATOR),
        "biomarkers": list(BIOMARKERS),
    }
