"""Hypothesis invariants of the SCIT next-dose engine and of resuming a desensitization after a reaction."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from immunoplan.clinical.desensitization import RddRequest, generate
from immunoplan.clinical.desensitization.breakthrough import replan
from immunoplan.clinical.immunotherapy import GivenInjection, dose_steps, maintenance_dose, next_dose

P = "alutard-sq-hdm"
START = date(2026, 1, 5)


@st.composite
def histories(draw):
    regimen = draw(st.sampled_from(["conventional", "cluster"]))
    steps = [s.units for s in dose_steps(P, regimen)]
    n = draw(st.integers(1, 6))
    day = 0
    out = []
    for i in range(n):
        day += draw(st.integers(1, 60))
        dose = draw(st.sampled_from(steps))
        last = i == n - 1
        local = draw(st.sampled_from(["none", "up-to-quarter", "larger-than-quarter"])) if last else "none"
        sysg = draw(st.sampled_from([None, "1", "2"])) if last else None
        out.append(
            GivenInjection(START + timedelta(days=day), dose, local, "wao2017" if sysg else None, sysg)
        )
    gap = draw(st.integers(0, 250))
    return regimen, out, out[-1].date + timedelta(days=gap), draw(st.sampled_from(["norway", "aaaai"]))


@settings(max_examples=150, deadline=None)
@given(histories(), st.booleans())
def test_next_dose_invariants(case, new_vial) -> None:
    regimen, hist, on, ruleset = case
    n = next_dose(P, regimen, hist, on, ruleset=ruleset, new_vial=new_vial)
    last = hist[-1]
    assert n.kind in ("dose", "outside-table")
    assert n.rule is not None and n.rule in n.rules and n.rule.fired
    if n.kind == "outside-table":
        assert n.dose is None
        return
    steps = [s.units for s in dose_steps(P, regimen)]
    above = [s for s in steps if s > last.dose]
    assert 0 < n.dose.units <= (above[0] if above else maintenance_dose(P))  # never more than one step up
    assert n.dose.units == min(r.dose for r in n.rules if r.fired and r.dose is not None)  # most restrictive
    assert n.dose.volume_ml * {1: 100, 2: 1000, 3: 10000, 4: 100000}[n.dose.vial] == n.dose.units
    if last.systemic:
        assert n.dose.units <= last.dose / 10
    if last.local_reaction == "larger-than-quarter":
        assert n.dose.units <= last.dose / 2
    if last.local_reaction == "up-to-quarter":
        assert n.dose.units <= last.dose
    if new_vial:
        assert n.dose.units <= last.dose / 2
    assert n.next_due is not None and n.next_due > on


@settings(max_examples=100, deadline=None)
@given(
    st.decimals(min_value=Decimal("1"), max_value=Decimal("5000"), places=1),
    st.sampled_from([Decimal(100), Decimal(250), Decimal(500)]),
    st.sampled_from([Decimal(60), Decimal(80), Decimal(120)]),
    st.integers(1, 11),
    st.integers(1, 2),
    st.decimals(min_value=Decimal(0), max_value=Decimal(15), places=1),
)
def test_resumption_invariants(target, volume, rate, step, back, into) -> None:
    plan = generate(RddRequest("x", target, volume, rate))
    r = replan(plan, reaction_step=step, severity="mild", minutes_into_step=into, steps_back=back)
    res = r.resumption
    assert res is not None and res.restart_at_step == max(1, step - back)
    assert res.minutes == sum(s.minutes for s in res.steps)
    assert res.excess_over_target_mg >= 0
    if res.feasible:
        # the excess is exactly the drug drawn twice from dilution bags: repeated steps + the interrupted part
        n_final = len(plan.bags)
        repeated = sum(p.dose_mg for p in plan.steps[res.restart_at_step - 1 : step - 1] if p.bag != n_final)
        s = plan.steps[step - 1]
        partial = s.dose_mg * into / s.minutes if s.bag != n_final else 0
        assert abs(res.excess_over_target_mg - repeated - partial) < Decimal("1e-9")
        assert res.bag_volumes_used_ml[len(plan.bags)] == plan.bags[-1].volume_ml  # final bag emptied once
        if plan.steps[res.restart_at_step - 1].bag == len(plan.bags):
            assert res.excess_over_target_mg == 0  # repeats inside the final bag add no drug
    over = [b.bag for b in plan.bags if res.bag_volumes_used_ml[b.bag] > b.volume_ml]
    assert res.feasible == (not over and not res.problems)


def test_maintenance_patient_reduced_to_a_low_dose_climbs_one_step_not_to_vial_4() -> None:
    """Regression (hypothesis find): maintenance reached, then a dose of 20 SQ-U; the next dose within the
    maintenance interval is the next build-up step (40 SQ-U), not the first vial-4 dose (10 000 SQ-U)."""
    top = maintenance_dose(P)
    hist = [
        GivenInjection(START, top, "none", None, None),
        GivenInjection(START + timedelta(days=28), Decimal(20), "none", None, None),
    ]
    n = next_dose(P, "conventional", hist, START + timedelta(days=35), ruleset="norway")
    steps = [s.units for s in dose_steps(P, "conventional")]
    assert n.kind == "dose"
    assert n.dose.units == [s for s in steps if s > 20][0]


def test_cluster_day_under_way_continues_with_the_days_next_injection() -> None:
    """SmPC Table I week 1 is three injections on one day (vials 1, 2, 3 at 0.1 mL): after the first one,
    the next dose the same day is the schedule's second injection, not next week's visit."""
    hist = [GivenInjection(START, Decimal(10), "none", None, None)]
    n = next_dose(P, "cluster", hist, START)
    assert n.kind == "dose" and n.rule.id == "same-day-continuation"
    assert n.dose.units == Decimal(100) and n.dose.vial == 2
    assert [d.units for d in n.visit_injections] == [Decimal(100), Decimal(1000)]
    assert n.next_due > START and n.rule.basis.id == "scit_products"
    assert not any("earlier than the scheduled" in w for w in n.warnings)


def test_ultra_rush_day_continues_and_a_reaction_stops_the_continuation() -> None:
    up = "hdm-tyrosine-ultrarush"
    first = GivenInjection(START, Decimal("0.1") * maintenance_dose(up), "none", None, None)
    n = next_dose(up, "rush", [first], START)
    assert n.rule.id == "same-day-continuation"
    assert n.dose.volume_ml == Decimal("0.2")
    reacted = GivenInjection(START, first.dose, "none", "wao2010", "2")
    n = next_dose(up, "rush", [reacted], START)
    assert n.rule.id != "same-day-continuation"
    assert n.dose is None or n.dose.units <= reacted.dose / 10
