"""Biologic eligibility: every label criterion and boundary, three-valued answers, bad input."""

from __future__ import annotations

import pytest

from immunoplan.clinical.eligibility import eligibility
from immunoplan.errors import InvalidInput

FULL = {
    "total_ige": "300",
    "weight_kg": "70",
    "eosinophils": "400",
    "feno": "40",
    "perennial_sensitization": True,
    "severity": "severe",
    "uncontrolled": True,
    "ocs_dependent": False,
}


def answers(age, **over) -> dict[str, str]:
    return eligibility(age, **{**FULL, **over}).to_dict()["summary"]


def test_all_eligible_for_typical_severe_allergic_eosinophilic_adult() -> None:
    assert set(answers(40).values()) == {"eligible"}


def test_nothing_known_is_insufficient_data_not_a_guess() -> None:
    res = eligibility(40).to_dict()
    assert set(res["summary"].values()) == {"insufficient-data"}
    oma = next(b for b in res["biologics"] if b["biologic"] == "omalizumab")
    assert "perennial_sensitization" in oma["missing"] and oma["failed"] == []


@pytest.mark.parametrize(
    ("age", "over", "drug", "answer"),
    [
        # omalizumab: IgE 30-700 (>= 12 y), 30-1300 (6-<12 y); weight 30-150 (>= 12 y), 20-150 (6-<12 y)
        (40, {"total_ige": "30"}, "omalizumab", "eligible"),
        (40, {"total_ige": "29.9"}, "omalizumab", "not-eligible"),
        (40, {"total_ige": "700"}, "omalizumab", "eligible"),
        (40, {"total_ige": "701"}, "omalizumab", "not-eligible"),
        (11, {"total_ige": "1300", "weight_kg": "30"}, "omalizumab", "eligible"),
        (11, {"total_ige": "1301", "weight_kg": "30"}, "omalizumab", "not-eligible"),
        (12, {"total_ige": "1000"}, "omalizumab", "not-eligible"),
        (40, {"weight_kg": "29"}, "omalizumab", "not-eligible"),
        (40, {"weight_kg": "150"}, "omalizumab", "eligible"),
        (40, {"weight_kg": "151"}, "omalizumab", "not-eligible"),
        (8, {"weight_kg": "20"}, "omalizumab", "eligible"),
        (8, {"weight_kg": "19.9"}, "omalizumab", "not-eligible"),
        (5, {}, "omalizumab", "not-eligible"),
        (6, {"weight_kg": "25"}, "omalizumab", "eligible"),
        (40, {"perennial_sensitization": False}, "omalizumab", "not-eligible"),
        (40, {"severity": "moderate"}, "omalizumab", "eligible"),
        (40, {"severity": "mild"}, "omalizumab", "not-eligible"),
        (40, {"uncontrolled": False}, "omalizumab", "not-eligible"),
        (40, {"total_ige": None}, "omalizumab", "insufficient-data"),
        # mepolizumab: >= 6 y, severe, eosinophils >= 150
        (40, {"eosinophils": "150"}, "mepolizumab", "eligible"),
        (40, {"eosinophils": "149"}, "mepolizumab", "not-eligible"),
        (40, {"severity": "moderate"}, "mepolizumab", "not-eligible"),
        (5, {}, "mepolizumab", "not-eligible"),
        # benralizumab: > 300, or > 150 if OCS-dependent
        (40, {"eosinophils": "300"}, "benralizumab", "not-eligible"),
        (40, {"eosinophils": "301"}, "benralizumab", "eligible"),
        (40, {"eosinophils": "151", "ocs_dependent": True}, "benralizumab", "eligible"),
        (40, {"eosinophils": "150", "ocs_dependent": True}, "benralizumab", "not-eligible"),
        (40, {"eosinophils": "200", "ocs_dependent": None}, "benralizumab", "insufficient-data"),
        # dupilumab: eos > 150 or FeNO > 20 or OCS-dependent; moderate-to-severe
        (40, {"eosinophils": "150", "feno": "20"}, "dupilumab", "not-eligible"),
        (40, {"eosinophils": "150", "feno": "21"}, "dupilumab", "eligible"),
        (40, {"eosinophils": "151", "feno": "5"}, "dupilumab", "eligible"),
        (40, {"eosinophils": "50", "feno": "5", "ocs_dependent": True}, "dupilumab", "eligible"),
        (40, {"severity": "moderate"}, "dupilumab", "eligible"),
        # tezepelumab: >= 12 y, severe, no biomarker
        (12, {"eosinophils": "0", "feno": "0"}, "tezepelumab", "eligible"),
        (11.9, {}, "tezepelumab", "not-eligible"),
        (40, {"severity": "moderate"}, "tezepelumab", "not-eligible"),
    ],
)
def test_label_criteria(age, over: dict, drug: str, answer: str) -> None:
    assert answers(age, **over)[drug] == answer


def test_criteria_echo_source_and_status() -> None:
    res = eligibility(40, **FULL).to_dict()
    for b in res["biologics"]:
        assert b["criteria"]
        for c in b["criteria"]:
            assert c["status"] in {"VERIFIED", "SECONDARY", "COMPUTED", "UNVERIFIED"}
            assert c["source"] and c["table"] == "assess_biologics" and c["version"]


def test_age_dependent_criteria_only_apply_in_their_age_band() -> None:
    oma = next(b for b in eligibility(8, **FULL).to_dict()["biologics"] if b["biologic"] == "omalizumab")
    ids = [c["criterion"] for c in oma["criteria"]]
    assert "total_ige_6_to_11" in ids and "total_ige_12_plus" not in ids


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"total_ige": "-1"}, "total_ige_iu_ml"),
        ({"weight_kg": "0"}, "weight_kg"),
        ({"weight_kg": "heavy"}, "weight_kg"),
        ({"eosinophils": "-3"}, "eosinophils_cells_ul"),
        ({"feno": "2000"}, "feno_ppb"),
        ({"severity": "extreme"}, "severity"),
    ],
)
def test_bad_input(kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        eligibility(40, **kwargs)
    assert exc.value.field == field and exc.value.accepted


def test_bad_age() -> None:
    with pytest.raises(InvalidInput) as exc:
        eligibility(300)
    assert exc.value.field == "age_years"
