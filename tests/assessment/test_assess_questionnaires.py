"""Questionnaires: totals, every category boundary, MIDs, the response helper, out-of-range items."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from immunoplan.clinical import questionnaires as q
from immunoplan.errors import InvalidInput


def act_items(total: int) -> list[int]:
    """Five ACT items (1-5) summing to ``total``."""
    items = [1] * 5
    rest = total - 5
    for i in range(5):
        add = min(4, rest)
        items[i] += add
        rest -= add
    return items


@pytest.mark.parametrize(
    ("total", "category"),
    [
        (5, "very-poorly-controlled"),
        (15, "very-poorly-controlled"),
        (16, "not-well-controlled"),
        (19, "not-well-controlled"),
        (20, "well-controlled"),
        (25, "well-controlled"),
    ],
)
def test_act_bands(total: int, category: str) -> None:
    res = q.score("act", act_items(total))
    assert res.score == total and res.category == category and res.mid == 3


def test_act_issue_example() -> None:
    res = q.score("act", [4, 4, 3, 4, 3])
    assert res.to_dict()["score"] == 18 and res.category == "not-well-controlled"


def cact_items(total: int) -> list[int]:
    child, care = [0] * 4, [0] * 3
    rest = total
    for i in range(4):
        child[i] = min(3, rest)
        rest -= child[i]
    for i in range(3):
        care[i] = min(5, rest)
        rest -= care[i]
    return child + care


@pytest.mark.parametrize(
    ("total", "category"),
    [
        (0, "very-poorly-controlled"),
        (12, "very-poorly-controlled"),
        (13, "not-well-controlled"),
        (19, "not-well-controlled"),
        (20, "well-controlled"),
        (27, "well-controlled"),
    ],
)
def test_cact_bands(total: int, category: str) -> None:
    res = q.score("c-act", cact_items(total))
    assert res.score == total and res.category == category and res.mid == 2


def test_cact_child_items_max_3() -> None:
    with pytest.raises(InvalidInput) as exc:
        q.score("c-act", [4, 0, 0, 0, 0, 0, 0])
    assert exc.value.field == "item 1" and "3" in exc.value.accepted
    assert q.score("c-act", [0, 0, 0, 0, 5, 0, 0]).score == 5


def test_acq_means_and_categories() -> None:
    assert q.score("acq5", [0, 0, 0, 1, 2]).score == Decimal("0.60")
    assert q.score("acq5", [0, 0, 0, 1, 2]).category == "well-controlled"
    assert q.score("acq5", [0, 0, 1, 1, 2]).category == "partly-controlled"
    six = q.score("acq6", [1, 1, 1, 2, 2, 2])  # 9/6 = 1.5
    assert six.score == Decimal("1.50") and six.category == "not-well-controlled"
    assert q.score("acq6", [1, 1, 1, 2, 2, 2], bands="van-der-meer").category == "partly-controlled"
    assert q.score("acq7", [1, 1, 1, 1, 1, 1, 2]).score == Decimal("1.14")  # 8/7 rounded half-up


@pytest.mark.parametrize(
    ("value", "naepp", "vdm"),
    [
        ("0.74", "well-controlled", "well-controlled"),
        ("0.75", "partly-controlled", "well-controlled"),
        ("1.49", "partly-controlled", "partly-controlled"),
        ("1.5", "not-well-controlled", "partly-controlled"),
        ("1.51", "not-well-controlled", "not-well-controlled"),
    ],
)
def test_acq_boundary_conventions(value: str, naepp: str, vdm: str) -> None:
    assert q._categorise("acq5", Decimal(value), "naepp", [])[0] == naepp
    assert q._categorise("acq5", Decimal(value), "van-der-meer", [])[0] == vdm


@pytest.mark.parametrize(
    ("fev1", "item"),
    [
        ("100", 0),
        ("95.1", 0),
        ("95", 1),
        ("90", 1),
        ("89.9", 2),
        ("80", 2),
        ("79.5", 3),
        ("70", 3),
        ("69", 4),
        ("60", 4),
        ("59.9", 5),
        ("50", 5),
        ("49.9", 6),
        ("20", 6),
    ],
)
def test_acq7_fev1_item(fev1: str, item: int) -> None:
    assert q.acq_fev1_item(fev1)[0] == item
    res = q.score("acq7", [0] * 6, fev1_percent_predicted=fev1)
    assert res.items[-1] == item
    assert any(r.rule == "acq7_fev1_item" for r in res.rules)


def test_acq7_fev1_needs_six_items_and_only_acq7() -> None:
    with pytest.raises(InvalidInput):
        q.score("acq7", [0] * 7, fev1_percent_predicted="90")
    with pytest.raises(InvalidInput) as exc:
        q.score("acq5", [0] * 5, fev1_percent_predicted="90")
    assert exc.value.field == "fev1_percent_predicted"


def test_aqlq_domains_and_overall() -> None:
    items = [7] * 12 + [5] * 11 + [3] * 5 + [1] * 4
    res = q.score("aqlq", items)
    assert res.domains == {
        "symptoms": Decimal("7.00"),
        "activity_limitation": Decimal("5.00"),
        "emotional_function": Decimal("3.00"),
        "environmental_stimuli": Decimal("1.00"),
    }
    assert res.score == (Decimal(7 * 12 + 5 * 11 + 3 * 5 + 4) / 32).quantize(Decimal("0.01"))
    assert res.category is None and res.mid == Decimal("0.5")


def test_mini_aqlq() -> None:
    res = q.score("mini-aqlq", [6] * 5 + [4] * 4 + [2] * 3 + [7] * 3)
    assert res.domains["activity_limitation"] == Decimal("4.00")
    assert res.score == (Decimal(30 + 16 + 6 + 21) / 15).quantize(Decimal("0.01"))


def test_scorad_formula_extremes_and_example() -> None:
    assert q.score("scorad", [0] * 9).score == 0
    top = q.score("scorad", [100, 3, 3, 3, 3, 3, 3, 10, 10])
    assert top.score == 103 and top.category == "severe"
    ex = q.score("scorad", [30, 1, 2, 1, 2, 1, 1, 5, 5])  # 30/5 + 7*8/2 + 10 = 44
    assert ex.score == 44 and ex.to_dict()["objective_scorad"] == 34


@pytest.mark.parametrize(
    ("bands", "items", "total", "category"),
    [
        ("chopra", ["49.5", 0, 0, 0, 0, 0, 0, 0, 0], "9.9", "clear"),
        ("chopra", [50, 0, 0, 0, 0, 0, 0, 0, 0], "10", "mild"),
        ("chopra", [75, 1, 1, 1, 1, 0, 0, 0, 0], "29", "moderate"),
        ("chopra", [100, 1, 1, 1, 1, 1, 1, 4, 4], "49", "severe"),
        ("kunz", ["54.5", 1, 1, 1, 1, 0, 0, 0, 0], "24.9", "mild"),
        ("kunz", [55, 1, 1, 1, 1, 0, 0, 0, 0], "25", "moderate"),
        ("kunz", [100, 1, 1, 1, 1, 1, 1, 5, 4], "50", "moderate"),
        ("fondation", [100, 1, 1, 1, 1, 0, 0, 3, 3], "40", "moderate"),
        ("fondation", ["19.5", 1, 1, 1, 1, 1, 0, 0, 0], "21.4", "moderate"),
        ("fondation", ["99.5", 0, 0, 0, 0, 0, 0, 0, 0], "19.9", "mild"),
    ],
)
def test_scorad_bands(bands: str, items: list, total: str, category: str) -> None:
    res = q.score("scorad", items, bands=bands)
    assert res.score == Decimal(total)
    assert res.category == category


def test_scorad_kunz_just_above_50_is_severe() -> None:
    assert q.score("scorad", [1, 3, 3, 3, 3, 3, 3, 0, "0"], bands="kunz").score == Decimal("63.2")
    assert q._categorise("scorad", Decimal("50.01"), "kunz", [])[0] == "severe"


@pytest.mark.parametrize(
    ("instrument", "items", "field"),
    [
        ("act", [0, 4, 4, 4, 4], "item 1"),
        ("act", [5, 5, 5, 5, 6], "item 5"),
        ("act", [5, 5, 5, 5], "items"),
        ("acq6", [0, 0, 0, 0, 0, 7], "item 6"),
        ("acq5", [0, 0, 0, 0, "x"], "item 5"),
        ("aqlq", [0] + [4] * 31, "item 1"),
        ("scorad", [101, 0, 0, 0, 0, 0, 0, 0, 0], "item 1"),
        ("scorad", [10, 4, 0, 0, 0, 0, 0, 0, 0], "item 2"),
        ("scorad", [10, "1.5", 0, 0, 0, 0, 0, 0, 0], "item 2"),
        ("scorad", [10, 0, 0, 0, 0, 0, 0, 11, 0], "item 8"),
    ],
)
def test_out_of_range_items_are_errors(instrument: str, items: list, field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        q.score(instrument, items)
    assert exc.value.field == field and exc.value.accepted


def test_unknown_instrument_and_bands() -> None:
    with pytest.raises(InvalidInput) as exc:
        q.score("xyz", [1])
    assert exc.value.field == "instrument" and "act" in exc.value.accepted
    with pytest.raises(InvalidInput):
        q.score("act", [5] * 5, bands="chopra")
    with pytest.raises(InvalidInput):
        q.score("aqlq", [4] * 32, bands="naepp")


@pytest.mark.parametrize(
    ("instrument", "before", "after", "classification"),
    [
        ("act", "15", "18", "improved"),
        ("act", "15", "17", "no-important-change"),
        ("act", "20", "17", "worsened"),
        ("act", "20", "18", "no-important-change"),
        ("c-act", "12", "14", "improved"),
        ("c-act", "12", "13", "no-important-change"),
        ("acq5", "2.0", "1.5", "improved"),
        ("acq5", "2.0", "1.6", "no-important-change"),
        ("acq5", "1.0", "1.5", "worsened"),
        ("aqlq", "4.0", "4.5", "improved"),
        ("aqlq", "4.0", "3.5", "worsened"),
        ("mini-aqlq", "4.0", "4.4", "no-important-change"),
        ("scorad", "40", "26", "improved"),  # -35 %
        ("scorad", "40", "26.1", "no-important-improvement"),
        ("scorad", "40", "60", "no-important-improvement"),
        ("scorad", "0", "0", "no-important-improvement"),
    ],
)
def test_response(instrument: str, before: str, after: str, classification: str) -> None:
    assert q.response(instrument, before, after).classification == classification


def test_response_range_checked() -> None:
    with pytest.raises(InvalidInput) as exc:
        q.response("act", "4", "20")
    assert exc.value.field == "before"


@settings(max_examples=40, deadline=None)
@given(items=st.lists(st.integers(min_value=1, max_value=5), min_size=5, max_size=5))
def test_act_total_is_sum_and_always_categorised(items: list[int]) -> None:
    res = q.score("act", items)
    assert res.score == sum(items) and res.category is not None


@settings(max_examples=40, deadline=None)
@given(items=st.lists(st.integers(min_value=0, max_value=6), min_size=6, max_size=6))
def test_acq_mean_in_range_and_categorised(items: list[int]) -> None:
    res = q.score("acq6", items)
    assert Decimal(0) <= res.score <= Decimal(6) and res.category is not None


@pytest.mark.parametrize(
    ("instrument", "items", "age", "warns"),
    [
        ("act", [5] * 5, "11", True),
        ("act", [5] * 5, "12", False),
        ("c-act", [3] * 4 + [5] * 3, "3", True),
        ("c-act", [3] * 4 + [5] * 3, "4", False),
        ("c-act", [3] * 4 + [5] * 3, "11.9", False),
        ("c-act", [3] * 4 + [5] * 3, "12", True),
        ("acq5", [0] * 5, "17", True),
        ("acq5", [0] * 5, "18", False),
        ("acq7", [0] * 7, "10", True),
        ("acq7", [0] * 7, "11", False),
        ("aqlq", [4] * 32, "16", True),
        ("aqlq", [4] * 32, "40", False),
        ("aqlq", [4] * 32, "71", True),
        ("scorad", [0] * 9, "1", True),
        ("scorad", [0] * 9, "2", False),
    ],
)
def test_age_outside_validated_range_warns(instrument: str, items: list, age: str, warns: bool) -> None:
    base = q.score(instrument, items).warnings
    with_age = q.score(instrument, items, age=age).warnings
    assert (len(with_age) > len(base)) is warns


def test_bad_age_for_score() -> None:
    with pytest.raises(InvalidInput) as exc:
        q.score("act", [5] * 5, age="300")
    assert exc.value.field == "age_years"
