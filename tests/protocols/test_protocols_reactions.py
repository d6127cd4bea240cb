"""Reaction grading: each scale against its published criteria (protocols.md section 5), plus the CLI."""

from __future__ import annotations

from decimal import Decimal

import pytest

from immunoplan.clinical.reactions import Findings, grade, suffix
from immunoplan.errors import InvalidInput


def F(*symptoms: str, **kw) -> Findings:  # noqa: N802 - short test constructor
    return Findings(symptoms=frozenset(symptoms), **kw)


@pytest.mark.parametrize(
    ("minutes", "letter"),
    [
        (Decimal(0), "a"),
        (Decimal(5), "a"),
        (Decimal("5.1"), "b"),
        (Decimal(10), "b"),
        (Decimal(11), "c"),
        (Decimal(20), "c"),
        (Decimal(21), "d"),
        (None, "z"),
    ],
)
def test_wao_epinephrine_suffix_bands(minutes, letter) -> None:
    assert suffix(minutes) == letter


@pytest.mark.parametrize("scale", ["wao2010", "wao2017"])
@pytest.mark.parametrize(
    ("findings", "expected"),
    [
        (F("urticaria"), "1"),
        (F("rhinitis"), "1"),
        (F("conjunctivitis"), "1"),
        (F("nausea"), "1"),
        (F("urticaria", "rhinitis"), "2"),  # more than one organ system
        (F("vomiting"), "2"),  # gastrointestinal
        (F("uterine_cramps"), "2"),
        (F("wheeze", bronchodilator_response="responds"), "2"),
        (F("wheeze", bronchodilator_response="not-responding"), "3"),
        (F("laryngeal_edema", "stridor"), "3"),
        (F("hypotension"), "4"),
        (F("respiratory_failure", "urticaria"), "4"),
        (F("urticaria", death=True), "5"),
        (F("local_swelling"), None),
    ],
)
def test_wao_grades_both_versions(scale, findings, expected) -> None:
    g = grade(scale, findings)
    assert g.grade == expected
    assert g.scale == scale and "WAO" in g.scale_version


def test_wao_differences_between_2010_and_2017() -> None:
    # laryngeal edema without stridor: grade 3 in 2010, not grade 3 in 2017
    assert grade("wao2010", F("laryngeal_edema")).grade == "3"
    assert grade("wao2017", F("laryngeal_edema")).grade == "1"
    # tongue edema: grade 3 in 2010; non-laryngeal angioedema (grade 1) in 2017
    assert grade("wao2010", F("tongue_edema")).grade == "3"
    assert grade("wao2017", F("tongue_edema")).grade == "1"
    # loss of consciousness alone is grade 4 only in 2017, and not when vasovagal
    assert grade("wao2017", F("loss_of_consciousness")).grade == "4"
    assert grade("wao2017", F("loss_of_consciousness", "urticaria", vasovagal=True)).grade == "1"
    # headache is 'other' in 2010 only
    assert grade("wao2010", F("headache")).grade == "1"
    assert grade("wao2017", F("headache")).grade is None


def test_wao_report_format() -> None:
    """'Grade 2a; rhinitis: 10 min' is the example in Cox 2010."""
    g = grade(
        "wao2010",
        F(
            "rhinitis",
            "urticaria",
            first_symptom="rhinitis",
            onset_minutes=Decimal(10),
            epinephrine_minutes=Decimal(3),
        ),
    )
    assert g.report == "Grade 2a; rhinitis: 10 min"


