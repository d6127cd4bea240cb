"""IM adrenaline 1 mg/mL for anaphylaxis (clinical/anaphylaxis.py, reference/data/anaphylaxis_adrenaline.json)
and the ``adrenaline-dose`` command."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from immunoplan import reference
from immunoplan.clinical.anaphylaxis import adrenaline_dose
from immunoplan.errors import InvalidInput

DATA = reference.load("anaphylaxis_adrenaline")


# ------------------------------------------------------------------ golden values from the sources
@pytest.mark.parametrize(
    "weight, age, dose, cap, autoinjector",
    [
        ("10", None, "0.1", "0.3", "0.1"),  # 0.01 mg/kg x 10 kg; AUVI-Q 7.5 to 15 kg band
        ("20", None, "0.2", "0.3", "0.15"),
        ("29.9", None, "0.299", "0.3", "0.15"),
        ("30", None, "0.3", "0.5", "0.3"),  # >= 30 kg: adult cap, 0.3 mg device
        ("45", None, "0.45", "0.5", "0.3"),
        ("60", None, "0.5", "0.5", "0.3"),  # 0.6 mg weight-based, capped at the adult maximum
        ("120", "70", "0.5", "0.5", "0.3"),
        ("45", "11", "0.3", "0.3", "0.3"),  # a heavy child under 12: the child cap
        ("45", "12", "0.45", "0.5", "0.3"),
        ("5", None, "0.05", "0.3", None),  # below the smallest auto-injector band
    ],
)
def test_golden_doses(weight, age, dose, cap, autoinjector) -> None:
    r = adrenaline_dose(Decimal(weight), None if age is None else Decimal(age))
    assert r.im_dose_mg == Decimal(dose)
    assert r.volume_ml == Decimal(dose)  # 1 mg/mL
    assert r.cap_mg == Decimal(cap)
    assert r.autoinjector_mg == (None if autoinjector is None else Decimal(autoinjector))
    assert r.capped is (r.weight_based_mg > r.cap_mg)
    if autoinjector is None:
        assert "ampoule" in r.autoinjector_reason
        assert any("no auto-injector" in w for w in r.warnings)


def test_the_numbers_are_the_sources_numbers() -> None:
    assert DATA["im_dose"]["mg_per_kg"] == "0.01"
    assert (DATA["caps"]["child_mg"], DATA["caps"]["adult_mg"]) == ("0.3", "0.5")
    assert DATA["caps"]["child_rule"]["weight_below_kg"] == "30"
    bands = [(b["min_kg"], b["max_kg"], b["mg"]) for b in DATA["autoinjector"]["bands"]]
    assert bands == [("7.5", "15", "0.1"), ("15", "30", "0.15"), ("30", None, "0.3")]
    assert DATA["autoinjector"]["status"] == "VERIFIED"


@pytest.mark.parametrize(
    "weight, mg",
    [("7.49", None), ("7.5", "0.1"), ("14.99", "0.1"), ("15", "0.15"), ("29.99", "0.15"), ("30", "0.3")],
)
def test_autoinjector_band_edges(weight, mg) -> None:
    assert adrenaline_dose(Decimal(weight)).autoinjector_mg == (None if mg is None else Decimal(mg))


def test_the_result_carries_its_basis_and_warnings() -> None:
    r = adrenaline_dose(Decimal("60"))
    rules = [b.rule for b in r.basis]
    assert rules == ["im-0.01-mg-per-kg", "cap-adult-0.5-mg", "ai-0.3-mg"]
    assert {b.id for b in r.basis} == {"anaphylaxis_adrenaline"}
    assert any("0.6 mg" in w and "0.5 mg" in w for w in r.warnings)
    d = r.to_dict()
    assert d["im_dose_mg"] == "0.5" and d["autoinjector_mg"] == "0.3" and d["capped"] is True
    assert d["basis"][1]["status"] == "SECONDARY"
    small = adrenaline_dose(Decimal("10"))
    assert any("AUVI-Q" in w for w in small.warnings)  # the 0.1 mg strength is one product's
    child = adrenaline_dose(Decimal("45"), Decimal("10"))
    assert child.cap == "cap-child-0.3-mg" and any("under 12" in w for w in child.warnings)


@pytest.mark.parametrize("weight", ["0", "-1", "10000", "abc", None])
def test_weight_outside_the_field_limits_is_refused(weight) -> None:
    with pytest.raises(InvalidInput) as exc:
        adrenaline_dose(weight)
    assert exc.value.field == "weight_kg" and exc.value.accepted == "(0, 500] kg"


def test_age_outside_the_field_limits_is_refused() -> None:
    with pytest.raises(InvalidInput) as exc:
        adrenaline_dose(Decimal("30"), Decimal("130"))
    assert exc.value.field == "age_years"


WEIGHTS = st.decimals(min_value=Decimal("0.1"), max_value=500, places=2, allow_nan=False)
AGES = st.one_of(st.none(), st.integers(0, 120).map(Decimal))


@settings(max_examples=300, deadline=None)
@given(weight=WEIGHTS, age=AGES)
def test_dose_never_above_its_cap_nor_above_weight_based(weight: Decimal, age) -> None:
    r = adrenaline_dose(weight, age)
    assert r.im_dose_mg <= r.cap_mg <= Decimal("0.5")
    assert r.im_dose_mg == min(weight * Decimal("0.01"), r.cap_mg)
    assert r.volume_ml == r.im_dose_mg
    if weight < 30:
        assert r.cap_mg == Decimal("0.3")


@settings(max_examples=300, deadline=None)
@given(a=WEIGHTS, b=WEIGHTS, age=AGES)
def test_dose_and_autoinjector_are_monotone_in_weight(a: Decimal, b: Decimal, age) -> None:
    lo, hi = sorted((a, b))
    ra, rb = adrenaline_dose(lo, age), adrenaline_dose(hi, age)
    assert ra.im_dose_mg <= rb.im_dose_mg
    assert (ra.autoinjector_mg or Decimal(0)) <= (rb.autoinjector_mg or Decimal(0))


# ------------------------------------------------------------------ the command
def test_cli_adrenaline_dose_json(cli) -> None:
    r = cli("adrenaline-dose", "--weight-kg", "23.5", "--json")
    assert r.code == 0, r.stderr
    d = r.json
    assert d["im_dose_mg"] == "0.235" and d["volume_ml"] == "0.235" and d["autoinjector_mg"] == "0.15"
    assert d["cap_mg"] == "0.3" and d["basis"][0]["rule"] == "im-0.01-mg-per-kg"
    r = cli("adrenaline-dose", "--weight-kg", "70", "--age-years", "40", "--json")
    assert r.code == 0 and r.json["im_dose_mg"] == "0.5" and r.json["age_years"] == "40"
    r = cli("adrenaline-dose", "--weight-kg", "70")
    assert r.code == 0 and "0.5 mg" in r.stdout


@pytest.mark.parametrize("weight", ["0", "10000"])
def test_cli_adrenaline_dose_refuses_implausible_weight(cli, weight) -> None:
    r = cli("adrenaline-dose", "--weight-kg", weight, "--json")
    assert r.code == 2
    assert r.stdout == ""
    assert (
        r.stderr.strip() == f"error: weight_kg: {weight} is {'below' if weight == '0' else 'above'} "
        "the accepted range (accepted: (0, 500] kg)"
    )
