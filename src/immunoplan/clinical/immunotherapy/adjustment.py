"""SCIT next-dose rules engine: given the course history and a date, the dose to give, the rule that fired
and its source (reference file ``scit_adjustment``; protocols.md 2.4-2.5).

Order of evaluation (every rule is reported, fired or not; the most restrictive dose wins):
1. the last injection's systemic reaction: severe -> ``do-not-dose`` (seed 001: discontinuation; practice
   parameter: physician evaluation); any other -> 1/10 of that dose (LSU example rule, SECONDARY);
2. the interval since the last dose: build-up or maintenance table of the chosen rule set (Norwegian Alutard
   guide, default; or AAAAI/ACAAI Table E5 for build-up); maintenance reductions return to the full dose per
   the Norwegian guide;
3. the last injection's local reaction (LSU example rule, SECONDARY): up to a quarter -> do not increase;
   larger -> half the dose;
4. repeated systemic reactions: never above the lowest dose that caused them (Canadian monograph);
5. a new vial/lot of the same strength: at most 50% of the previous dose (Canadian monograph).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from immunoplan import reference
from immunoplan.clinical import vocabularies
from immunoplan.errors import InvalidInput
from immunoplan.reference import Basis
from immunoplan.validation import check_choice

from .catalogue import Dose, dose_for_units, dose_steps, maintenance_dose, product, regimen

DATA = "scit_adjustment"
RULESETS = ("norway", "aaaai")
LOCAL = vocabularies.LOCAL_REACTIONS  # none + the scit_adjustment local-rule sizes
SEVERE_WAO = {"3", "4", "5"}


@dataclass(frozen=True)
class GivenInjection:
    """One injection in the course history: ``date`` is its clinic-local date; ``given_at`` (optional, clinic
    time) is needed only for the same-visit interval of a multi-injection visit."""

    date: date
    dose: Decimal
    local_reaction: str = "none"
    systemic_scale: str | None = None
    systemic_grade: str | None = None
    given_at: dt.datetime | None = None
    #: split-dose days merged into one entry (`_merge_days`): the dose of the injection that caused the day's
    #: systemic (``reaction_dose``) or local (``local_reaction_dose``) reaction; None = ``dose`` itself
    reaction_dose: Decimal | None = None
    local_reaction_dose: Decimal | None = None

    @property
    def systemic_dose(self) -> Decimal:
        """The dose that caused the systemic reaction (the reaction rules apply to it)."""
        return self.dose if self.reaction_dose is None else self.reaction_dose

    @property
    def local_dose(self) -> Decimal:
        """The dose that caused the local reaction."""
        return self.dose if self.local_reaction_dose is None else self.local_reaction_dose

    @property
    def systemic(self) -> bool:
        return self.systemic_grade is not None and self.systemic_grade not in ("", "none", "local")

    @property
    def severe(self) -> bool:
        """Severe = seed 001 / Brown 'severe' or WAO grade 3-5 (mapping UNVERIFIED; only withholds)."""
        if not self.systemic:
            return False
        g = str(self.systemic_grade).lower()
        return g == "severe" or (self.systemic_scale in ("wao2010", "wao2017") and g[:1] in SEVERE_WAO)


@dataclass(frozen=True)
class FiredRule:
    id: str
    text: str
    fired: bool
    dose: Decimal | None
    basis: Basis

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "fired": self.fired,
            "dose": self.dose,
            "basis": self.basis.to_dict(),
        }


@dataclass
class NextDose:
    """``kind``: dose | do-not-dose | outside-table."""

    kind: str
    date: dt.date
    phase: str
    dose: Dose | None
    rule: FiredRule | None
    rules: list[FiredRule]
    days_since_last: int | None
    next_due: dt.date | None
    observation_minutes: int
    warnings: list[str] = field(default_factory=list)
    visit_injections: list[Dose] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "date": self.date,
            "phase": self.phase,
            "dose": self.dose.to_dict() if self.dose else None,
            "rule": self.rule.to_dict() if self.rule else None,
            "rules": [r.to_dict() for r in self.rules],
            "days_since_last": self.days_since_last,
            "next_due": self.next_due,
            "observation_minutes": self.observation_minutes,
            "warnings": self.warnings,
            "visit_injections": [d.to_dict() for d in self.visit_injections],
        }


def _basis(rule_id: str, status: str, source: str) -> Basis:
    return reference.basis(DATA, rule_id, status=status, source=source)


def _band(bands: list[dict[str, Any]], days: int) -> dict[str, Any]:
    for b in bands:
        if b["max_days"] is None or days <= int(b["max_days"]):
            return b
    raise AssertionError("last band is open")  # pragma: no cover


def next_dose(
    product_id: str,
    regimen_id: str,
    history: list[GivenInjection],
    on: date,
    *,
    ruleset: str | None = None,
    new_vial: bool = False,
    maintenance_interval_weeks: int | None = None,
) -> NextDose:
    """The dose for ``on`` after ``history`` (see module docstring for the rules, in order).

    ``maintenance_interval_weeks``: the course's own maintenance interval (set by the clinician at planning);
    default the product's (``scit_products``); when neither exists, ``next_due`` is None (never invented).
    The first dose of a course (empty history) is `immunoplan.clinical.immunotherapy.first_dose`."""
    p = product(product_id)
    allowed = list(p.get("adjustment_rulesets", RULESETS))
    ruleset = ruleset or allowed[0]
    check_choice("ruleset", ruleset, allowed)
    reg = regimen(product_id, regimen_id)
    if reg["status"] == "UNVERIFIED" or not reg["rows"]:
        raise InvalidInput(
            "regimen",
            f"{regimen_id!r} has no verified step table for {product_id}",
            ", ".join(k for k, v in p["regimens"].items() if v["rows"]),
        )
    if not history:
        raise InvalidInput(
            "history",
            "no injection given yet: the first dose is the schedule's (first_dose / next_injection)",
            "a non-empty history",
        )
    for h in history:
        check_choice("local_reaction", h.local_reaction, LOCAL)
    hist = sorted(history, key=lambda h: h.date)
    if on < hist[-1].date:
        raise InvalidInput(
            "date", f"{on} is before the last injection ({hist[-1].date})", f">= {hist[-1].date}"
        )
    same_day = None if new_vial else _same_day_continuation(p, product_id, regimen_id, reg, hist, on)
    if same_day is not None:
        return same_day
    if reg.get("day_total_is_maintenance_dose"):
        hist = _merge_days(hist)
    last = hist[-1]
    data = reference.load(DATA)
    steps = dose_steps(product_id, regimen_id)
    top = maintenance_dose(product_id)
    days = (on - last.date).days
    in_maintenance = any(h.dose >= top for h in hist)
    phase = "maintenance" if in_maintenance else "build-up"
    rules: list[FiredRule] = []
    warnings: list[str] = []
    obs = int(p["observation_minutes"])

    def step_above(units: Decimal) -> Decimal:
        for s in steps:
            if s.units > units:
                return s.units
        return steps[-1].units

    def step_index_at_or_below(units: Decimal) -> int:
        idx = 0
        for i, s in enumerate(steps):
            if s.units <= units:
                idx = i
        return idx

    # 1. systemic reaction at the last injection
    sysd = data["systemic"]
    if last.systemic and last.severe:
        r = sysd["severe"]
        fr = FiredRule(r["id"], r["text"], True, None, _basis(r["id"], r["status"], r["source"]))
        warnings.append(sysd["severe_definition"]["text"])
        return NextDose("do-not-dose", on, phase, None, fr, [fr], days, None, obs, warnings)
    candidates: list[tuple[Decimal, FiredRule]] = []
    r = sysd["any"]
    if last.systemic:
        tenth = last.systemic_dose * Decimal(r["fraction"])
        fr = FiredRule(r["id"], r["text"], True, tenth, _basis(r["id"], r["status"], r["source"]))
        candidates.append((tenth, fr))
        warnings.append(
            "Systemic reaction at the last injection: the physician re-evaluates dose, schedule and "
            "benefit of continuing before this dose."
        )
    rules.append(
        FiredRule(
            r["id"],
            r["text"],
            last.systemic,
            candidates[0][0] if candidates else None,
            _basis(r["id"], r["status"], r["source"]),
        )
    )

    if days < int(p["buildup_interval_days"]) and not in_maintenance:
        warnings.append(
            f"Only {days} day(s) since the last injection: earlier than the scheduled "
            f"{p['buildup_interval_days']}-day interval."
        )
    # 2. interval since the last dose
    table = data["missed"][ruleset]["maintenance" if in_maintenance else "buildup"]
    if ruleset == "aaaai" and not in_maintenance:
        measure_days = days - int(p["buildup_interval_days"])
    else:
        measure_days = days
    band = _band(table["bands"], max(measure_days, 0))
    b = _basis(band["id"], table["status"], table["source"])
    if ruleset == "aaaai" and not in_maintenance and p.get("buildup_interval_status") == "UNVERIFIED":
        # Table E5 counts from the missed visit, which rests on the product's build-up interval: a band
        # chosen with an UNVERIFIED interval is itself UNVERIFIED (it doses only with a recorded override)
        b = _basis(
            band["id"],
            "UNVERIFIED",
            f"{table['source']}; counted from the build-up interval ({p['buildup_interval_days']} days: "
            f"{p['buildup_interval_source']})",
        )
        warnings.append(
            f"The missed-dose band is counted from a {p['buildup_interval_days']}-day build-up interval "
            "that is UNVERIFIED for this product: the dose needs a clinician's recorded reason."
        )
    action = band["action"]
    units: Decimal
    text = band["text"]
    if action == "outside-table":
        fr = FiredRule(band["id"], text, True, None, b)
        rules.append(fr)
        return NextDose("outside-table", on, phase, None, fr, rules, days, None, obs, warnings)
    if action == "increase":
        units = step_above(last.dose)
    elif action == "repeat":
        units = last.dose
    elif action == "back":
        units = steps[max(0, step_index_at_or_below(last.dose) - int(band["steps"]))].units
    elif action == "restart":
        units = steps[0].units
        phase = "build-up"
    elif action == "fraction":
        units = last.dose * Decimal(band["fraction"])
    elif action == "volume":
        top_vial = dose_for_units(product_id, top)
        units = min(last.dose, top / top_vial.volume_ml * Decimal(band["ml"]))
    elif action == "maintain":
        text_out: list[str] = []
        units = _maintenance_return(hist, top, steps, data, text_out)
        if text_out:
            text = text_out[0]
    else:  # pragma: no cover - data defect
        raise AssertionError(action)
    fr = FiredRule(band["id"], text, True, units, b)
    candidates.append((units, fr))
    rules.append(fr)

    # 3. local reaction at the last injection
    loc = data["local"]
    if last.local_reaction != "none":
        lr = loc["rules"][last.local_reaction]
        lunits = last.local_dose if lr["action"] == "repeat" else last.local_dose * Decimal(lr["fraction"])
        fr = FiredRule(lr["id"], lr["text"], True, lunits, _basis(lr["id"], loc["status"], loc["source"]))
        candidates.append((lunits, fr))
        rules.append(fr)
        warnings.append(
            "Local-reaction rule is one institution's example (SECONDARY); single local reactions "
            "do not predict systemic reactions (guideline summary, evidence C)."
        )

    # 4. repeated systemic reactions: cap below the lowest dose that caused them
    rep = sysd["repeated"]
    sr = [h for h in hist if h.systemic]
    if len(sr) >= 2:
        cap_at = min(h.systemic_dose for h in sr)
        below = [s.units for s in steps if s.units < cap_at]
        cap = below[-1] if below else steps[0].units
        fr = FiredRule(rep["id"], rep["text"], True, cap, _basis(rep["id"], rep["status"], rep["source"]))
        candidates.append((cap, fr))
        rules.append(fr)
        warnings.append(
            "Repeated systemic reactions: consider a lower maintenance dose (practice parameter)."
        )

    # 5. new vial / lot
    nv = data["new_vial"]
    if new_vial:
        nunits = last.dose * Decimal(nv["fraction"])
        fr = FiredRule(nv["id"], nv["text"], True, nunits, _basis(nv["id"], nv["status"], nv["source"]))
        candidates.append((nunits, fr))
        rules.append(fr)

    units_final, fired = min(candidates, key=lambda c: c[0])
    dose = dose_for_units(product_id, units_final)
    if dose.volume_ml < Decimal(p["min_volume_ml"]):
        warnings.append(
            f"{dose.volume_ml} mL is below the smallest volume of the schedule ({p['min_volume_ml']} mL; "
            f"{p['min_volume_source']}): the clinician decides how to give it (a weaker vial, or not today)."
        )
    if units_final >= top:
        phase = "maintenance"
    interval_days, interval = interval_days_after(
        p, hist, phase, units_final, top, data, maintenance_interval_weeks
    )
    if interval.id.startswith("norway-return"):
        warnings.append(interval.text)
    if interval_days is None:
        warnings.append(
            f"No maintenance interval in the reference data for {p['name']} "
            f"({p['maintenance_interval_weeks']['source']}): the clinician sets the next visit."
        )
    visit = [dose]
    if action == "increase" and units_final == units and not in_maintenance:
        visit = _scheduled_visit(product_id, regimen_id, hist, units_final) or visit
        if len(visit) > 1:
            warnings.append(
                f"{len(visit)} injections today, at least {p['same_day_min_interval_minutes']} min "
                "apart, per the schedule."
            )
    next_due = None if interval_days is None else on + timedelta(days=interval_days)
    return NextDose("dose", on, phase, dose, fired, rules, days, next_due, obs, warnings, visit)


def _same_day_continuation(
    p: dict[str, Any],
    product_id: str,
    regimen_id: str,
    reg: dict[str, Any],
    hist: list[GivenInjection],
    on: date,
) -> NextDose | None:
    """A visit with several injections (cluster day, 1-day ultra-rush) that is under way today: the next
    injection is the schedule's next one of that visit, if today's injections so far are exactly the visit's
    first ones and none caused a reaction. Otherwise None, and the adjustment rules decide."""
    from .catalogue import dose_of

    today = [h for h in hist if h.date == on]
    if not today or any(h.systemic or h.local_reaction != "none" for h in today):
        return None
    rows = reg["rows"]
    doses = [dose_of(product_id, int(r["vial"]), Decimal(r["ml"])) for r in rows]
    given = [h.dose for h in today]
    for week in sorted({int(r["week"]) for r in rows}):
        visit = [d for r, d in zip(rows, doses, strict=True) if int(r["week"]) == week]
        if len(visit) > len(given) and [d.units for d in visit[: len(given)]] == given:
            remaining = visit[len(given) :]
            b = reference.basis(
                "scit_products",
                f"{regimen_id} schedule, visit {week}",
                status=reg["status"],
                source=reg["source"],
            )
            fr = FiredRule(
                "same-day-continuation",
                f"Visit {week} of the {reg['name']} schedule is under way: give its next injection "
                f"({len(given) + 1} of {len(visit)}).",
                True,
                remaining[0].units,
                b,
            )
            warnings = [
                f"{len(remaining)} injection(s) left today, at least "
                f"{p['same_day_min_interval_minutes']} min after the previous one, per the schedule."
            ]
            # next_due is the next visit after today's (the rest of today is in visit_injections).
            return NextDose(
                "dose",
                on,
                "build-up",
                remaining[0],
                fr,
                [fr],
                0,
                on + timedelta(days=int(p["buildup_interval_days"])),
                int(p["observation_minutes"]),
                warnings,
                remaining,
            )
    return None


def _scheduled_visit(
    product_id: str, regimen_id: str, hist: list[GivenInjection], units: Decimal
) -> list[Dose]:
    """The injections of the schedule's next visit (cluster days have several), when the course is on track:
    the last injection matches a schedule row and the next week's first injection is ``units``."""
    from .catalogue import dose_of

    rows = regimen(product_id, regimen_id)["rows"]
    doses = [dose_of(product_id, int(r["vial"]), Decimal(r["ml"])) for r in rows]
    matches = [i for i, d in enumerate(doses) if d.units == hist[-1].dose]
    if not matches:
        return []
    week = int(rows[matches[-1]]["week"])
    nxt = [d for r, d in zip(rows, doses, strict=True) if int(r["week"]) == week + 1]
    return nxt if nxt and nxt[0].units == units else []


