"""Dated omalizumab plans: label maintenance, pre-treatment before rush/cluster immunotherapy, concurrent with
SCIT, adjuvant to drug desensitization (seed 004) and weight-based off-label OIT regimens.

Every regimen number comes from reference/data/omalizumab_regimens.json (with its source):
- Casale 2006: 9 weeks before a 1-day rush, 12 weeks after; AAAAI expert opinion: 8-16 weeks before cluster;
- seed 001: label dose from day 1 of SCIT, 48 weeks;
- seed 004: 2 x 300 mg before desensitization, every 2-3 weeks while breakthrough reactions persist, every
  4 weeks once tolerated;
- Langlois 2020: 8 or 16 mg/kg/month, 12 weeks full dose, 50 % for 4 weeks, 25 % for 4 weeks.
Label doses come from `tables.lookup_dose`; off-label plans say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from immunoplan import reference
from immunoplan.clinical.omalizumab.injections import split_injections
from immunoplan.clinical.omalizumab.tables import DoseResult, ResultKind
from immunoplan.errors import InvalidInput
from immunoplan.reference import Basis, limits
from immunoplan.validation import check_choice, check_range, to_decimal

KINDS = ("maintenance", "pretreatment", "concurrent-scit", "desensitization", "oit")


@dataclass(frozen=True)
class Administration:
    """One omalizumab administration on ``date``."""

    date: date
    dose_mg: Decimal
    injections: list[int]
    phase: str
    rationale: str
    off_label: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "date": self.date,
            "dose_mg": self.dose_mg,
            "injections": self.injections,
            "injection_sites": len(self.injections),
            "phase": self.phase,
            "rationale": self.rationale,
            "off_label": self.off_label,
        }


@dataclass(frozen=True)
class Milestone:
    """A non-omalizumab event on the same calendar (first allergen dose, desensitization, assessment)."""

    date: date
    label: str

    def to_dict(self) -> dict[str, Any]:
        return {"date": self.date, "label": self.label}


@dataclass
class Schedule:
    kind: str
    status: str  # "planned", or the label-lookup result kind when no dose could be planned
    off_label: bool
    administrations: list[Administration] = field(default_factory=list)
    milestones: list[Milestone] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    basis: list[Basis] = field(default_factory=list)
    dose: DoseResult | None = None
    inputs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "status": self.status,
            "off_label": self.off_label,
            "administrations": [a.to_dict() for a in self.administrations],
            "milestones": [m.to_dict() for m in self.milestones],
            "warnings": self.warnings,
            "basis": [b.to_dict() for b in self.basis],
            "label_dose": self.dose.to_dict() if self.dose else None,
            "inputs": self.inputs,
        }


def _num(d: Decimal) -> str:
    """Decimal without trailing zeros or exponent (480.0 -> 480, 4.00 -> 4)."""
    return format(d.normalize(), "f")


def _regimens() -> dict[str, Any]:
    return reference.load("omalizumab_regimens")


def _rule_basis(key: str) -> Basis:
    r = _regimens()[key]
    return reference.basis("omalizumab_regimens", rule=key, status=r["status"], source=r["source"])


def _weeks(field_name: str, value: Any, low: int = 0, high: int = 520) -> int:
    v = check_range(field_name, to_decimal(field_name, value), low, high, unit="weeks")
    if v != v.to_integral_value():
        raise InvalidInput(field_name, "must be a whole number of weeks")
    return int(v)


def _no_dose(kind: str, dose: DoseResult, inputs: dict[str, Any]) -> Schedule | None:
    if dose.status is ResultKind.DOSE:
        return None
    return Schedule(
        kind,
        dose.status.value,
        False,
        warnings=[f"no label dose: {dose.reason}", *dose.warnings],
        basis=[dose.basis] if dose.basis else [],
        dose=dose,
        inputs=inputs,
    )


def _label_admin(day: date, dose: DoseResult, phase: str, rationale: str) -> Administration:
    assert dose.dose_mg is not None
    return Administration(day, dose.dose_mg, list(dose.injections), phase, rationale)


def _every(start: date, interval_weeks: int, until: date, inclusive: bool = False) -> list[date]:
    out, d = [], start
    while d < until or (inclusive and d == until):
        out.append(d)
        d += timedelta(weeks=interval_weeks)
    return out


def maintenance(start: date, dose: DoseResult, weeks: Any = 48) -> Schedule:
    """Label maintenance: the table dose every table interval from ``start`` for ``weeks`` weeks."""
    n_weeks = _weeks("weeks", weeks, 1)
    inputs = {"start": start, "weeks": n_weeks}
    if (s := _no_dose("maintenance", dose, inputs)) is not None:
        return s
    assert dose.interval_weeks is not None
    rationale = f"label table cell {dose.cell} -> {dose.dose_mg} mg every {dose.interval_weeks} weeks"
    admins = [
        _label_admin(d, dose, "maintenance", rationale)
        for d in _every(start, dose.interval_weeks, start + timedelta(weeks=n_weeks))
    ]
    return Schedule(
        "maintenance",
        "planned",
        False,
        admins,
        warnings=list(dose.warnings),
        basis=[dose.basis] if dose.basis else [],
        dose=dose,
        inputs=inputs,
    )


def pretreatment(
    first_allergen_dose: date,
    protocol: str,
    dose: DoseResult,
    weeks_before: Any = None,
    continue_weeks: Any = None,
) -> Schedule:
    """Omalizumab before a rush or cluster build-up: label dose from ``weeks_before`` weeks before the first
    allergen dose and for ``continue_weeks`` weeks after it (defaults: rush 9 + 12 weeks, Casale 2006;
    cluster 8 + 12 weeks, AAAAI expert opinion 8-16 weeks)."""
    protocol = check_choice("protocol", protocol, ("rush", "cluster"))
    key = f"pretreatment_before_{protocol}"
    rule = _regimens()[key]
    wb = int(
        limits.check(
            "omalizumab_lead_weeks",
            rule["weeks_before_first_allergen_dose"] if weeks_before is None else weeks_before,
            "weeks_before",
        )
    )
    cw = _weeks(
        "continue_weeks",
        rule["continue_weeks_after_first_allergen_dose"] if continue_weeks is None else continue_weeks,
        0,
        260,
    )
    inputs = {
        "first_allergen_dose": first_allergen_dose,
        "protocol": protocol,
        "weeks_before": wb,
        "continue_weeks": cw,
    }
    if (s := _no_dose("pretreatment", dose, inputs)) is not None:
        return s
    assert dose.interval_weeks is not None
    start = first_allergen_dose - timedelta(weeks=wb)
    end = first_allergen_dose + timedelta(weeks=cw)
    admins = []
    for d in _every(start, dose.interval_weeks, end):
        phase = "pre-treatment" if d < first_allergen_dose else "during build-up"
        admins.append(
            _label_admin(
                d,
                dose,
                phase,
                f"{wb} weeks before the first {protocol} allergen dose, then "
                f"{cw} weeks with immunotherapy ({rule['source'].split(':')[0]})",
            )
        )
    warnings = list(dose.warnings)
    if protocol == "cluster":
        warnings.append("cluster default rests on expert opinion (8-16 weeks); Massanari 2010 not read")
    return Schedule(
        "pretreatment",
        "planned",
        False,
        admins,
        [Milestone(first_allergen_dose, f"first allergen dose ({protocol} build-up)")],
        warnings,
        [b for b in (dose.basis, _rule_basis(key)) if b],
        dose,
        inputs,
    )


def concurrent_scit(scit_start: date, dose: DoseResult, weeks: Any = None) -> Schedule:
    """Seed 001: label-dosed omalizumab started together with SCIT (day 1), default 48 weeks, with the
    study's assessment visits (baseline, 12, 24, 48 weeks) on the same calendar."""
    rule = _regimens()["concurrent_with_scit"]
    n_weeks = _weeks("weeks", rule["default_weeks"] if weeks is None else weeks, 1)
    inputs = {"scit_start": scit_start, "weeks": n_weeks}
    if (s := _no_dose("concurrent-scit", dose, inputs)) is not None:
        return s
    assert dose.interval_weeks is not None
    admins = [
        _label_admin(d, dose, "with SCIT", "omalizumab from the first SCIT injection (seed 001)")
        for d in _every(scit_start, dose.interval_weeks, scit_start + timedelta(weeks=n_weeks))
    ]
    ms = [Milestone(scit_start, "SCIT: first build-up injection")]
    ms += [
        Milestone(scit_start + timedelta(weeks=w), f"assessment visit week {w} (seed 001)")
        for w in rule["assessment_weeks"]
        if w <= n_weeks
    ]
    return Schedule(
        "concurrent-scit",
        "planned",
        False,
        admins,
        ms,
        list(dose.warnings),
        [b for b in (dose.basis, _rule_basis("concurrent_with_scit")) if b],
        dose,
        inputs,
    )


