"""sIgE classes (every boundary), ratio, unit conversion, eosinophil and FeNO categories."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from immunoplan.clinical import biomarkers
from immunoplan.errors import InvalidInput

# Lower-inclusive ImmunoCAP boundaries (clinical_measures.md 2.1, Nordx): value -> class
CLASS_CASES = [
    ("0", 0),
    ("0.34", 0),
    ("0.349", 0),
    ("0.35", 1),
    ("0.69", 1),
    ("0.699", 1),
    ("0.70", 2),
    ("3.49", 2),
    ("3.5", 3),
    ("17.49", 3),
    ("17.5", 4),
    ("49.9", 4),
    ("49.99", 4),
    ("50", 5),
    ("99.9", 5),
    ("100", 6),
    ("5000", 6),
]


@pytest.mark.parametrize(("sige", "expected"), CLASS_CASES)
def test_sige_class_boundaries(sige: str, expected: int) -> None:
    assert biomarkers.sige_class(sige) == expected


def test_sige_class_rule_has_verified_source() -> None:
    rule = biomarkers.sige_class_rule(3).to_dict()
    assert rule["status"] == "VERIFIED" and "Nordx" in rule["source"] and rule["table"] == "assess_biomarkers"


def test_ratio_exact_decimal() -> None:
    assert biomarkers.ratio_percent("68", "420") == Decimal(68) / Decimal(420) * 100
    assert biomarkers.display_ratio(biomarkers.ratio_percent("68", "420")) == Decimal("16.19")
    assert biomarkers.ratio_percent("10", "100") == Decimal(10)


sige_values = st.decimals(min_value=0, max_value=100000, places=3, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(a=sige_values, b=sige_values)
def test_class_is_monotone_in_sige(a: Decimal, b: Decimal) -> None:
    lo, hi = sorted((a, b))
    assert biomarkers.sige_class(lo) <= biomarkers.sige_class(hi)


@settings(max_examples=60, deadline=None)
@given(a=sige_values, b=sige_values, total=st.decimals(min_value="0.1", max_value=100000, places=2))
def test_ratio_is_monotone_in_sige(a: Decimal, b: Decimal, total: Decimal) -> None:
    lo, hi = sorted((a, b))
    assert biomarkers.ratio_percent(lo, total) <= biomarkers.ratio_percent(hi, total)


@settings(max_examples=40, deadline=None)
@given(total=st.decimals(min_value="0.1", max_value=99000, places=2))
def test_ratio_is_antitone_in_total(total: Decimal) -> None:
    assert biomarkers.ratio_percent(10, total) >= biomarkers.ratio_percent(10, total + 1)


def test_conversion_default_factor_is_flagged_unverified() -> None:
    conv = biomarkers.iu_ml_to_ng_ml("100")
    assert conv.value == Decimal("242.00") and conv.unit == "ng/mL"
    assert conv.rule.basis.status == "UNVERIFIED"
    assert conv.warning and "UNVERIFIED" in conv.warning


def test_conversion_alternative_factor_and_round_trip() -> None:
    conv = biomarkers.iu_ml_to_ng_ml("100", factor="2.4")
    assert conv.value == Decimal("240.0") and conv.rule.basis.status == "SECONDARY"
    assert conv.warning is None
    back = biomarkers.ng_ml_to_iu_ml(str(conv.value), factor="2.4")
    assert back.value == Decimal(100)


def test_conversion_unknown_factor() -> None:
    with pytest.raises(InvalidInput) as exc:
        biomarkers.iu_ml_to_ng_ml("100", factor="3")
    assert exc.value.field == "factor_ng_per_iu"


@pytest.mark.parametrize(
    ("eos", "category"),
    [
        ("0", "low"),
        ("149", "low"),
        ("149.9", "low"),
        ("150", "intermediate"),
        ("299", "intermediate"),
        ("300", "high"),
        ("1200", "high"),
    ],
)
def test_eosinophil_categories(eos: str, category: str) -> None:
    assert biomarkers.eosinophil_category(eos).category == category


@pytest.mark.parametrize(
    ("feno", "age", "category"),
    [
        ("24", "30", "low"),
        ("25", "30", "intermediate"),
        ("50", "30", "intermediate"),
        ("51", "30", "high"),
        ("50.1", "12", "high"),
        ("19", "8", "low"),
        ("20", "8", "intermediate"),
        ("35", "8", "intermediate"),
        ("35.1", "8", "high"),
        ("24", "11.9", "intermediate"),
    ],
)
def test_feno_categories_adult_and_child(feno: str, age: str, category: str) -> None:
    assert biomarkers.feno_category(feno, age).category == category


def test_feno_under_five_is_cautioned() -> None:
    assert "5 years" in biomarkers.feno_category("10", "4").rule.finding


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: biomarkers.sige_class("-1"), "sige_kua_l"),
        (lambda: biomarkers.sige_class("abc"), "sige_kua_l"),
        (lambda: biomarkers.ratio_percent("1", "0"), "total_ige_iu_ml"),
        (lambda: biomarkers.ratio_percent("1", "-3"), "total_ige_iu_ml"),
        (lambda: biomarkers.eosinophil_category("-5"), "eosinophils_cells_ul"),
        (lambda: biomarkers.feno_category("20", "300"), "age_years"),
        (lambda: biomarkers.feno_category("nan", "30"), "feno_ppb"),
    ],
)
def test_bad_input_names_field_and_range(call, field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        call()
    assert exc.value.field == field
    assert exc.value.accepted
