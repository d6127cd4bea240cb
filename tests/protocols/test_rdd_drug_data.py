"""Per-drug preparation data (rdd_drug_preparation), BSA and the usual-dose plausibility check, in the
clinical core and through the services (planner and session start)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from immunoplan import clock, reference
from immunoplan.clinical.desensitization import drug_data
from immunoplan.errors import InvalidInput
from immunoplan.registry.db import Registry, open_registry
from immunoplan.services import protocols
from immunoplan.services.records import desensitization as svc
from immunoplan.services.records import register_patient
from immunoplan.sheets.render import render_html

SEED_004_DRUGS = ("rituximab", "oxaliplatin", "carboplatin", "docetaxel", "paclitaxel")
OXA: dict[str, Any] = {
    "drug": "oxaliplatin",
    "bag_volume_ml": "250",
    "final_rate_ml_h": "80",
    "bags": 3,
    "start": "09:00",
    "session_on": "2026-12-01",
}


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = open_registry(tmp_path / "registry.sqlite")
    yield reg
    reg.dispose()


# ------------------------------------------------------------------------------------------------ the data


@pytest.mark.parametrize("drug", SEED_004_DRUGS)
def test_each_seed_004_drug_has_sourced_values(drug: str) -> None:
    entry = reference.load("rdd_drug_preparation")["drugs"][drug]
    for part in ("diluents", "concentration_mg_ml", "stability"):
        assert entry[part]["source"], (drug, part)
        assert entry[part]["status"] in reference.STATUSES, (drug, part)
    assert entry["dose"]["regimens"]
    for r in entry["dose"]["regimens"]:
        assert r["source"] and r["status"] in reference.STATUSES and r["regimen"]
        assert r["basis"] in ("per_m2", "per_kg", "flat")
    prep = drug_data.drug_preparation(drug)
    assert prep.diluent_sourced and prep.diluents and prep.basis


def test_oxaliplatin_glucose_only_never_sodium_chloride() -> None:
    prep = drug_data.drug_preparation("Oxaliplatin (Eloxatin)")
    assert prep.key == "oxaliplatin"
    assert prep.diluents == ["glucose 5 %"]
    assert not any("chloride" in d.lower() for d in prep.diluents)
    assert any("sodium chloride" in d for d in prep.never_diluents)
    assert (prep.concentration_min_mg_ml, prep.concentration_max_mg_ml) == (Decimal("0.2"), Decimal("0.7"))
    html = render_html(
        "rdd-pharmacy", protocols.plan_desensitization(**{**_plan(OXA), "dose_mg": "160"}).to_dict()
    )
    diluent_line = next(line for line in html.splitlines() if "<b>Diluent:</b>" in line)
    assert "glucose 5 % ONLY" in diluent_line and "Never:</b> sodium chloride" in diluent_line


def test_carboplatin_and_rituximab_allow_both_diluents() -> None:
    assert set(drug_data.drug_preparation("carboplatin").diluents) == {"glucose 5 %", "sodium chloride 0.9 %"}
    rit = drug_data.drug_preparation("MabThera")
    assert set(rit.diluents) == {"glucose 5 %", "sodium chloride 0.9 %"}
    assert (rit.concentration_min_mg_ml, rit.concentration_max_mg_ml) == (Decimal(1), Decimal(4))


def test_unknown_drug_has_no_sourced_diluent() -> None:
    prep = drug_data.drug_preparation("ceftazidime")
    assert not prep.diluent_sourced and prep.diluents == []
    assert "No sourced diluent" in (prep.message or "")


# --------------------------------------------------------------------------------------------------- BSA


@pytest.mark.parametrize(
    ("height", "weight", "expected"),
    [
        # Mosteller: sqrt(h x w / 3600); 175 cm 70 kg -> 1.845 m2 (worked example of the cited page)
        ("175", "70", Decimal("1.8447")),
        ("180", "80", Decimal("2.0000")),  # sqrt(14400/3600) = 2 exactly
        ("150", "54", Decimal("1.5000")),  # sqrt(8100/3600) = 1.5 exactly
        ("160", "90", Decimal("2.0000")),  # sqrt(14400/3600)
    ],
)
def test_bsa_mosteller_golden(height: str, weight: str, expected: Decimal) -> None:
    assert drug_data.bsa_m2(height, weight) == expected


def test_bsa_dubois_and_refusals() -> None:
    # DuBois 0.007184 x 175^0.725 x 70^0.425 = 1.848
    assert abs(drug_data.bsa_m2(175, 70, "dubois") - Decimal("1.848")) < Decimal("0.001")
    with pytest.raises(InvalidInput) as e:
        drug_data.bsa_m2(175, 70, "haycock")
    assert e.value.field == "bsa_formula"
    with pytest.raises(InvalidInput) as e:
        drug_data.bsa_m2(175, -1)
    assert e.value.field == "weight_kg"


@given(st.integers(100, 220), st.integers(20, 200))
def test_bsa_mosteller_squares_back(height: int, weight: int) -> None:
    bsa = drug_data.bsa_m2(height, weight)
    assert abs(bsa * bsa * 3600 - Decimal(height * weight)) < Decimal(height * weight) * Decimal("0.0002")


# ------------------------------------------------------------------------------------------- plausibility


def test_plausibility_core() -> None:
    ok = drug_data.dose_plausibility("oxaliplatin", 160, weight_kg=70, height_cm=175)
    assert ok.within is True and not ok.needs_confirmation and ok.bsa_m2 == Decimal("1.8447")
    far = drug_data.dose_plausibility("oxaliplatin", 1600, weight_kg=70, height_cm=175)
    assert far.within is False and far.needs_confirmation
    assert "85-130 mg/m2" in (far.message or "") and "Mosteller" in (far.message or "")
    unknown = drug_data.dose_plausibility("oxaliplatin", 1600)  # per m2 without height/weight
    assert unknown.within is None and not unknown.needs_confirmation
    assert drug_data.dose_plausibility("rituximab", 1000).within is True  # flat RA dose
    assert (
        drug_data.dose_plausibility("carboplatin", 1600).within is None
    )  # above 900 mg flat, per m2 unknown
    assert drug_data.dose_plausibility("ceftazidime", 2000).within is None


def _plan(over: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in over.items() if k != "session_on"}


def test_planner_refuses_oxaliplatin_1600_without_confirmation() -> None:
    kw = {**_plan(OXA), "dose_mg": "1600", "weight_kg": "70", "height_cm": "175"}
    with pytest.raises(InvalidInput) as e:
        protocols.plan_desensitization(**kw)
    assert e.value.field == "dose_mg"
    assert "85-130 mg/m2" in str(e.value) and "SmPC" in str(e.value)
    d = protocols.plan_desensitization(**kw, dose_confirmation="high-dose protocol, checked").to_dict()
    assert d["dose_confirmation"] == "high-dose protocol, checked"
    assert any("Dose confirmed by the clinician" in w for w in d["warnings"])


def test_session_start_refuses_1600_mg_for_a_registered_patient(registry: Registry) -> None:
    with clock.frozen("2026-12-01T08:00"):
        pid = int(
            register_patient(registry, "t", pseudo_id="X-1", sex="female", height_cm=175, weight_kg=70)["id"]
        )
        with pytest.raises(InvalidInput) as e:
            svc.start_session(registry, "dr", {**OXA, "dose_mg": "1600", "patient_id": pid})
        assert e.value.field == "dose_mg" and "157-240 mg" in str(e.value)
        with registry.session() as s:
            from immunoplan.registry import models as m

            assert s.query(m.DesensitizationSession).count() == 0
        done = svc.start_session(
            registry,
            "dr",
            {**OXA, "dose_mg": "1600", "patient_id": pid, "dose_confirmation": "confirmed with oncology"},
        )
        v = svc.session_view(registry, int(done["session_id"]))
        assert v["request"]["dose_confirmation"] == "confirmed with oncology"
        assert v["request"]["weight_kg"] == "70" and v["request"]["height_cm"] == "175"
        assert v["result"]["dose_plausibility"]["within"] is False
        # a usual dose needs no confirmation
        ok = svc.start_session(
            registry, "dr", {**OXA, "dose_mg": "160", "patient_id": pid, "session_on": "2026-12-02"}
        )
        assert ok["plan"]["dose_plausibility"]["within"] is True


def test_session_start_without_height_is_a_warning(registry: Registry) -> None:
    with clock.frozen("2026-12-01T08:00"):
        pid = int(register_patient(registry, "t", pseudo_id="X-2", sex="male")["id"])
        done = svc.start_session(registry, "dr", {**OXA, "dose_mg": "1600", "patient_id": pid})
        assert done["plan"]["dose_plausibility"]["within"] is None
        assert any("needs the patient's height and weight" in w for w in done["plan"]["warnings"])


def test_no_sourced_diluent_sheet_says_none_printed() -> None:
    d = protocols.plan_desensitization(
        drug="ceftazidime",
        dose_mg="2000",
        bag_volume_ml="250",
        final_rate_ml_h="80",
        bags=3,
        stock_mg_ml="100",
    ).to_dict()
    assert d["drug_preparation"]["diluent_sourced"] is False
    html = render_html("rdd-pharmacy", d)
    assert "NO DILUENT PRINTED" in html and "<b>Diluent:</b>" not in html
    assert "diluent: not printed, no source" in html
    assert "glucose" not in html.lower() and "sodium chloride" not in html.lower()


def test_bag_concentration_against_label_limits() -> None:
    d = protocols.plan_desensitization(**{**_plan(OXA), "dose_mg": "160"}).to_dict()
    positions = [c.position for c in d["concentration_checks"]]
    assert positions[0] == "below" and positions[-1] == "within"
    assert any(
        w.startswith("Bag 1:") and "below the label's final-concentration range" in w for w in d["warnings"]
    )
    # a final bag above the label's maximum (oxaliplatin 0.7 mg/mL): 250 mg in 250 mL
    hi = protocols.plan_desensitization(**{**_plan(OXA), "dose_mg": "250", "bags": 1, "override_reason": "t"})
    assert hi.to_dict()["concentration_checks"][-1].position == "above"


def test_16_step_bag_1_rounding_flagged_in_plan_warnings() -> None:
    d = protocols.plan_desensitization(
        **{
            **_plan(OXA),
            "dose_mg": "160",
            "bags": 4,
            "stock_mg_ml": "5",
            "override_reason": "16-step per seed 004",
        }
    ).to_dict()
    flags = {f.bag: f for f in d["dose_rounding_flags"]}
    assert flags[1].drug_volume_exact_ml == Decimal("0.032") and flags[1].drug_volume_measured_ml == Decimal(
        "0.05"
    )
    assert flags[1].dose_error_pct == Decimal("56.25")
    assert any("Bag 1: drawing 0.05 mL for an exact 0.032 mL" in w and "+56.3 %" in w for w in d["warnings"])
    assert 4 not in flags  # the final bag's rounding is within the threshold
    assert d["dose_rounding_threshold"]["basis"]["status"] == "UNVERIFIED"  # a project rule, flags only