def desensitization(
    first_desensitization: date,
    cycles: Any = 6,
    cycle_weeks: Any = 3,
    tolerated_from_cycle: Any = None,
    days_before: list[int] | None = None,
) -> Schedule:
    """Seed 004 proposal (off-label): 300 mg twice before the first desensitization (default 14 and 1 days
    before), then one dose before each desensitization while breakthrough reactions persist (every 2-3 weeks,
    following the chemotherapy cycle), then every 4 weeks once desensitization is tolerated.

    ``tolerated_from_cycle`` = the first desensitization (1-based) completed without a breakthrough reaction;
    None means reactions persist in every planned cycle.
    """
    rule = _regimens()["desensitization_adjuvant"]
    n = int(check_range("cycles", cycles, 1, 52, unit="desensitizations"))
    cw = _weeks("cycle_weeks", cycle_weeks, 1, 8)
    allowed = rule["maintenance_interval_weeks_while_reacting"]
    tol = (
        None
        if tolerated_from_cycle is None
        else int(check_range("tolerated_from_cycle", tolerated_from_cycle, 1, n))
    )
    pre = list(rule["default_days_before"] if days_before is None else days_before)
    if len(pre) != rule["doses_before_first_desensitization"] or any(not 1 <= d <= 60 for d in pre):
        raise InvalidInput("days_before", "need two pre-doses, each 1-60 days before", "e.g. 14,1")
    dose = Decimal(rule["dose_mg"])
    inj = [i.syringe_mg for i in split_injections(dose)]
    ds_dates = [first_desensitization + timedelta(weeks=cw * k) for k in range(n)]
    admins = [
        Administration(
            first_desensitization - timedelta(days=d),
            dose,
            inj,
            "before first desensitization",
            f"pre-dose {i + 1} of 2, {d} days before (seed 004)",
            True,
        )
        for i, d in enumerate(sorted(pre, reverse=True))
    ]
    last_pre = min(pre)
    k = 1
    while k < n and (tol is None or k < tol):  # cycle k+1 follows a cycle with a breakthrough reaction
        admins.append(
            Administration(
                ds_dates[k] - timedelta(days=last_pre),
                dose,
                inj,
                "breakthrough persists",
                f"before desensitization {k + 1}: reactions persisted, every {cw} weeks with "
                "the chemotherapy cycle (seed 004)",
                True,
            )
        )
        k += 1
    if tol is not None and k < n:
        nxt = admins[-1].date + timedelta(weeks=rule["maintenance_interval_weeks_once_tolerated"])
        while nxt <= ds_dates[-1]:
            admins.append(
                Administration(
                    nxt,
                    dose,
                    inj,
                    "tolerated",
                    f"desensitization tolerated from cycle {tol}: every 4 weeks (seed 004)",
                    True,
                )
            )
            nxt += timedelta(weeks=rule["maintenance_interval_weeks_once_tolerated"])
    warnings = ["OFF-LABEL: omalizumab as adjuvant to drug desensitization (case series, seed 004)."]
    if cw not in allowed:
        warnings.append(
            f"seed 004 gives every {allowed[0]}-{allowed[-1]} weeks while reactions persist; "
            f"{cw} weeks follows the chemotherapy cycle entered"
        )
    if tol is None:
        warnings.append(
            "re-plan when a desensitization is tolerated (interval can then be extended to 4 weeks)"
        )
    ms = [Milestone(d, f"desensitization {i + 1}") for i, d in enumerate(ds_dates)]
    inputs = {
        "first_desensitization": first_desensitization,
        "cycles": n,
        "cycle_weeks": cw,
        "tolerated_from_cycle": tol,
        "days_before": pre,
    }
    return Schedule(
        "desensitization",
        "planned",
        True,
        sorted(admins, key=lambda a: a.date),
        ms,
        warnings,
        [_rule_basis("desensitization_adjuvant")],
        None,
        inputs,
    )


