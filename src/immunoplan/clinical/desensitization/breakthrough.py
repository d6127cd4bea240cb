"""Re-planning after a breakthrough reaction during rapid drug desensitization (protocols.md section 1.7).

Options are data (reference file ``rdd_breakthrough``), each with its source and status. Only VERIFIED options
marked ``automatic`` are applied by default (severe -> stop; mild -> resume one or two steps back, Horizon
Health Network guideline). UNVERIFIED options (resume at the same step, add a step, add a bag) are offered as
clinician choices and computed only when chosen, with the choice recorded.

Today's resumption keeps the prepared bags: the repeated steps draw from the same bags, the last step still
runs at the final rate until the final bag is empty, so only repeats drawn from dilution bags add to the
target dose; that excess and each bag's volume budget are reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any

from immunoplan import reference
from immunoplan.clinical import vocabularies
from immunoplan.errors import InvalidInput
from immunoplan.reference import Basis
from immunoplan.validation import check_choice, check_range

from .plan import PRECISION, RddPlan, RddRequest, Step, _q, generate

DATA = "rdd_breakthrough"
SEVERITIES = vocabularies.BROWN_SEVERITIES  # grading_brown2004 grades, read by the rdd_breakthrough options


@dataclass(frozen=True)
class Option:
    id: str
    text: str
    today: bool
    automatic: bool
    applies: bool
    basis: Basis

    @property
    def clinician_choice_only(self) -> bool:
        return not self.basis.verified or not self.automatic


@dataclass
class Resumption:
    """Steps to run from the moment of resumption (minutes counted from resumption)."""

    option: str
    restart_at_step: int
    steps: list[Step]
    minutes: Decimal
    dose_given_before_mg: Decimal
    total_dose_mg: Decimal
    excess_over_target_mg: Decimal
    bag_volumes_used_ml: dict[int, Decimal]
    feasible: bool
    problems: list[str]


@dataclass
class Replan:
    reaction_step: int
    severity: str
    options: list[Option]
    applied: list[str]
    resumption: Resumption | None
    next_course: RddPlan | None
    chosen: str | None
    warnings: list[str] = field(default_factory=list)
    next_premedication: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reaction_step": self.reaction_step,
            "severity": self.severity,
            "options": [
                {
                    "id": o.id,
                    "text": o.text,
                    "today": o.today,
                    "applies": o.applies,
                    "applied": o.id in self.applied,
                    "clinician_choice_only": o.clinician_choice_only,
                    "basis": o.basis.to_dict(),
                }
                for o in self.options
            ],
            "applied": self.applied,
            "chosen": self.chosen,
            "resumption": self.resumption,
            "next_course": self.next_course.to_dict() if self.next_course else None,
            "next_premedication": self.next_premedication,
            "warnings": self.warnings,
        }


def options_for(severity: str, step: int, plan: RddPlan) -> list[Option]:
    """Every documented option with whether it applies to this reaction."""
    in_final_bag = plan.steps[step - 1].bag == len(plan.bags)
    out = []
    for o in reference.load(DATA)["options"]:
        applies = severity in o["when"].split(",")
        if o["id"] == "slow-final-step":
            applies = applies and in_final_bag
        if o["id"] == "next-add-bag":
            applies = applies and len(plan.bags) == 3
        automatic = o["automatic"] and severity in o.get("automatic_for", o["when"]).split(",")
        out.append(
            Option(
                o["id"],
                o["text"],
                o["today"],
                automatic,
                applies,
                reference.basis(DATA, o["id"], status=o["status"], source=o["source"]),
            )
        )
    return out


def replan(
    plan: RddPlan,
    *,
    reaction_step: int,
    severity: str,
    minutes_into_step: Decimal | None = None,
    symptoms: tuple[str, ...] = (),
    steps_back: int = 1,
    chosen: str | None = None,
) -> Replan:
    """Options and, where one applies, the resumed steps for today and the next-course plan."""
    check_choice("severity", severity, SEVERITIES)
    check_range("reaction_step", reaction_step, 1, len(plan.steps))
    check_range("steps_back", steps_back, 1, 2)
    step = plan.steps[reaction_step - 1]
    if minutes_into_step is not None:
        check_range("minutes_into_step", minutes_into_step, 0, step.minutes, unit="min")
    options = options_for(severity, reaction_step, plan)
    by_id = {o.id: o for o in options}
    if chosen is not None:
        check_choice("chosen", chosen, [o.id for o in options])
        if not by_id[chosen].applies:
            raise InvalidInput(
                "chosen",
                f"option {chosen!r} does not apply to a {severity} reaction here",
                ", ".join(o.id for o in options if o.applies),
            )
    applied = [o.id for o in options if o.applies and o.automatic and o.basis.verified]
    warnings: list[str] = []
    if chosen and chosen not in applied:
        applied.append(chosen)
        if not by_id[chosen].basis.verified:
            warnings.append(
                f"Clinician choice recorded: {chosen!r} is UNVERIFIED ({by_id[chosen].basis.source})."
            )
    if not symptoms:
        warnings.append(
            "Record the symptoms: next-course premedication depends on them (flushing, respiratory)."
        )
    if minutes_into_step is None:
        warnings.append("Minutes into the reaction step not given: the whole step is counted as given.")

    today_choices = ("resume-same-step", "resume-steps-back", "slow-final-step")
    if chosen in today_choices:
        applied = [a for a in applied if a not in today_choices or a == chosen]
    resumption = None
    wants_resume = chosen in today_choices or (chosen is None and "resume-steps-back" in applied)
    if wants_resume and reaction_step == len(plan.steps) and minutes_into_step is None:
        raise InvalidInput(
            "minutes_into_step",
            "required to resume after a reaction during the final step",
            f"0 to {step.minutes} min",
        )
    if severity != "severe" or chosen in ("resume-same-step", "resume-steps-back", "slow-final-step"):
        if "slow-final-step" in applied and chosen == "slow-final-step":
            factor = Decimal(
                next(o for o in reference.load(DATA)["options"] if o["id"] == "slow-final-step")[
                    "rate_factor"
                ]
            )
            resumption = resume(
                plan, reaction_step, 0, minutes_into_step, final_rate_factor=factor, option="slow-final-step"
            )
        elif chosen == "resume-same-step":
            resumption = resume(plan, reaction_step, 0, minutes_into_step, option="resume-same-step")
        elif "resume-steps-back" in applied:
            resumption = resume(
                plan, reaction_step, steps_back, minutes_into_step, option="resume-steps-back"
            )
    next_course = None
    if chosen == "next-add-step":
        next_course = plan_with_added_step(plan, reaction_step)
    elif chosen == "next-add-bag":
        next_course = plan_with_added_bag(plan)
    return Replan(
        reaction_step,
        severity,
        options,
        applied,
        resumption,
        next_course,
        chosen,
        warnings,
        next_premedication_for(symptoms),
    )


RESPIRATORY = {
    "wheeze",
    "dyspnea",
    "lower_airway_cough",
    "chest_tightness",
    "throat_tightness",
    "stridor",
    "respiratory",
}


def next_premedication_for(symptoms: tuple[str, ...]) -> list[dict[str, Any]]:
    """Symptom-driven premedication for the next course (UpToDate platinum worksheet: aspirin if flushing,
    montelukast if respiratory symptoms)."""
    from .premedication import PREMED

    reg = next(r for r in reference.load(PREMED)["regimens"] if r["id"] == "uptodate-platinum")
    out: list[dict[str, Any]] = []
    keys = ["flushing"] if "flushing" in symptoms else []
    if set(symptoms) & RESPIRATORY:
        keys.append("respiratory")
    for k in keys:
        out += [dict(i, reason=f"reaction included {k}", source=reg["source"]) for i in reg["if_symptoms"][k]]
    return out


def resume(
    plan: RddPlan,
    reaction_step: int,
    steps_back: int,
    minutes_into_step: Decimal | None,
    *,
    final_rate_factor: Decimal = Decimal(1),
    option: str,
) -> Resumption:
    """Steps from ``reaction_step - steps_back`` to the end, drawing from the bags already prepared."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        s = plan.steps[reaction_step - 1]
        fraction = Decimal(1) if minutes_into_step is None else minutes_into_step / s.minutes
        used: dict[int, Decimal] = {b.bag: Decimal(0) for b in plan.bags}
        drawn_mg: dict[int, Decimal] = {b.bag: Decimal(0) for b in plan.bags}
        conc = {b.bag: b.concentration_mg_ml for b in plan.bags}
        for p in plan.steps[: reaction_step - 1]:
            used[p.bag] += p.volume_ml
            drawn_mg[p.bag] += p.dose_mg
        partial_ml = _q(s.volume_ml * fraction)
        used[s.bag] += partial_ml
        drawn_mg[s.bag] += _q(partial_ml * conc[s.bag])
        given = sum(drawn_mg.values(), Decimal(0))
        final_bag = plan.bags[-1]
        last = plan.steps[-1]
        restart = max(1, reaction_step - steps_back)
        out: list[Step] = []
        t = Decimal(0)
        total = given
        problems: list[str] = []
        for p in plan.steps[restart - 1 :]:
            if p is last:
                rate = p.rate_ml_h * final_rate_factor
                vol = final_bag.volume_ml - used[p.bag]
                if vol <= 0:
                    problems.append("the final bag would be empty before the final step")
                    vol = Decimal(0)
                minutes = _q(vol * 60 / rate)
                dose = final_bag.mg_in_bag - drawn_mg[p.bag] if vol > 0 else Decimal(0)  # the rest of the bag
            else:
                rate, minutes, vol, dose = p.rate_ml_h, p.minutes, p.volume_ml, p.dose_mg
            used[p.bag] += vol
            drawn_mg[p.bag] += dose
            total += dose
            out.append(Step(len(out) + 1, p.bag, rate, minutes, vol, dose, total, t, t + minutes))
            t += minutes
        for b in plan.bags:
            if used[b.bag] > b.volume_ml:
                problems.append(
                    f"bag {b.bag} would need {used[b.bag]:.3f} mL of its {b.volume_ml} mL: prepare a new bag"
                )
        return Resumption(
            option, restart, out, t, given, total, total - plan.target_mg, used, not problems, problems
        )