def _maintenance_return(
    hist: list[GivenInjection], top: Decimal, steps: list[Dose], data: dict[str, Any], text_out: list[str]
) -> Decimal:
    """Within the maintenance interval: full dose, or the way back to it after a reduction (Norway)."""
    last = hist[-1]
    if last.dose >= top:
        return top
    ret = data["missed"]["norway"]["maintenance"]["return"]
    top_steps = [s for s in steps if s.vial == steps[-1].vial]
    ml_06 = Decimal("0.6") * top_steps[-1].units / top_steps[-1].volume_ml
    if last.dose >= ml_06:
        text_out.append(ret["after_0_6_ml"]["text"])
        return top
    text_out.append(ret["below_0_6_ml"]["text"])
    # One step up the whole build-up table: a dose reduced below the top vial climbs back through the
    # lower vials' steps, never jumping straight to the top vial.
    for s in steps:
        if s.units > last.dose:
            return s.units
    return top


@dataclass(frozen=True)
class Interval:
    """Where the interval to the next visit comes from: the rule id and text, and its basis."""

    id: str
    text: str
    basis: Basis

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "basis": self.basis.to_dict()}


def interval_days_after(
    p: dict[str, Any],
    hist: list[GivenInjection],
    phase: str,
    units: Decimal,
    top: Decimal,
    data: dict[str, Any],
    maintenance_interval_weeks: int | None = None,
) -> tuple[int | None, Interval]:
    """Days from a visit giving ``units`` (after ``hist``) to the next visit, and where that comes from:
    build-up interval of the product; in maintenance the course's (clinician-set) or the product's interval,
    or the Norwegian return-to-full-dose intervals after a reduction (0.6 mL -> full 4 weeks later, then
    8 weeks; below 0.6 mL -> steps every 1-2 weeks, full dose then after 2, 4 and 8 weeks). None when the
    reference data has no interval (never invented)."""
    iv = data["intervals"]
    products = "scit_products"
    if phase != "maintenance":
        days = int(p["buildup_interval_days"])
        b = reference.basis(
            products,
            "build-up visit interval",
            status=p.get("buildup_interval_status"),
            source=p.get("buildup_interval_source"),
        )
        return days, Interval(iv["buildup"]["id"], iv["buildup"]["text"].format(days=days), b)
    ret = data["missed"]["norway"]["maintenance"]["return"]

    def back(key: str, weeks: int) -> tuple[int, Interval]:
        r = ret[key]
        b = _basis(r["id"], ret["status"], ret["source"])
        return 7 * weeks, Interval(r["id"], r["text"], b)

    ml_06 = top * Decimal("0.6")
    doses = [h.dose for h in hist] + [units]
    reduced, full_since = _last_reduction(doses, top)
    if reduced is not None:
        key = "after_0_6_ml" if reduced >= ml_06 else "below_0_6_ml"
        if units < top:  # still on the way back: 0.6 mL -> full 4 weeks later; below: steps of 1-2 weeks
            if key == "after_0_6_ml":
                return back(key, int(ret[key]["next_full_after_weeks"]))
            return back(key, int(ret[key]["step_interval_weeks"][0]))
        then = ret[key]["then_weeks"]
        if full_since <= len(then):  # the full dose again: then after 8 weeks (0.6) or 2, 4, 8 (below)
            return back(key, int(then[full_since - 1]))
    mi = p["maintenance_interval_weeks"]
    if maintenance_interval_weeks is not None:
        weeks = int(maintenance_interval_weeks)
        b = Basis("clinician-entered", "-", "maintenance interval set by the clinician", "SECONDARY")
    elif mi["default"] is not None:
        weeks = int(mi["default"])
        b = reference.basis(products, "maintenance interval", status=mi["status"], source=mi["source"])
    else:
        none = iv["none"]
        b = reference.basis(products, "maintenance interval", status=mi["status"], source=mi["source"])
        return None, Interval(none["id"], none["text"].format(source=mi["source"]), b)
    return 7 * weeks, Interval(iv["maintenance"]["id"], iv["maintenance"]["text"].format(weeks=weeks), b)


