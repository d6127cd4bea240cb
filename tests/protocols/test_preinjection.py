"""Pre-injection check (clinical/immunotherapy/preinjection.py, reference/data/scit_preinjection.json): every
rule fires at its threshold as the data says, unanswered questions fire nothing, bad input is refused."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from immunoplan import reference
from immunoplan.clinical.immunotherapy.preinjection import (
    check_questions,
    evaluate_check,
    parse_check_answers,
)
from immunoplan.errors import InvalidInput
from immunoplan.reference import limits

DATA = reference.load("scit_preinjection")
QUESTIONS = {q["id"]: q for q in DATA["questions"]}
YES_NO = [q for q in DATA["questions"] if q["kind"] == "yes-no"]
NUMBERS = [q for q in DATA["questions"] if q["kind"] == "number"]
STEP = Decimal("0.1")


def _fired(outcome, qid: str) -> str | None:
    for f in outcome.holds:
        if f.id == qid:
            return "hold"
    for f in outcome.warnings:
        if f.id == qid:
            return "warn"
    return None


def test_the_data_covers_the_issue_and_every_rule_has_a_source() -> None:
    ids = set(QUESTIONS)
    for wanted in (
        "asthma_worse",
        "pef_pct_best",
        "fev1_pct_pred",
        "beta_blocker",
        "ace_inhibitor",
        "fever_infection",
        "systemic_reaction_last",
        "large_local_reaction_last",
        "vaccination_recent",
    ):
        assert wanted in ids
    assert "omalizumab_recent" in {o["id"] for o in DATA["omitted"]}, "left out, and said so"
    for q in DATA["questions"]:
        assert q["action"] in ("hold", "warn")
        assert q["status"] in reference.STATUSES and q["source"]
        assert q["id"].replace("_", "").isalnum() and q["id"] == q["id"].lower()
        if q["kind"] == "number":
            assert limits.limit(q["limit"]).unit == q["unit"] == "%"
    # the thresholds no source gives are marked so
    assert QUESTIONS["pef_pct_best"]["status"] == "UNVERIFIED"
    assert QUESTIONS["ace_inhibitor"]["status"] == "UNVERIFIED"


def test_check_questions_is_data_in_asking_order_and_a_copy() -> None:
    qs = check_questions()
    assert [q["id"] for q in qs] == [q["id"] for q in DATA["questions"]]
    pef = next(q for q in qs if q["id"] == "pef_pct_best")
    assert pef["accepted"] == "[5, 200] %" and pef["threshold"] == "below 80 %"
    assert next(q for q in qs if q["id"] == "beta_blocker")["accepted"] == "yes or no"
    qs[0]["question"] = "changed"
    assert check_questions()[0]["question"] != "changed"


@pytest.mark.parametrize("q", YES_NO, ids=lambda q: q["id"])
def test_each_yes_no_rule_fires_on_yes_only(q) -> None:
    yes = evaluate_check({q["id"]: "yes"})
    assert _fired(yes, q["id"]) == q["action"]
    assert yes.hold is (q["action"] == "hold")
    fired = (yes.holds + yes.warnings)[0]
    assert fired.answer is True and fired.basis.rule == q["id"]
    assert fired.basis.status == q["status"] and fired.basis.id == "scit_preinjection"
    no = evaluate_check({q["id"]: "no"})
    assert _fired(no, q["id"]) is None and not no.hold
    assert no.answers == {q["id"]: False}


def test_pef_holds_below_80_percent_of_best_and_not_at_80() -> None:
    threshold = Decimal(QUESTIONS["pef_pct_best"]["fires"]["below"])
    assert threshold == 80
    assert _fired(evaluate_check({"pef_pct_best": threshold - STEP}), "pef_pct_best") == "hold"
    assert _fired(evaluate_check({"pef_pct_best": threshold}), "pef_pct_best") is None
    assert _fired(evaluate_check({"pef_pct_best": threshold + STEP}), "pef_pct_best") is None
    out = evaluate_check({"pef_pct_best": "79.9"})
    assert out.holds[0].basis.status == "UNVERIFIED"
    assert out.answers["pef_pct_best"] == Decimal("79.9")


@pytest.mark.parametrize(
    "age, threshold",
    [("40", "70"), ("18", "70"), ("17.9", "80"), ("8", "80"), (None, "80")],
)
def test_fev1_holds_below_the_smpc_limit_for_the_age(age, threshold) -> None:
    t = Decimal(threshold)
    below = evaluate_check({"fev1_pct_pred": t - STEP}, age_years=age)
    assert _fired(below, "fev1_pct_pred") == "hold"
    assert below.holds[0].basis.status == "VERIFIED"
    if age is None:
        assert "age not given" in below.holds[0].text
    assert _fired(evaluate_check({"fev1_pct_pred": t}, age_years=age), "fev1_pct_pred") is None
    assert _fired(evaluate_check({"fev1_pct_pred": t + STEP}, age_years=age), "fev1_pct_pred") is None


def test_fev1_limits_are_the_smpc_numbers() -> None:
    fires = QUESTIONS["fev1_pct_pred"]["fires"]
    assert fires["below"] == {"adult": "70", "child": "80"} and fires["child_under_age_years"] == 18


def test_unanswered_fires_nothing_and_is_listed() -> None:
    out = evaluate_check({})
    assert not out.hold and not out.holds and not out.warnings
    assert out.to_dict()["unanswered"] == list(QUESTIONS)
    out = evaluate_check({"beta_blocker": None, "pef_pct_best": "  ", "fever_infection": "no"})
    d = out.to_dict()
    assert "beta_blocker" in d["unanswered"] and "pef_pct_best" in d["unanswered"]
    assert "fever_infection" not in d["unanswered"] and d["answers"] == {"fever_infection": False}


def test_a_full_form_collects_every_hold_and_warning() -> None:
    answers = {q["id"]: "yes" for q in YES_NO} | {"pef_pct_best": "50", "fev1_pct_pred": "50"}
    out = evaluate_check(answers, age_years=30)
    holds = {q["id"] for q in DATA["questions"] if q["action"] == "hold"}
    warns = {q["id"] for q in DATA["questions"] if q["action"] == "warn"}
    assert {f.id for f in out.holds} == holds and {f.id for f in out.warnings} == warns
    d = out.to_dict()
    assert d["hold"] is True and d["unanswered"] == [] and d["age_years"] == "30"
    assert d["holds"][0]["basis"]["rule"] == d["holds"][0]["id"]
    assert d["basis"]["id"] == "scit_preinjection"


def test_answers_are_normalised() -> None:
    out = evaluate_check({"Beta-Blocker": "YES", "asthma_worse": False, "fev1_pct_pred": 85.5}, age_years=40)
    assert out.answers == {"beta_blocker": True, "asthma_worse": False, "fev1_pct_pred": Decimal("85.5")}


@pytest.mark.parametrize(
    "answers, field",
    [
        ({"pef_pct_best": "5000"}, "pef_pct_best"),
        ({"pef_pct_best": "4"}, "pef_pct_best"),
        ({"fev1_pct_pred": "-1"}, "fev1_pct_pred"),
        ({"fev1_pct_pred": "abc"}, "fev1_pct_pred"),
        ({"pef_pct_best": True}, "pef_pct_best"),
        ({"asthma_worse": "maybe"}, "asthma_worse"),
        ({"beta_blocker": 3}, "beta_blocker"),
        ({"no_such_question": "yes"}, "check"),
        ({"beta_blocker": "yes", "beta-blocker": "no"}, "check"),
    ],
)
def test_bad_answers_are_refused_naming_the_question_and_the_range(answers, field) -> None:
    with pytest.raises(InvalidInput) as exc:
        evaluate_check(answers)
    assert exc.value.field == field and exc.value.accepted
    if field == "pef_pct_best" and answers[field] != True:  # noqa: E712 - a bool is refused as a bool
        assert exc.value.accepted == "[5, 200] %"


def test_a_bad_age_is_refused() -> None:
    with pytest.raises(InvalidInput) as exc:
        evaluate_check({"fev1_pct_pred": "75"}, age_years="200")
    assert exc.value.field == "age_years"


def test_parse_check_answers_reads_cli_pairs() -> None:
    got = parse_check_answers(["pef-pct-best=85", "Fever_Infection = no ", "beta_blocker=yes"])
    assert got == {"pef_pct_best": "85", "fever_infection": "no", "beta_blocker": "yes"}
    assert evaluate_check(got).hold  # beta-blocker
    assert parse_check_answers([]) == {}


@pytest.mark.parametrize(
    "pairs, in_accepted",
    [
        (["foo=1"], "asthma_worse"),
        (["asthma_worse"], "beta_blocker"),
        (["asthma_worse=maybe"], "yes or no"),
        (["pef_pct_best=5000"], "[5, 200] %"),
        (["pef_pct_best="], "[5, 200] %"),
        (["beta_blocker=yes", "beta-blocker=no"], "beta_blocker"),
    ],
)
def test_parse_check_answers_refuses_bad_pairs(pairs, in_accepted) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_check_answers(pairs)
    assert exc.value.field == "check"
    assert exc.value.accepted and in_accepted in exc.value.accepted


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from([q["id"] for q in NUMBERS]),
    value=st.decimals(min_value=5, max_value=200, places=2, allow_nan=False, allow_infinity=False),
    age=st.one_of(st.none(), st.integers(0, 120)),
)
def test_numeric_answers_hold_exactly_below_their_threshold(name: str, value: Decimal, age) -> None:
    q = QUESTIONS[name]
    fires = q["fires"]
    if isinstance(fires["below"], dict):
        group = "child" if age is None or age < fires["child_under_age_years"] else "adult"
        threshold = Decimal(fires["below"][group])
    else:
        threshold = Decimal(fires["below"])
    out = evaluate_check({name: str(value)}, age_years=age)
    assert out.hold is (value < threshold)
    assert out.answers[name] == value
    assert out.unanswered == [i for i in QUESTIONS if i != name]


@settings(max_examples=100, deadline=None)
@given(
    value=st.one_of(
        st.decimals(max_value=Decimal("4.99"), places=2), st.decimals(min_value=Decimal("200.01"), places=2)
    )
)
def test_out_of_range_percentages_are_refused(value: Decimal) -> None:
    if not value.is_finite():
        return
    with pytest.raises(InvalidInput) as exc:
        evaluate_check({"pef_pct_best": value})
    assert exc.value.field == "pef_pct_best"