@pytest.mark.parametrize(
    ("findings", "expected", "status"),
    [
        (F("urticaria", "angioedema"), "mild", "VERIFIED"),
        (F("urticaria", "wheeze"), "moderate", "VERIFIED"),
        (F("vomiting"), "moderate", "VERIFIED"),
        (F("presyncope", "urticaria"), "moderate", "VERIFIED"),
        (F("confusion"), "severe", "VERIFIED"),
        (F("collapse", "urticaria"), "severe", "VERIFIED"),
        (F("incontinence"), "severe", "VERIFIED"),
        (F("urticaria", "hypotension"), "severe", "SECONDARY"),  # numeric criteria read as a quotation
        (F("wheeze", spo2_pct=Decimal(90)), "severe", "SECONDARY"),  # SpO2 <= 92 %
        (F("wheeze", spo2_pct=Decimal(92)), "severe", "SECONDARY"),  # at the threshold
        (F("wheeze", spo2_pct=Decimal("92.1")), "moderate", "VERIFIED"),
        (F("urticaria", sbp_mmhg=Decimal(89)), "severe", "SECONDARY"),  # SBP < 90 mmHg (adults)
        (F("urticaria", sbp_mmhg=Decimal(90)), "mild", "VERIFIED"),
        (F("urticaria", sbp_mmhg=Decimal(70), adult=False), "mild", "VERIFIED"),  # adult criterion: warned
        (F("confusion", spo2_pct=Decimal(85)), "severe", "VERIFIED"),  # neurological: read in the abstract
        (F("rhinitis"), None, "VERIFIED"),
    ],
)
def test_brown_2004(findings, expected, status) -> None:
    g = grade("brown2004", findings)
    assert (g.grade, g.basis.status) == (expected, status)


@pytest.mark.parametrize(
    ("findings", "irr", "allergic"),
    [
        (F("flushing"), "1", "1"),
        (F("flushing", infusion_interrupted=True, intervention="oral"), "2", "2"),
        (F("flushing", infusion_interrupted=True, prompt_response=False), "3", "1"),
        (F("urticaria", recurrence=True), "3", "1"),
        (F("wheeze"), "1", "3"),
        (F("urticaria", intervention="iv"), "2", "3"),
        (F("urticaria", hospitalization=True), "3", "3"),
        (F("hypotension", life_threatening=True), "4", "4"),
        (F("hypotension", treatments=frozenset({"epinephrine"})), "4", "4"),
        (F("urticaria", death=True), "5", "5"),
    ],
)
def test_ctcae(findings, irr, allergic) -> None:
    assert grade("ctcae-irr", findings).grade == irr
    assert grade("ctcae-allergic", findings).grade == allergic
    assert "CTCAE v6.0" in grade("ctcae-irr", findings).scale_version


@pytest.mark.parametrize(
    ("findings", "expected"),
    [
        (F("local_swelling", "local_erythema"), "local"),
        (F("urticaria"), "mild"),
        (F("wheeze", treatments=frozenset({"bronchodilator"})), "mild"),
        (F("generalized_urticaria", treatments=frozenset({"antihistamine"})), "moderate"),
        (F("wheeze", persistent=True, treatments=frozenset({"bronchodilator"})), "moderate"),
        (F("vomiting", treatments=frozenset({"antiemetic"})), "moderate"),
        (F("wheeze", treatments=frozenset({"emergency_bronchodilator"})), "severe"),
        (F("airway_angioedema"), "severe"),
        (F("hypotension", treatments=frozenset({"epinephrine"})), "severe"),
        (F("anaphylactic_shock"), "severe"),
    ],
)
def test_seed001_classes(findings, expected) -> None:
    g = grade("seed001", findings)
    assert g.grade == expected and g.scale_version.startswith("seed 001")
    if expected == "severe":
        assert any("discontinuation" in w for w in g.warnings)


@pytest.mark.parametrize(
    ("findings", "expected"),
    [
        (F("urticaria", "flushing"), "type I"),
        (F("chills", "fever"), "cytokine release"),
        (F("pain", "urticaria"), "mixed"),  # seed 004: pain and shivering/fever indicate cytokine release
        (F("nausea", biomarkers=frozenset({"il6_elevated", "tryptase_elevated"})), "mixed"),
        (F("local_swelling"), "undetermined"),
    ],
)
def test_phenotypes(findings, expected) -> None:
    assert grade("phenotype", findings).grade == expected


def test_complement_is_only_a_flagged_possibility() -> None:
    g = grade("phenotype", F("flushing", complement_prone_drug=True))
    assert g.grade == "type I" and any("UNVERIFIED" in w for w in g.warnings)


