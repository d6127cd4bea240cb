"""GLI spirometry: the published test vectors of clinical_measures.md 3.5, LMS identities, bad input."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from immunoplan.clinical.spirometry import spirometry
from immunoplan.errors import InvalidInput

# clinical_measures.md 3.5 (computed from the GLI workbooks, cross-checked against PySpiro and rspiro).
# Tolerances suggested there: M/LLN +-0.002, z +-0.005, % predicted +-0.05.
GOLDEN = [
    # equation, sex, age, height, ethnicity, measure, observed, M, LLN, z, %pred
    ("gli2012", "male", 40, 175, "caucasian", "fev1", "3.0", "4.0780", "3.2313", "-2.080", "73.57"),
    ("gli2012", "female", 8, 128, "caucasian", "fev1", "1.5", "1.5286", "1.2246", "-0.157", "98.13"),
    ("gli2012", "male", 25, 180, "african-american", "fev1", "3.8", "4.0556", "3.1759", "-0.484", "93.70"),
    ("gli-global-2022", "male", 40, 175, None, "fev1", "3.0", "3.8355", "2.9388", "-1.536", "78.22"),
    ("gli-global-2022", "male", 40, 175, None, "fvc", "4.5", "4.6986", "3.6177", "-0.300", "95.77"),
]


@pytest.mark.parametrize("case", GOLDEN, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}-{c[5]}")
def test_published_vectors(case: tuple) -> None:
    eq, sex, age, height, eth, measure, obs, m, lln, z, pct = case
    res = spirometry(equation=eq, sex=sex, age=age, height_cm=height, ethnicity=eth, **{f"{measure}_l": obs})
    out = res.measures[measure]
    assert abs(out.predicted - Decimal(m)) <= Decimal("0.002")
    assert abs(out.lln - Decimal(lln)) <= Decimal("0.002")
    assert out.z is not None and abs(out.z - Decimal(z)) <= Decimal("0.005")
    assert out.percent_predicted is not None and abs(out.percent_predicted - Decimal(pct)) <= Decimal("0.05")
    assert out.lln < out.predicted < out.uln


def test_contract_keys_one_per_measure_given() -> None:
    d = spirometry(sex="female", age=30, height_cm=165, fev1_l="2.9", fev1_fvc="0.8").to_dict()
    assert "fev1" in d and "fev1_fvc" in d and "fvc" not in d
    for key in ("predicted", "lln", "uln", "z", "percent_predicted"):
        assert key in d["fev1"]
    assert d["equation"] == "gli-global-2022"  # race-neutral default
    assert {r["rule"] for r in d["rules"]} >= {"gli-global-2022", "lln_uln"}


def test_no_measure_gives_predicted_for_all_three() -> None:
    d = spirometry(sex="male", age=50, height_cm=180).to_dict()
    for m in ("fev1", "fvc", "fev1_fvc"):
        assert d[m]["predicted"] > 0 and d[m]["z"] is None
    assert d["fev1_fvc"]["predicted"] < 1


def test_off_grid_age_is_interpolated_between_quarter_years() -> None:
    def pred(age: str) -> Decimal:
        return spirometry(sex="male", age=age, height_cm=175, fev1_l="3").measures["fev1"].predicted

    lo, mid, hi = pred("40"), pred("40.125"), pred("40.25")
    assert min(lo, hi) <= mid <= max(lo, hi)


def test_ethnicity_ignored_with_warning_for_race_neutral() -> None:
    res = spirometry(sex="male", age=40, height_cm=175, ethnicity="caucasian", fev1_l="3")
    assert res.warnings and "race-neutral" in res.warnings[0]


def test_severity_interpretation() -> None:
    assert (
        spirometry(sex="male", age=40, height_cm=175, fev1_l="3.9").measures["fev1"].interpretation
        == "normal"
    )
    mild = spirometry(sex="male", age=40, height_cm=175, fev1_l="2.5").measures["fev1"]  # z = -2.411
    assert mild.interpretation == "mild"
    moderate = spirometry(sex="male", age=40, height_cm=175, fev1_l="2.3").measures["fev1"]
    assert moderate.z is not None and moderate.z < Decimal("-2.5") and moderate.interpretation == "moderate"
    assert (
        spirometry(sex="male", age=40, height_cm=175, fev1_l="1.0").measures["fev1"].interpretation
        == "severe"
    )
    assert (
        spirometry(sex="male", age=40, height_cm=175, fev1_l="6").measures["fev1"].interpretation
        == "above-uln"
    )


@settings(max_examples=25, deadline=None)
@given(
    age=st.decimals(min_value=3, max_value=95, places=2),
    height=st.decimals(min_value=90, max_value=200, places=1),
    sex=st.sampled_from(["male", "female"]),
)
def test_observed_at_predicted_is_z0_and_100_percent(age: Decimal, height: Decimal, sex: str) -> None:
    base = spirometry(sex=sex, age=age, height_cm=height).measures["fev1"]
    at = spirometry(sex=sex, age=age, height_cm=height, fev1_l=str(base.predicted)).measures["fev1"]
    assert abs(at.z) <= Decimal("0.01")
    assert abs(at.percent_predicted - 100) <= Decimal("0.01")
    at_lln = spirometry(sex=sex, age=age, height_cm=height, fev1_l=str(base.lln)).measures["fev1"]
    assert abs(at_lln.z + Decimal("1.645")) <= Decimal("0.01")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"age": 2}, "age_years"),
        ({"age": 300}, "age_years"),
        ({"age": "old"}, "age_years"),
        ({"height_cm": 0}, "height_cm"),
        ({"sex": "x"}, "sex"),
        ({"equation": "nhanes"}, "equation"),
        ({"equation": "gli2012"}, "ethnicity"),
        ({"equation": "gli2012", "ethnicity": "martian"}, "ethnicity"),
        ({"fev1_l": "-1"}, "fev1_l"),
        ({"fvc_l": "0"}, "fvc_l"),
        ({"fev1_fvc": "75"}, "fev1_fvc"),
    ],
)
def test_bad_input(kwargs: dict, field: str) -> None:
    args = {"sex": "male", "age": 40, "height_cm": 175, **kwargs}
    with pytest.raises(InvalidInput) as exc:
        spirometry(**args)
    assert exc.value.field == field and exc.value.accepted


def test_choices_ignore_case_and_spaces() -> None:
    res = spirometry(
        sex=" Male", age=40, height_cm=175, equation="GLI2012", ethnicity="Caucasian ", fev1_l="3"
    )
    assert res.inputs["sex"] == "male" and res.inputs["ethnicity"] == "caucasian"
    assert res.measures["fev1"].percent_predicted == Decimal("73.57")
