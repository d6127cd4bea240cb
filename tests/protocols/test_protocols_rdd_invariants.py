"""Hypothesis invariants of the desensitization generator, plus its invalid-input errors."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from immunoplan.clinical.desensitization import RddRequest, generate, prepare
from immunoplan.errors import InvalidInput

money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("20000"), places=2)
volumes = st.sampled_from([Decimal(v) for v in ("50", "100", "250", "500", "1000")]) | st.decimals(
    min_value=Decimal("60"), max_value=Decimal("1000"), places=1
)
rates = st.decimals(min_value=Decimal("20"), max_value=Decimal("300"), places=1)
requests = st.builds(
    RddRequest,
    drug=st.just("drug"),
    target_mg=money,
    bag_volume_ml=volumes,
    final_rate_ml_h=rates,
    bags=st.integers(1, 4),
    dilution_bag_volume_ml=st.none() | volumes,
    step_minutes=st.none() | st.sampled_from([Decimal(10), Decimal(15), Decimal(20)]),
    first_rate_variant=st.booleans(),
    override_reason=st.none() | st.just("recorded reason"),
)


def _plan_or_skip(req: RddRequest):
    try:
        return generate(req)
    except InvalidInput as exc:  # infeasible combinations must be named errors, never crashes
        assert exc.field in ("bag_volume_ml", "dilution_bag_volume_ml")
        assume(False)


@settings(max_examples=150, deadline=None)
@given(requests)
def test_invariants(req: RddRequest) -> None:
    p = _plan_or_skip(req)
    # cumulative dose equals the target exactly, and equals the sum of step doses
    assert p.steps[-1].cumulative_mg == req.target_mg
    assert sum(s.dose_mg for s in p.steps) == req.target_mg
    # the corrected last step is consistent with the final bag concentration
    last_bag = p.bags[-1]
    assert abs(p.steps[-1].dose_mg - p.steps[-1].volume_ml * last_bag.concentration_mg_ml) < Decimal("1e-9")
    # rates never decrease within a bag
    for b in p.bags:
        r = [s.rate_ml_h for s in p.steps if s.bag == b.bag]
        assert r == sorted(r)
    # every bag's infused volume <= its volume; the last bag is emptied
    for b in p.bags:
        assert 0 < b.volume_infused_ml <= b.volume_ml
        assert b.volume_infused_ml == sum(s.volume_ml for s in p.steps if s.bag == b.bag)
    assert last_bag.volume_infused_ml == last_bag.volume_ml
    # total time is the sum of the steps; the clock is contiguous
    assert p.total_minutes == sum(s.minutes for s in p.steps)
    for a, b in zip(p.steps, p.steps[1:], strict=False):
        assert a.end_minute == b.start_minute
    # doses positive and cumulative strictly increasing
    assert all(s.dose_mg > 0 for s in p.steps)
    # last step runs at the final rate; 3-bag default is dosable, UNVERIFIED schemes need an override
    assert p.steps[-1].rate_ml_h == req.final_rate_ml_h
    if req.bags == 3:
        assert p.kind == "plan"
    else:
        assert p.kind == ("plan" if req.override_reason else "needs-override")


@settings(max_examples=60, deadline=None)
@given(requests, st.decimals(min_value=Decimal("1"), max_value=Decimal("200"), places=1))
def test_preparation_error_is_the_rounding_only(req: RddRequest, stock: Decimal) -> None:
    p = _plan_or_skip(req)
    try:
        prep = prepare(p, stock)
    except InvalidInput as exc:
        assert exc.field == "stock_mg_ml"
        return
    for b, bp in zip(p.bags, prep.bags, strict=True):
        assert abs(bp.drug_volume_measured_ml - bp.drug_volume_exact_ml) <= bp.increment_ml / 2
        assert bp.drug_volume_measured_ml % bp.increment_ml == 0
        assert bp.dose_error_mg == bp.dose_infused_prepared_mg - b.dose_infused_mg
    assert prep.total_dose_error_mg == sum(b.dose_error_mg for b in prep.bags)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"target_mg": Decimal(0)}, "target_mg"),
        ({"final_rate_ml_h": Decimal(0)}, "final_rate_ml_h"),
        ({"bag_volume_ml": Decimal(-5)}, "bag_volume_ml"),
        (
            {"bag_volume_ml": Decimal(15), "dilution_bag_volume_ml": Decimal(250)},
            "bag_volume_ml",
        ),  # 17.5 mL before last
        ({"dilution_bag_volume_ml": Decimal(10)}, "dilution_bag_volume_ml"),  # bag 2 needs 18.75 mL
        ({"bags": 5}, "bags"),
        ({"rates_ml_h": ((Decimal(5), Decimal(2)), (Decimal(10), Decimal(80)))}, "rates_ml_h"),
        ({"rates_ml_h": ((Decimal(2), Decimal(5)), (Decimal(10), Decimal(40)))}, "rates_ml_h"),
    ],
)
def test_invalid_combinations_are_named_errors(kwargs, field) -> None:
    base = {
        "drug": "x",
        "target_mg": Decimal(100),
        "bag_volume_ml": Decimal(250),
        "final_rate_ml_h": Decimal(80),
    }
    with pytest.raises(InvalidInput) as exc:
        generate(RddRequest(**(base | kwargs)))
    assert exc.value.field == field


def test_custom_rate_table_and_dilution_bags_of_50_ml() -> None:
    p = generate(
        RddRequest("x", Decimal(1000), Decimal(250), Decimal(80), dilution_bag_volume_ml=Decimal(50))
    )
    assert [b.volume_ml for b in p.bags] == [Decimal(50), Decimal(50), Decimal(250)]
    assert p.bags[0].mg_in_bag == Decimal("2.00")  # 0.04 mg/mL x 50 mL
    assert p.steps[-1].cumulative_mg == Decimal(1000)
    c = generate(
        RddRequest(
            "x",
            Decimal(1000),
            Decimal(250),
            Decimal(80),
            rates_ml_h=((Decimal(2), Decimal(5)), (Decimal(10), Decimal(20), Decimal(80))),
        )
    )
    assert len(c.steps) == 5 and c.scheme.startswith("custom") and c.steps[-1].cumulative_mg == Decimal(1000)