def test_bad_findings_are_named_errors() -> None:
    with pytest.raises(InvalidInput) as e:
        F("not-a-symptom")
    assert e.value.field == "symptom"
    with pytest.raises(InvalidInput):
        F()
    with pytest.raises(InvalidInput) as e:
        F("urticaria", epinephrine_minutes=Decimal(-1))
    assert e.value.field == "epinephrine_minutes"
    with pytest.raises(InvalidInput) as e:
        grade("nope", F("urticaria"))
    assert e.value.field == "scale"


def test_grade_cli(cli) -> None:
    r = cli(
        "grade",
        "--scale",
        "wao2017",
        "--symptom",
        "rhinitis",
        "--symptom",
        "urticaria",
        "--first-symptom",
        "rhinitis",
        "--onset-minutes",
        "10",
        "--epinephrine-minutes",
        "7",
        "--json",
    )
    assert r.code == 0
    assert (r.json["grade"], r.json["suffix"], r.json["scale"]) == ("2", "b", "wao2017")
    assert r.json["report"] == "Grade 2b; rhinitis: 10 min" and r.json["scale_version"].startswith("WAO 2017")
    r = cli("grade", "--scale", "all", "--symptom", "urticaria", "--json")
    assert len(r.json["grades"]) == 7
    assert cli("grade", "--scale", "all", "--symptom", "urticaria").code == 0


@pytest.mark.parametrize(
    "args",
    [
        ["--scale", "wao9"],
        ["--scale", "wao2017", "--symptom", "itchy"],
        ["--scale", "wao2017", "--symptom", "wheeze", "--bronchodilator-response", "maybe"],
        ["--scale", "wao2017", "--symptom", "urticaria", "--epinephrine-minutes", "x"],
        ["--scale", "wao2017"],
    ],
)
def test_grade_cli_bad_input(cli, args) -> None:
    r = cli("grade", *args, "--json")
    assert r.code == 2 and r.stdout == "" and r.stderr.count("\n") == 1


def test_brown_grades_on_spo2_and_systolic_bp_other_scales_do_not() -> None:
    low = F("urticaria", sbp_mmhg=Decimal(70), spo2_pct=Decimal(85))
    g = grade("brown2004", low)
    assert g.grade == "severe" and g.basis.status == "SECONDARY"
    assert any("SpO2 85" in r for r in g.reasons) and any("systolic BP 70" in r for r in g.reasons)
    assert "PMC9156473" in g.basis.source
    assert grade("wao2017", low).grade == "1"
    assert any("not used to grade" in w for w in grade("wao2017", low).warnings)
    child = grade("brown2004", F("urticaria", sbp_mmhg=Decimal(70), adult=False))
    assert child.grade == "mild" and any("for adults" in w for w in child.warnings)
    with pytest.raises(InvalidInput) as e:
        F("urticaria", spo2_pct=Decimal(120))
    assert e.value.field == "spo2_pct"


def test_brown_names_findings_it_cannot_place_without_lowering_the_grade() -> None:
    g = grade("brown2004", F("wheeze", "fever", "chills"))
    assert g.grade == "moderate"
    assert any("fever" in w and "chills" in w and "not lowered" in w for w in g.warnings)
    assert grade("brown2004", F("confusion", "fever")).grade == "severe"


def test_choices_list_every_accepted_value() -> None:
    from immunoplan.services.protocols import choices

    c = choices()
    assert "alutard-sq-hdm" in c["scit_products"] and c["scit_products"]["alutard-sq-hdm"]["regimens"][
        "rush"
    ] == ("UNVERIFIED")
    assert "wao2017" in c["grading_scales"] and "urticaria" in c["symptoms"]
    assert "uptodate-platinum" in c["rdd_premedication"] and "brandstrom-peanut" in c["oit_regimens"]


def test_wao_names_the_symptoms_it_does_not_grade_on() -> None:
    g = grade("wao2010", F("urticaria", "chest_tightness", "fever"))
    assert g.grade == "1"
    assert any("chest_tightness" in w and "fever" in w for w in g.warnings)
    assert grade("brown2004", F("chest_tightness")).grade == "moderate"  # a Brown moderate feature
