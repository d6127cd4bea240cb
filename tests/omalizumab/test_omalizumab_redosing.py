"""Label re-dosing rules: weight change, IgE on treatment not used, interruptions < / >= 1 year."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from immunoplan.clinical.omalizumab.redosing import ige_for_dosing, redose_for_weight_change
from immunoplan.errors import InvalidInput


def test_without_interruption_the_initial_ige_is_used() -> None:
    r = ige_for_dosing(250)
    assert r.ige_iu_ml == 250 and "cannot be used as a guide" in r.rule


def test_interruption_shorter_than_a_year_keeps_initial_ige() -> None:
    r = ige_for_dosing(
        250, last_dose=date(2025, 1, 1), restart=date(2025, 12, 31), pretreatment_retest_iu_ml=900
    )
    assert r.ige_iu_ml == 250  # the re-test is ignored under 1 year


def test_interruption_of_a_year_or_more_needs_a_retest() -> None:
    r = ige_for_dosing(250, last_dose=date(2025, 1, 1), restart=date(2026, 1, 1))
    assert r.ige_iu_ml is None and "re-test" in r.action
    r2 = ige_for_dosing(
        250, last_dose=date(2025, 1, 1), restart=date(2026, 1, 1), pretreatment_retest_iu_ml=320
    )
    assert r2.ige_iu_ml == Decimal(320)


def test_bad_dates_are_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        ige_for_dosing(250, last_dose=date(2025, 1, 1))
    with pytest.raises(InvalidInput):
        ige_for_dosing(250, last_dose=date(2025, 1, 2), restart=date(2025, 1, 1))


def test_weight_change_rereads_the_table_with_initial_ige() -> None:
    w = redose_for_weight_change("asthma", "us", 30, 250, 58, 66)
    assert w.changed and w.before.dose_mg == 300 and w.after.dose_mg == 225 and w.after.interval_weeks == 2
    same = redose_for_weight_change("asthma", "us", 30, 250, 62, 68)
    assert not same.changed
