"""Range checks name the field and the accepted range, for ints, floats and Decimals alike."""

from __future__ import annotations

from decimal import Decimal

import pytest

from immunoplan.errors import InvalidInput
from immunoplan.validation import check_choice, check_range, to_decimal


def test_decimal_bounds_keep_trailing_zeros_of_whole_numbers() -> None:
    with pytest.raises(InvalidInput) as exc:
        check_range("age", Decimal(300), Decimal(0), Decimal(120))
    assert str(exc.value) == "age: 300 is above the accepted range (accepted: [0, 120])"


def test_decimal_fraction_is_trimmed() -> None:
    with pytest.raises(InvalidInput) as exc:
        check_range("rate_ml_h", Decimal("0.50"), Decimal("1.50"), None, unit="mL/h")
    assert "0.5 is below" in str(exc.value)
    assert "[1.5, inf] mL/h" in str(exc.value)


@pytest.mark.parametrize("bad", ["12", None, True, float("nan"), float("inf")])
def test_non_numbers_rejected(bad: object) -> None:
    with pytest.raises(InvalidInput) as exc:
        check_range("weight_kg", bad, 20, 150)
    assert exc.value.field == "weight_kg"


def test_open_bounds() -> None:
    assert check_range("x", 1, 0, 2, low_inclusive=False) == 1
    with pytest.raises(InvalidInput):
        check_range("x", 0, 0, 2, low_inclusive=False)
    with pytest.raises(InvalidInput):
        check_range("x", 2, 0, 2, high_inclusive=False)


def test_to_decimal_and_choice() -> None:
    assert to_decimal("v", 0.1) == Decimal("0.1")
    assert to_decimal("v", "2.50") == Decimal("2.50")
    with pytest.raises(InvalidInput):
        to_decimal("v", "abc")
    with pytest.raises(InvalidInput):
        to_decimal("v", "NaN")
    assert check_choice("sex", "male", ("male", "female")) == "male"
    with pytest.raises(InvalidInput) as exc:
        check_choice("sex", "x", ("male", "female"))
    assert exc.value.accepted == "male, female"


def test_huge_decimal_is_printed_compactly() -> None:
    with pytest.raises(InvalidInput) as exc:
        check_range("target_mg", Decimal("1e300"), 0, Decimal(10**7))
    assert str(exc.value) == "target_mg: 1e+300 is above the accepted range (accepted: [0, 10000000])"
