"""`assess_patient`: combined result shape (stable keys), derived inputs, validation before computing."""

from __future__ import annotations

import json

import pytest

from immunoplan.errors import InvalidInput
from immunoplan.jsonable import dumps
from immunoplan.services.assessment import SCHEMA, assess_patient

TOP_KEYS = {
    "schema",
    "label",
    "inputs",
    "biomarkers",
    "risk",
    "omalizumab_pretreatment",
    "eligibility",
    "eligibility_detail",
    "rules",
    "warnings",
    "basis",
    "reference",
}


def high_risk_adolescent(**over):
    args = dict(
        age_years="14",
        total_ige_iu_ml="420",
        sige_kua_l="68",
        weight_kg="52",
        eosinophils_cells_ul="420",
        feno_ppb="48",
        perennial_sensitization=True,
        severity="severe",
        asthma_control="partly-controlled",
        fev1_percent_predicted="82",
        label="adolescent",
    )
    return assess_patient(**{**args, **over})


def test_shape_is_stable_and_json_serialisable() -> None:
    d = json.loads(dumps(high_risk_adolescent()))
    assert set(d) == TOP_KEYS
    assert d["schema"] == SCHEMA
    assert d["risk"]["risk_tier"] == "high" and d["risk"]["age_group"] == "child-adolescent"
    assert d["omalizumab_pretreatment"]["advice"] == "recommended"
    assert d["omalizumab_pretreatment"]["status"] == "VERIFIED"
    assert d["biomarkers"] == {
        "sige_class": 5,
        "ratio_percent": 16.19,
        "eosinophils": d["biomarkers"]["eosinophils"],
        "feno": d["biomarkers"]["feno"],
    }
    assert d["biomarkers"]["eosinophils"]["category"] == "high"
    assert d["biomarkers"]["feno"]["category"] == "intermediate"
    assert set(d["eligibility"]) == {"omalizumab", "mepolizumab", "benralizumab", "dupilumab", "tezepelumab"}
    assert d["eligibility"]["omalizumab"] == "eligible"  # uncontrolled derived from partly-controlled
    assert {b["id"] for b in d["basis"]} == set(d["reference"])
    for r in d["rules"]:
        assert {"rule", "finding", "table", "version", "source", "status"} <= set(r)


def test_uncontrolled_derived_from_asthma_control_only_when_not_given() -> None:
    assert high_risk_adolescent(asthma_control="controlled").eligibility.inputs.uncontrolled is False
    assert high_risk_adolescent(
        asthma_control="controlled", uncontrolled=True
    ).eligibility.inputs.uncontrolled


def test_low_risk_adult() -> None:
    a = assess_patient(
        age_years=34,
        total_ige_iu_ml=250,
        sige_kua_l="2.1",
        asthma_control="controlled",
        fev1_percent_predicted=92,
        beta_blocker=False,
    )
    assert a.risk.risk_tier == "low" and a.risk.omalizumab_pretreatment == "not-needed"
    assert a.risk.age_group == "adult" and not a.risk.contraindications


def test_registry_style_call_with_inputs_dict() -> None:
    """The registry calls ``assess_patient(**inputs)`` with the canonical field names."""
    inputs = {"age_years": 30, "total_ige_iu_ml": 100, "sige_kua_l": 20}
    d = assess_patient(**inputs).to_dict()
    assert d["risk"]["risk_tier"] == "high" and d["biomarkers"]["sige_class"] == 4


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"age_years": "300"}, "age_years"),
        ({"total_ige_iu_ml": "-1"}, "total_ige_iu_ml"),
        ({"sige_kua_l": "abc"}, "sige_kua_l"),
        ({"weight_kg": "-2"}, "weight_kg"),
        ({"asthma_control": "meh"}, "asthma_control"),
        ({"feno_ppb": "x"}, "feno_ppb"),
    ],
)
def test_bad_input(over: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        high_risk_adolescent(**over)
    assert exc.value.field == field


def test_unknown_input_is_invalid_input_not_a_crash() -> None:
    with pytest.raises(InvalidInput) as exc:
        assess_patient(age_years=30, total_ige_iu_ml=100, sige_kua_l=1, sige=5)
    assert exc.value.field == "sige" and "sige_kua_l" in exc.value.accepted