def _last_reduction(doses: list[Decimal], top: Decimal) -> tuple[Decimal | None, int]:
    """The maintenance reduction the course is returning from: the first dose of the latest run of doses
    below ``top`` that follows a full dose (None when there is none), and how many full doses were given
    after that run (0 while still below the full dose)."""
    end = len(doses)
    full_since = 0
    while end > 0 and doses[end - 1] >= top:
        end -= 1
        full_since += 1
    start = end
    while start > 0 and doses[start - 1] < top:
        start -= 1
    if start == end or start == 0:  # no run below the full dose, or it is the build-up (no full dose before)
        return None, full_since
    return doses[start], full_since


def _merge_days(hist: list[GivenInjection]) -> list[GivenInjection]:
    """Split-dose regimens (ultra-rush: the day's injections make up one maintenance dose): one entry per day,
    dose = the day's total, keeping the worst local and any systemic reaction of that day with the dose of
    the injection that caused it (the reaction rules apply to that dose, not to the day's total)."""
    out: list[GivenInjection] = []
    for h in hist:
        if out and out[-1].date == h.date:
            prev = out[-1]
            worse_local = LOCAL.index(h.local_reaction) > LOCAL.index(prev.local_reaction)
            loc = h if worse_local else prev
            sysr = h if h.systemic else prev
            out[-1] = GivenInjection(
                h.date,
                prev.dose + h.dose,
                loc.local_reaction,
                sysr.systemic_scale,
                sysr.systemic_grade,
                h.given_at,
                reaction_dose=sysr.systemic_dose if sysr.systemic else None,
                local_reaction_dose=loc.local_dose if loc.local_reaction != "none" else None,
            )
        else:
            out.append(h)
    return out