def _request(plan: RddPlan) -> RddRequest:
    if plan.request is None:
        raise InvalidInput("plan", "the plan has no request to re-plan from", "a plan made by generate()")
    return plan.request


def plan_with_added_step(plan: RddPlan, reaction_step: int) -> RddPlan:
    """Next course: one extra step before ``reaction_step`` repeating the preceding rate of the same bag
    (or the reaction step's own rate if it opens its bag).
    UNVERIFIED: the added-step rate is not published."""
    req = _request(plan)
    rows: list[list[Decimal]] = [[] for _ in plan.bags]
    for p in plan.steps:
        if p.step == reaction_step:
            prev = plan.steps[p.step - 2] if p.step > 1 and plan.steps[p.step - 2].bag == p.bag else p
            rows[p.bag - 1].append(prev.rate_ml_h)
        rows[p.bag - 1].append(p.rate_ml_h)
    new = RddRequest(
        req.drug,
        req.target_mg,
        req.bag_volume_ml,
        req.final_rate_ml_h,
        len(rows),
        req.dilution_bag_volume_ml,
        req.step_minutes,
        False,
        tuple(tuple(r) for r in rows),
        req.start,
        req.override_reason,
    )
    out = generate(new)
    out.basis.append(
        reference.basis(
            DATA,
            "next-add-step",
            status="UNVERIFIED",
            source="MGB worksheet 'Add a step before'; added-step rate not published",
        )
    )
    out.warnings.append(f"Clinician choice: one step added before step {reaction_step} (UNVERIFIED).")
    return out


def plan_with_added_bag(plan: RddPlan) -> RddPlan:
    """Next course: the 4-bag 16-step scheme with the same target, volumes, final rate (UNVERIFIED)."""
    req = _request(plan)
    new = RddRequest(
        req.drug,
        req.target_mg,
        req.bag_volume_ml,
        req.final_rate_ml_h,
        4,
        req.dilution_bag_volume_ml,
        req.step_minutes,
        req.first_rate_variant,
        None,
        req.start,
        req.override_reason,
    )
    return generate(new)
