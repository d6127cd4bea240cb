"""Golden test: the UpToDate ceftazidime 2,000 mg 12-step example (protocols_examples.json), every number."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from immunoplan.clinical.desensitization import RddRequest, generate

# The worked example and its computed block, copied into the repository with its source (tests/golden/).
EXAMPLE = Path(__file__).resolve().parents[1] / "golden" / "rdd12_ceftazidime_2000mg_uptodate.json"
# The published table (UpToDate graphic, VERIFIED), also written out here.
PUBLISHED_STEPS = [
    (1, 1, "2.0", "15", "0.50", "0.040", "0.040"),
    (2, 1, "5.0", "15", "1.25", "0.100", "0.140"),
    (3, 1, "10.0", "15", "2.50", "0.200", "0.340"),
    (4, 1, "20.0", "15", "5.00", "0.400", "0.740"),
    (5, 2, "5.0", "15", "1.25", "1.000", "1.740"),
    (6, 2, "10.0", "15", "2.50", "2.000", "3.740"),
    (7, 2, "20.0", "15", "5.00", "4.000", "7.740"),
    (8, 2, "40.0", "15", "10.00", "8.000", "15.740"),
    (9, 3, "10.0", "15", "2.50", "19.843", "35.583"),
    (10, 3, "20.0", "15", "5.00", "39.685", "75.268"),
    (11, 3, "40.0", "15", "10.00", "79.370", "154.638"),
    (12, 3, "80.0", "174.375", "232.50", "1845.362", "2000.000"),
]
PUBLISHED_SOLUTIONS = [(1, "250", "0.080", "20"), (2, "250", "0.800", "200"), (3, "250", "7.937", None)]


def _q(x: Decimal, like: str) -> Decimal:
    places = len(like.split(".")[1]) if "." in like else 0
    return x.quantize(Decimal(1).scaleb(-places))


@pytest.fixture(scope="module")
def plan():
    return generate(RddRequest("ceftazidime", Decimal(2000), Decimal(250), Decimal(80), bags=3))


def test_steps_match_published_table(plan) -> None:
    assert len(plan.steps) == 12
    for s, (step, sol, rate, minutes, vol, dose, cum) in zip(plan.steps, PUBLISHED_STEPS, strict=True):
        assert (s.step, s.bag) == (step, sol)
        assert _q(s.rate_ml_h, rate) == Decimal(rate)
        assert _q(s.minutes, minutes) == Decimal(minutes)
        assert _q(s.volume_ml, vol) == Decimal(vol)
        assert _q(s.dose_mg, dose) == Decimal(dose), f"step {step} dose"
        assert _q(s.cumulative_mg, cum) == Decimal(cum), f"step {step} cumulative"


def test_solutions_match_published_table(plan) -> None:
    for b, (n, vol, conc, dose) in zip(plan.bags, PUBLISHED_SOLUTIONS, strict=True):
        assert b.bag == n
        assert b.volume_ml == Decimal(vol)
        assert _q(b.concentration_mg_ml, conc) == Decimal(conc)
        if dose is not None:
            assert b.mg_in_bag == Decimal(dose)
    # the corrected final bag: 7.937 x 250 = 1984.26 = 2000 - 15.74 (protocols.md 1.3)
    assert plan.bags[2].mg_in_bag == Decimal("1984.26")
    assert plan.bags[2].concentration_mg_ml == Decimal("7.93704")


def test_totals_and_infused_volumes(plan) -> None:
    assert plan.total_minutes == Decimal("339.375")  # printed "339.37 minutes"
    assert [b.volume_infused_ml for b in plan.bags] == [Decimal("9.25"), Decimal("18.75"), Decimal(250)]
    assert plan.steps[-1].cumulative_mg == Decimal(2000)
    assert plan.kind == "plan"
    assert all(b.verified for b in plan.basis)


def test_matches_computed_block_of_examples_file(plan) -> None:
    assert EXAMPLE.is_file(), f"golden data missing: {EXAMPLE} (see tests/golden/README.md)"
    golden = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    ex = golden["example"]
    assert ex["id"] == "rdd12_ceftazidime_2000mg_uptodate"
    assert golden["original_source"].startswith("UpToDate")
    assert len(ex["computed"]["steps"]) == len(plan.steps) == 12
    for s, c in zip(plan.steps, ex["computed"]["steps"], strict=True):
        assert _q(s.dose_mg, "0.0001") == Decimal(str(c["dose_mg"])).quantize(Decimal("0.0001"))
        assert _q(s.cumulative_mg, "0.0001") == Decimal(str(c["cumulative_mg"])).quantize(Decimal("0.0001"))
        assert s.volume_ml == Decimal(str(c["volume_ml"]))
    assert plan.total_minutes == Decimal(str(ex["computed"]["total_minutes"]))


def test_platinum_worksheet_75_ml_h_infused_volumes() -> None:
    """UpToDate platinum worksheet at 75 mL/h prints 8.67 mL from bag 1 and 17.58 mL from bag 2 (VERIFIED);
    bag 1 rates 1.875, 4.6875, 9.375, 18.75 mL/h; total 351.875 min (protocols.md 1.2)."""
    p = generate(RddRequest("carboplatin", Decimal(500), Decimal(250), Decimal(75)))
    assert [s.rate_ml_h for s in p.steps[:4]] == [
        Decimal("1.875"),
        Decimal("4.6875"),
        Decimal("9.375"),
        Decimal("18.75"),
    ]
    assert p.bags[0].volume_infused_ml.quantize(Decimal("0.01")) == Decimal("8.67")
    assert p.bags[1].volume_infused_ml.quantize(Decimal("0.01")) == Decimal("17.58")
    assert p.total_minutes == Decimal("351.875")


def test_first_rate_variant_infuses_9_375_ml_from_bag_1() -> None:
    p = generate(RddRequest("x", Decimal(600), Decimal(250), Decimal(80), first_rate_variant=True))
    assert p.steps[0].rate_ml_h == Decimal("2.5")
    assert p.bags[0].volume_infused_ml == Decimal("9.375")
    assert any(b.status == "SECONDARY" for b in p.basis)


def test_16_step_reconstruction_matches_examples_but_needs_override() -> None:
    """The 600 mg 4-bag reconstruction (UNVERIFIED) is reproduced; 399.375 min; not dosable by default."""
    p = generate(RddRequest("x", Decimal(600), Decimal(250), Decimal(80), bags=4))
    assert p.kind == "needs-override" and not p.dosing_allowed
    assert p.total_minutes == Decimal("399.375")
    assert p.bags[3].concentration_mg_ml.quantize(Decimal("0.0001")) == Decimal("2.3621")
    assert p.steps[12].dose_mg.quantize(Decimal("0.0001")) == Decimal("5.9053")
    assert p.steps[-1].dose_mg.quantize(Decimal("0.0001")) == Decimal("549.1909")
    ok = generate(
        RddRequest("x", Decimal(600), Decimal(250), Decimal(80), bags=4, override_reason="BTR in bag 3")
    )
    assert ok.kind == "plan" and ok.override and ok.override["reason"] == "BTR in bag 3"