def oit(start: date, weight_kg: Any, mg_per_kg: Any) -> Schedule:
    """Langlois 2020 (off-label): 8 or 16 mg/kg per month (planned every 4 weeks) for 12 weeks, 50 % for
    4 weeks, 25 % for 4 weeks; OIT initial food escalation after 8 weeks. Doses are rounded to the nearest
    75 mg."""
    rule = _regimens()["oit_weight_based"]
    arms = [str(a) for a in rule["arms_mg_per_kg_per_month"]]
    mpk = Decimal(check_choice("mg_per_kg", str(to_decimal("mg_per_kg", mg_per_kg).normalize()), arms))
    wt = limits.check("weight_kg", weight_kg)
    step = Decimal(rule["syringe_rounding"]["step_mg"])
    cap = Decimal(_regimens()["max_single_administration_mg"]["value"])
    interval = int(rule["interval_weeks"])
    admins: list[Administration] = []
    warnings = [
        "OFF-LABEL: weight-based omalizumab with multi-food OIT (Langlois 2020 protocol).",
        rule["interval_note"],
        rule["syringe_rounding"]["text"],
        rule["caution"],
    ]
    week = 0
    for phase in rule["phases"]:
        frac = Decimal(phase["fraction"])
        exact = mpk * frac * wt
        rounded = (exact / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step
        rounded = max(rounded, step)
        for w in range(week, week + int(phase["weeks"]), interval):
            admins.append(
                Administration(
                    start + timedelta(weeks=w),
                    rounded,
                    [i.syringe_mg for i in split_injections(rounded)],
                    phase["name"],
                    f"{_num(mpk * frac)} mg/kg x {_num(wt)} kg = {_num(exact)} mg, "
                    f"rounded to {_num(rounded)} mg",
                    True,
                )
            )
        if rounded > cap:
            warnings.append(
                f"{phase['name']}: {rounded} mg exceeds {cap} mg in one administration (EU SmPC "
                "maximum is 600 mg every 2 weeks); how the protocol split such doses was not read"
            )
        week += int(phase["weeks"])
    ms = [Milestone(start + timedelta(weeks=rule["oit_start_week"]), "OIT initial food escalation")]
    inputs = {"start": start, "weight_kg": wt, "mg_per_kg": mpk}
    return Schedule(
        "oit", "planned", True, admins, ms, warnings, [_rule_basis("oit_weight_based")], None, inputs
    )
