"""Every rule in the assess_* data is exercised (fires; is met and unmet), and every file is documented."""

from __future__ import annotations

from pathlib import Path

from immunoplan import reference
from immunoplan.clinical.eligibility import eligibility
from immunoplan.clinical.risk import risk

DOCS = Path(__file__).resolve().parents[2] / "docs" / "assessment.md"

RISK_SCENARIOS = [
    dict(age=30, total_ige=100, sige=1),  # low
    dict(age=14, total_ige=420, sige=68),  # high, ratio > 16, child, high sIgE and total IgE
    dict(age=30, total_ige=1000, sige=50),  # elevated
    dict(age=30, total_ige=100, sige="0.1"),  # class 0
    dict(
        age=7,
        total_ige=100,
        sige=1,
        asthma_control="uncontrolled",
        fev1_percent_predicted=65,
        beta_blocker=True,
    ),
    dict(age=4, total_ige=100, sige=1),
]


def test_every_sr_rule_fires_in_some_scenario() -> None:
    data = reference.load("assess_sr_risk")
    expected = {t["id"] for t in data["tiers"]} | {c["id"] for c in data["cautions"]}
    expected |= {data["not_sensitized"]["id"], data["efficacy"]["id"]}
    expected |= {f"omalizumab_{v['advice']}" for v in data["omalizumab_pretreatment"].values()}
    expected |= {"age_group_adult", "age_group_child-adolescent"}
    fired = {r.rule for s in RISK_SCENARIOS for r in risk(**s).rules}
    assert expected <= fired, expected - fired


ELIG_SCENARIOS = [
    dict(
        age=40,
        total_ige=300,
        weight_kg=70,
        eosinophils=400,
        feno=40,
        perennial_sensitization=True,
        severity="severe",
        uncontrolled=True,
        ocs_dependent=True,
    ),
    dict(
        age=8,
        total_ige=2000,
        weight_kg=15,
        eosinophils=100,
        feno=10,
        perennial_sensitization=False,
        severity="mild",
        uncontrolled=False,
        ocs_dependent=False,
    ),
    dict(
        age=4,
        total_ige=10,
        weight_kg=200,
        eosinophils=100,
        feno=10,
        perennial_sensitization=False,
        severity="mild",
        uncontrolled=False,
        ocs_dependent=False,
    ),
    dict(
        age=8,
        total_ige=300,
        weight_kg=25,
        eosinophils=400,
        feno=40,
        perennial_sensitization=True,
        severity="severe",
        uncontrolled=True,
        ocs_dependent=True,
    ),
    dict(
        age=40,
        total_ige=10,
        weight_kg=200,
        eosinophils=100,
        feno=10,
        perennial_sensitization=False,
        severity="mild",
        uncontrolled=False,
        ocs_dependent=False,
    ),
]


def test_every_biologic_criterion_is_seen_met_and_unmet() -> None:
    seen: dict[str, set] = {}
    for s in ELIG_SCENARIOS:
        for b in eligibility(**s).biologics:
            for c in b.criteria:
                seen.setdefault(f"{b.biologic}.{c.criterion}", set()).add(c.met)
    data = reference.load("assess_biologics")
    for drug in data["biologics"]:
        for crit in drug["criteria"]:
            key = f"{drug['id']}.{crit['id']}"
            assert seen.get(key) == {True, False}, key


def test_every_assess_file_is_documented_with_provenance() -> None:
    text = DOCS.read_text(encoding="utf-8")
    names = [n for n in reference.available() if n.startswith("assess_")]
    assert len(names) == 5
    for name in names:
        assert f"`{name}.json`" in text, name
        data = reference.load(name)
        assert data["version"] in text
