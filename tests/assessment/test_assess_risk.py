"""Seed-000 risk tiers (every rule and boundary), age groups, omalizumab advice, efficacy note, section-5
cautions."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from immunoplan.clinical.risk import TIERS, risk
from immunoplan.errors import InvalidInput


def rule_ids(res) -> list[str]:
    return [r.rule for r in res.rules]


def test_issue_example_high_risk_adolescent() -> None:
    res = risk(14, 420, 68)
    d = res.to_dict()
    assert d["sige_class"] == 5
    assert d["ratio_percent"] == Decimal("16.19")
    assert d["age_group"] == "child-adolescent"
    assert d["risk_tier"] == "high"
    assert d["omalizumab_pretreatment"] == "recommended"
    assert d["efficacy_note"] and "16" in d["efficacy_note"]
    assert {
        "tier_high",
        "omalizumab_recommended",
        "ratio_above_16",
        "child",
        "high_sige",
        "high_total_ige",
    } <= set(rule_ids(res))
    assert all(r["source"] and r["status"] and r["version"] for r in d["rules"])


@pytest.mark.parametrize(
    ("sige", "total", "tier", "advice"),
    [
        ("0.35", "100", "low", "not-needed"),  # class 1, ratio 0.35 %
        ("3.49", "35", "low", "not-needed"),  # class 2, ratio 9.97 %
        ("3.49", "34.9", "elevated", "consider"),  # class 2, ratio exactly 10 %
        ("3.5", "35", "high", "recommended"),  # class 3, ratio exactly 10 % (>= 10 is high)
        ("3.5", "35.01", "elevated", "consider"),  # class 3, ratio just under 10 %
        ("100", "500", "high", "recommended"),  # class 6, 20 %
        ("50", "1000", "elevated", "consider"),  # class 5, 5 %
        ("1", "5", "elevated", "consider"),  # class 2, 20 %
        ("0.2", "1", "elevated", "consider"),  # class 0, 20 % -> not sensitized, flagged
    ],
)
def test_tier_rules_and_boundaries(sige: str, total: str, tier: str, advice: str) -> None:
    res = risk(30, total, sige)
    assert res.risk_tier == tier
    assert res.omalizumab_pretreatment == advice
    assert f"tier_{tier}" in rule_ids(res)


def test_class_zero_is_flagged() -> None:
    res = risk(30, 100, "0.1")
    assert "sige_class_0" in rule_ids(res)
    assert any("no sensitization" in w for w in res.warnings)


def test_elevated_advice_is_marked_unverified_project_rule() -> None:
    res = risk(30, 1000, 50)
    advice = next(r for r in res.rules if r.rule == "omalizumab_consider")
    assert advice.basis.status == "UNVERIFIED"
    assert any("project rule" in w for w in res.warnings)


@pytest.mark.parametrize(
    ("age", "group"),
    [("0", "child-adolescent"), ("17.99", "child-adolescent"), ("18", "adult"), ("90", "adult")],
)
def test_age_group_boundary(age: str, group: str) -> None:
    assert risk(age, 100, 1).age_group == group


@pytest.mark.parametrize(
    ("sige", "total", "note"), [("16", "100", False), ("16.01", "100", True), ("1", "6.2", True)]
)
def test_efficacy_note_strictly_above_16(sige: str, total: str, note: bool) -> None:
    assert (risk(30, total, sige).efficacy_note is not None) is note


@pytest.mark.parametrize(
    ("kwargs", "age", "fired", "kind"),
    [
        ({"asthma_control": "uncontrolled"}, 30, "uncontrolled_asthma", "contra"),
        ({"fev1_percent_predicted": "69.9"}, 30, "low_fev1", "contra"),
        ({"fev1_percent_predicted": "79"}, 30, "fev1_below_80", "factor"),
        ({"beta_blocker": True}, 30, "beta_blocker", "contra"),
        ({}, 4, "age_below_5", "contra"),
        ({}, 5, "child_5_9", "factor"),
        ({}, 9.5, "child_5_9", "factor"),
        ({}, 17, "child", "factor"),
    ],
)
def test_cautions_fire(kwargs: dict, age: float, fired: str, kind: str) -> None:
    res = risk(age, 100, 1, **kwargs)
    bucket = res.contraindications if kind == "contra" else res.risk_factors
    assert fired in [r.rule for r in bucket]


@pytest.mark.parametrize(
    ("kwargs", "age", "absent"),
    [
        ({"asthma_control": "partly-controlled"}, 30, "uncontrolled_asthma"),
        ({"fev1_percent_predicted": "70"}, 30, "low_fev1"),
        ({"fev1_percent_predicted": "80"}, 30, "fev1_below_80"),
        ({"beta_blocker": False}, 30, "beta_blocker"),
        ({}, 5, "age_below_5"),
        ({}, 10, "child_5_9"),
        ({}, 18, "child"),
    ],
)
def test_cautions_do_not_fire_at_boundary(kwargs: dict, age: float, absent: str) -> None:
    assert absent not in rule_ids(risk(age, 100, 1, **kwargs))


def test_sige_and_total_ige_risk_factor_boundaries() -> None:
    assert "high_sige" in rule_ids(risk(30, 1000, "17.5"))
    assert "high_sige" not in rule_ids(risk(30, 1000, "17.49"))
    assert "high_total_ige" in rule_ids(risk(30, "327.8", 1))
    assert "high_total_ige" not in rule_ids(risk(30, "327.7", 1))


def test_non_mite_allergen_warns() -> None:
    assert any("extrapolated" in w for w in risk(30, 100, 1, allergen="cat").warnings)


def test_sige_above_total_warns() -> None:
    assert any("ratio > 100" in w for w in risk(30, 10, 20).warnings)


@settings(max_examples=50, deadline=None)
@given(
    a=st.decimals(min_value=0, max_value=1000, places=2),
    b=st.decimals(min_value=0, max_value=1000, places=2),
    total=st.decimals(min_value=1, max_value=5000, places=1),
)
def test_high_tier_is_monotone_in_sige(a: Decimal, b: Decimal, total: Decimal) -> None:
    """Raising sIgE (same total IgE) never leaves the high tier nor enters the low tier from above."""
    lo, hi = sorted((a, b))
    t_lo, t_hi = risk(30, total, lo).risk_tier, risk(30, total, hi).risk_tier
    assert t_lo in TIERS and t_hi in TIERS
    if t_lo == "high":
        assert t_hi == "high"


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        ((300, 100, 1), {}, "age_years"),
        ((-1, 100, 1), {}, "age_years"),
        ((30, -5, 1), {}, "total_ige_iu_ml"),
        ((30, 0, 1), {}, "total_ige_iu_ml"),
        ((30, 100, -1), {}, "sige_kua_l"),
        ((30, "lots", 1), {}, "total_ige_iu_ml"),
        ((30, 100, 1), {"asthma_control": "fine"}, "asthma_control"),
        ((30, 100, 1), {"fev1_percent_predicted": "abc"}, "fev1_percent_predicted"),
    ],
)
def test_bad_input(args: tuple, kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        risk(*args, **kwargs)
    assert exc.value.field == field and exc.value.accepted
