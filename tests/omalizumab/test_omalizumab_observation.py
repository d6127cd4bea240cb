"""Observation time after an omalizumab dose (clinical/omalizumab/observation.py; the OJTF rule in
reference/data/omalizumab_administration.json ``observation``)."""

from __future__ import annotations

import pytest

from immunoplan import reference
from immunoplan.clinical.omalizumab.observation import omalizumab_observation_minutes
from immunoplan.errors import InvalidInput


def test_the_rule_is_the_task_force_numbers() -> None:
    block = reference.load("omalizumab_administration")["observation"]
    assert [(r["from_dose"], r["to_dose"], r["minutes"]) for r in block["rules"]] == [
        (1, 3, 120),
        (4, None, 30),
    ]


@pytest.mark.parametrize(
    "dose_number, minutes, rule",
    [
        (1, 120, "ojtf-first-3-doses"),
        (2, 120, "ojtf-first-3-doses"),
        (3, 120, "ojtf-first-3-doses"),
        (4, 30, "ojtf-later-doses"),
        (52, 30, "ojtf-later-doses"),
    ],
)
def test_omalizumab_observation_minutes(dose_number, minutes, rule) -> None:
    got, basis = omalizumab_observation_minutes(dose_number)
    assert got == minutes
    assert basis.rule == rule and basis.id == "omalizumab_administration" and basis.status == "VERIFIED"
    assert "1373" in basis.source


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "2"])
def test_omalizumab_observation_refuses_a_bad_dose_number(bad) -> None:
    with pytest.raises(InvalidInput) as exc:
        omalizumab_observation_minutes(bad)
    assert exc.value.field == "dose_number"
