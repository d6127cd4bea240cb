"""FHIR R4 export: validates with fhir.resources (R4B), uses LOINC codes, and round-trips into a registry."""

from __future__ import annotations

import json

import pytest
from fhir.resources.R4B.bundle import Bundle

from immunoplan.errors import InvalidInput
from immunoplan.registry.db import open_registry
from immunoplan.registry.fhir import export_bundle, import_bundle, validate_bundle
from immunoplan.services import records as rec
from immunoplan.synthetic import create_demo

KINDS = [
    ("total_ige_iu_ml", "", 185.5),
    ("sige_kua_l", "d1", 48.8),
    ("eosinophils_10e9_l", "", 0.58),
    ("feno_ppb", "", 40.2),
    ("fev1_l", "", 2.9),
    ("fev1_pct_pred", "", 79.5),
    ("fev1_fvc_pct", "", 73.5),
]


@pytest.fixture(scope="module")
def demo_bundle(tmp_path_factory):
    """A small registry built through the use cases, holding every exported resource type."""
    reg = open_registry(tmp_path_factory.mktemp("fhir") / "small.sqlite")
    rec.register_patient(
        reg,
        "t",
        pseudo_id="F-1",
        sex="female",
        birth_date="1979-05-01",
        display_name="Ann Example",
        cohort="seed001",
        study_group="Omb+SCIT",
        diagnoses=[{"code": "allergic_asthma", "allergen": "d1", "label": "HDM"}],
    )
    rec.record_visit(
        reg, "t", pseudo_id="F-1", code="baseline", visit_on="2024-01-02", week=0, medication_score=3
    )
    for kind, allergen, value in KINDS:
        rec.record_measurement(
            reg,
            "t",
            pseudo_id="F-1",
            kind=kind,
            allergen=allergen,
            value=value,
            measured_on="2024-01-02",
            visit_code="baseline",
        )
    rec.record_questionnaire(
        reg,
        "t",
        pseudo_id="F-1",
        instrument="ACT",
        score=17,
        completed_on="2024-01-02",
        items=[3, 3, 4, 3, 4],
    )
    c = rec.plan_course(
        reg,
        "t",
        pseudo_id="F-1",
        kind="SCIT",
        product="Alutard SQ",
        target_dose="100000",
        dose_unit="SQ-U",
        with_omalizumab=True,
        omalizumab_timing="concurrent",
        started_on="2024-01-02",
    )
    inj = rec.record_injection(
        reg,
        "t",
        course_id=c["id"],
        given_at="2024-01-02T09:00",
        dose="20",
        dose_unit="SQ-U",
        volume_ml="0.2",
        vial="1",
        lot="L1",
    )
    om = rec.record_omalizumab(
        reg,
        "t",
        pseudo_id="F-1",
        given_at="2024-01-02T08:30",
        dose_mg="300",
        course_id=c["id"],
        interval_weeks=4,
    )
    rec.record_reaction(
        reg,
        "t",
        pseudo_id="F-1",
        kind="local",
        grade="local",
        scale="seed001",
        scale_version="2025",
        findings=["erythema"],
        onset_at="2024-01-02T09:40",
        injection_id=inj["id"],
        outcome="resolved",
    )
    rec.record_reaction(
        reg,
        "t",
        pseudo_id="F-1",
        kind="systemic",
        grade="mild",
        scale="seed001",
        scale_version="2025",
        findings=["urticaria"],
        onset_at="2024-01-02T09:00",
        omalizumab_administration_id=om["id"],
    )
    yield reg, export_bundle(reg)
    reg.dispose()


def test_demo_cohort_subset_exports_a_valid_bundle(tmp_path):
    reg = open_registry(tmp_path / "demo.sqlite")
    create_demo(reg, seed=4, patients=6)
    bundle = export_bundle(reg, pseudo_ids=["S001-001", "S001-019", "S000-000001"])
    assert (
        len({e["resource"]["subject"]["reference"] for e in bundle["entry"] if "subject" in e["resource"]})
        == 3
    )
    reg.dispose()


def _resources(bundle, kind=None):
    return [e["resource"] for e in bundle["entry"] if kind is None or e["resource"]["resourceType"] == kind]


def test_bundle_validates_and_has_every_resource_type(demo_bundle):
    _, bundle = demo_bundle
    parsed = Bundle.model_validate(json.loads(json.dumps(bundle)))
    assert parsed.type == "collection"
    kinds = {r["resourceType"] for r in _resources(bundle)}
    assert kinds == {
        "Patient",
        "Observation",
        "AllergyIntolerance",
        "MedicationAdministration",
        "Procedure",
        "AdverseEvent",
        "Encounter",
    }


@pytest.mark.parametrize(
    ("kind", "allergen", "loinc"),
    [
        ("total_ige_iu_ml", "", "19113-0"),
        ("sige_kua_l", "d1", "6844-5"),
        ("eosinophils_10e9_l", "", "26449-9"),
        ("fev1_pct_pred", "", "20152-5"),
    ],
)
def test_observations_carry_loinc_codes(demo_bundle, kind, allergen, loinc):
    _, bundle = demo_bundle
    for obs in _resources(bundle, "Observation"):
        codes = {c["system"]: c["code"] for c in obs["code"]["coding"]}
        if codes.get("urn:immunoplan:measurement") == kind:
            assert codes["http://loinc.org"] == loinc
            return
    pytest.fail(f"no {kind} observation")


def test_feno_without_verified_loinc_uses_the_local_code(demo_bundle):
    _, bundle = demo_bundle
    feno = [
        o
        for o in _resources(bundle, "Observation")
        if any(c["code"] == "feno_ppb" for c in o["code"]["coding"])
    ]
    assert feno and all(len(o["code"]["coding"]) == 1 for o in feno)
    assert feno[0]["valueQuantity"]["unit"] == "ppb"


def test_round_trip_into_an_empty_registry(demo_bundle, tmp_path):
    _, bundle = demo_bundle
    linked = [o for o in _resources(bundle, "Observation") if o.get("encounter")]
    assert len(linked) == len(KINDS)  # the visit link travels as Observation.encounter
    target = open_registry(tmp_path / "copy.sqlite")
    counts = import_bundle(target, json.loads(json.dumps(bundle)), "fhir-import")
    assert counts == {
        "patients": 1,
        "diagnoses": 1,
        "courses": 1,
        "measurements": 7,
        "questionnaires": 1,
        "visits": 1,
        "injections": 1,
        "omalizumab_administrations": 1,
        "reactions": 2,
    }
    again = export_bundle(target)
    assert _resources(again) == _resources(bundle)
    with pytest.raises(InvalidInput, match="already in the registry"):
        import_bundle(target, bundle, "fhir-import")
    target.dispose()


def test_invalid_bundles_are_rejected(tmp_path):
    with pytest.raises(InvalidInput, match="bundle"):
        validate_bundle({"resourceType": "Bundle"})  # type is required
    reg = open_registry(tmp_path / "r.sqlite")
    dangling = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": "measurements-1",
                    "status": "final",
                    "code": {"coding": [{"system": "urn:immunoplan:measurement", "code": "feno_ppb"}]},
                    "subject": {"reference": "Patient/patients-9"},
                    "valueQuantity": {"value": 20, "unit": "ppb"},
                }
            }
        ],
    }
    with pytest.raises(InvalidInput, match="not in the bundle"):
        import_bundle(reg, dangling, "x")
    reg.dispose()
