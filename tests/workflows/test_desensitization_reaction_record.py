"""A breakthrough reaction recorded in full through the service (`record_breakthrough`, `record_baseline`):
structured treatments, vital signs, tryptase (at the reaction and at baseline), the grade computed from the
findings on Brown 2004 (SpO2 <= 92 % and systolic BP < 90 mmHg in adults: SECONDARY, read as a quotation) and
on the scale the clinician picks, the endophenotype; every refusal names its field and writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from immunoplan import clock
from immunoplan.errors import InvalidInput
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry, open_registry
from immunoplan.services.records import desensitization as svc
from immunoplan.services.records import register_patient

START = "2026-11-21T09:00"
PLAN: dict[str, Any] = {
    "drug": "oxaliplatin",
    "dose_mg": "160",
    "bag_volume_ml": "250",
    "final_rate_ml_h": "80",
    "bags": 3,
    "start": "09:00",
    "session_on": "2026-11-21",
}


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    monkeypatch.setenv("IMMUNOPLAN_TIMEZONE", "Europe/Oslo")
    reg = open_registry(tmp_path / "registry.sqlite")
    with clock.frozen(START):
        yield reg
    reg.dispose()


def at(minutes: float) -> None:
    clock.set_now(clock.parse_local("at", START) + timedelta(minutes=minutes))


def _session(reg: Registry, **patient: Any) -> int:
    pid = int(register_patient(reg, "t", pseudo_id="OX-1", sex="female", **patient)["id"])
    return int(svc.start_session(reg, "dr", {**PLAN, "patient_id": pid})["session_id"])


def _give(reg: Registry, sid: int, steps: range) -> None:
    for i, n in enumerate(steps):
        at(i * 15)
        svc.mark_step(reg, "nurse", {"session_id": sid, "step_no": n})


def _rows(reg: Registry) -> tuple[int, int, int]:
    with reg.session() as s:
        return (
            s.scalar(select(func.count()).select_from(m.Reaction)) or 0,
            s.scalar(select(func.count()).select_from(m.DesensitizationStep)) or 0,
            s.scalar(select(func.count()).select_from(m.AuditEntry)) or 0,
        )


def test_bronchospasm_at_spo2_90_is_severe_with_the_cited_basis_and_does_not_resume(
    registry: Registry,
) -> None:
    sid = _session(registry)
    _give(registry, sid, range(1, 12))
    at(11 * 15 + 5)
    bt = svc.record_breakthrough(
        registry,
        "nurse",
        {
            "session_id": sid,
            "step_no": 12,
            "minutes_into_step": "5",
            "findings": ["wheeze"],
            "spo2_pct": "90",
        },
    )
    g = bt["grade"]
    assert (g["scale"], g["grade"], g["computed"]) == ("brown2004", "severe", True)
    assert g["basis"]["status"] == "SECONDARY" and "PMC9156473" in g["basis"]["source"]
    assert any("SpO2 90" in r for r in g["reasons"])
    assert bt["continuation"] == [] and "stop" in bt["replan"]["applied"]
    at(11 * 15 + 30)
    with pytest.raises(Exception, match="stopped the protocol"):
        svc.mark_step(registry, "nurse", {"session_id": sid, "step_no": 12, "replan_no": 1})
    view = svc.view_json(svc.session_view(registry, sid))
    assert view["reactions"][0]["grade"] == "severe" and view["replans"][0]["severity"] == "severe"


def test_systolic_bp_below_90_is_severe_for_an_adult_and_a_warning_for_a_child(registry: Registry) -> None:
    sid = _session(registry, birth_date="1970-05-01")
    _give(registry, sid, range(1, 3))
    bt = svc.record_breakthrough(
        registry,
        "nurse",
        {"session_id": sid, "step_no": 2, "findings": ["urticaria"], "systolic_bp_mmhg": "85"},
    )
    assert bt["grade"]["grade"] == "severe" and bt["grade"]["basis"]["status"] == "SECONDARY"
    from immunoplan.services.inputs import validate
    from immunoplan.services.records.desensitization.breakthrough import grade_breakthrough

    inp = validate(
        svc.BreakthroughFields, {"step_no": 1, "findings": ["urticaria"], "systolic_bp_mmhg": "85"}
    )
    child = grade_breakthrough(inp, adult=False)
    assert child["grade"] == "mild" and any("for adults" in w for w in child["warnings"])


def test_treatments_vitals_and_tryptase_are_stored_and_shown(registry: Registry) -> None:
    sid = _session(registry)
    at(-10)
    svc.record_baseline(
        registry,
        "nurse",
        {"session_id": sid, "tryptase_ng_ml": "4.1", "systolic_bp_mmhg": "128", "diastolic_bp_mmhg": "76"},
    )
    _give(registry, sid, range(1, 4))
    at(40)
    bt = svc.record_breakthrough(
        registry,
        "nurse",
        {
            "session_id": sid,
            "step_no": 3,
            "findings": ["flushing", "chest_tightness"],
            "onset_at": "2026-11-21T09:38",
            "systolic_bp_mmhg": "132",
            "diastolic_bp_mmhg": "84",
            "heart_rate_bpm": "104",
            "spo2_pct": "97",
            "temperature_c": "37.4",
            "tryptase_ng_ml": "11.2",
            "tryptase_at": "2026-11-21T09:39",
            "treatments": [
                "cetirizine:20:mg:PO@09:39",
                {
                    "drug": "methylprednisolone",
                    "dose": "125",
                    "unit": "mg",
                    "route": "IV",
                    "given_at": "09:40",
                },
            ],
            "treatment": "infusion paused",
        },
    )
    assert bt["grade"]["grade"] == "moderate"
    assert bt["phenotype"]["phenotype"] == "type I" and bt["phenotype"]["computed"] is True
    with registry.session() as s:
        r = s.scalars(select(m.Reaction)).one()
        assert r.vital_signs == {
            "systolic_bp_mmhg": "132",
            "diastolic_bp_mmhg": "84",
            "heart_rate_bpm": "104",
            "spo2_pct": "97",
            "temperature_c": "37.4",
        }
        assert (
            str(r.tryptase_ng_ml) == "11.2" and r.phenotype == "type I" and r.treatment == "infusion paused"
        )
        assert [t["drug"] for t in r.treatments_given] == ["cetirizine", "methylprednisolone"]
        assert r.grades[0]["scale"] == "brown2004"
        sess = s.get(m.DesensitizationSession, sid)
        assert sess is not None and str(sess.baseline_tryptase_ng_ml) == "4.1"
        assert sess.baseline_vital_signs == {"systolic_bp_mmhg": "128", "diastolic_bp_mmhg": "76"}
    view = svc.view_json(svc.session_view(registry, sid))
    rx = view["reactions"][0]
    assert rx["treatments"][0] == {
        "drug": "cetirizine",
        "dose": "20",
        "unit": "mg",
        "route": "PO",
        "given_at": "2026-11-21T09:39:00+01:00",
    }
    assert rx["treatments"][1]["given_at"] == "2026-11-21T09:40:00+01:00"
    assert rx["tryptase_at"] == "2026-11-21T09:39:00+01:00" and rx["vital_signs"]["temperature_c"] == "37.4"
    assert view["baseline"]["tryptase_at"] == "2026-11-21T08:50:00+01:00"
    assert view["baseline"]["vital_signs"]["diastolic_bp_mmhg"] == "76"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"temperature_c": "420"}, "temperature_c"),
        ({"tryptase_ng_ml": "-1"}, "tryptase_ng_ml"),
        ({"treatments": ["x" * 5000 + ":1:mg:IV"]}, "treatments.0.drug"),
        (
            {"treatments": [{"drug": "x" * 5000, "dose": "1", "unit": "mg", "route": "IV"}]},
            "treatments.0.drug",
        ),
        ({"treatments": ["epinephrine:0.5:kg:IM"]}, "treatments.0.unit"),
        ({"treatments": ["epinephrine:0.5:mg:ear"]}, "treatments.0.route"),
        ({"treatments": ["epinephrine:lots:mg:IM"]}, "treatments.0.dose"),
        ({"treatments": ["epinephrine:0:mg:IM"]}, "treatments.0.dose"),
        ({"treatments": ["epinephrine:0.5:mg:IM@25:99"]}, "treatments.0.given_at"),
        ({"treatments": ["epinephrine:0.5:mg:IM@11:00"]}, "treatments.0.given_at"),  # in the future
        ({"treatments": ["epinephrine 0.5 mg"]}, "treatments.0"),
        ({"systolic_bp_mmhg": "80", "diastolic_bp_mmhg": "95"}, "diastolic_bp_mmhg"),
        ({"tryptase_at": "2026-11-21T09:10"}, "tryptase_at"),  # a time without the value
        ({"tryptase_ng_ml": "9", "tryptase_at": "2026-11-21T12:00"}, "tryptase_at"),  # in the future
        ({"scale": "wao2010"}, "scale"),
        ({"phenotype": "type IV"}, "phenotype"),
        ({"phenotype": "cytokine release"}, "phenotype"),  # the findings (wheeze) give type I
    ],
)
def test_bad_values_are_refused_naming_the_field_and_nothing_is_written(
    registry: Registry, extra: dict[str, Any], field: str
) -> None:
    sid = _session(registry)
    _give(registry, sid, range(1, 3))
    before = _rows(registry)
    with pytest.raises(InvalidInput) as exc:
        svc.record_breakthrough(
            registry, "nurse", {"session_id": sid, "step_no": 2, "findings": ["wheeze"], **extra}
        )
    assert exc.value.field == field
    assert _rows(registry) == before


def test_baseline_refusals(registry: Registry) -> None:
    sid = _session(registry)
    before = _rows(registry)
    for data, field in (
        ({}, "tryptase_ng_ml"),
        ({"temperature_c": "420"}, "temperature_c"),
        ({"tryptase_ng_ml": "-1"}, "tryptase_ng_ml"),
        ({"tryptase_ng_ml": "5", "tryptase_at": "2026-11-22T09:00"}, "tryptase_at"),
    ):
        with pytest.raises(InvalidInput) as exc:
            svc.record_baseline(registry, "nurse", {"session_id": sid, **data})
        assert exc.value.field == field
    assert _rows(registry) == before
    svc.finish_session(registry, "dr", {"session_id": sid, "outcome": "stopped"})
    with pytest.raises(InvalidInput) as exc:
        svc.record_baseline(registry, "nurse", {"session_id": sid, "tryptase_ng_ml": "5"})
    assert exc.value.field == "session_id"


def test_the_clinician_picks_the_scale_and_brown_still_drives_the_replan(registry: Registry) -> None:
    sid = _session(registry)
    _give(registry, sid, range(1, 3))
    at(20)
    bt = svc.record_breakthrough(
        registry,
        "nurse",
        {
            "session_id": sid,
            "step_no": 2,
            "onset_at": "2026-11-21T09:18",
            "findings": ["urticaria", "wheeze"],
            "spo2_pct": "91",
            "scale": "wao2017",
            "treatments": ["adrenaline:0.5:mg:IM@09:20"],
        },
    )
    assert bt["grade"]["scale"] == "wao2017" and bt["grade"]["grade"] == "2"
    assert bt["grade"]["report"].startswith("Grade 2a")  # epinephrine 2 min after the onset
    assert bt["grade"]["brown"]["grade"] == "severe" and bt["continuation"] == []
    assert [g["scale"] for g in bt["grades"]] == ["wao2017", "brown2004"]
    with registry.session() as s:
        r = s.scalars(select(m.Reaction)).one()
        assert (r.scale, r.grade) == ("wao2017", "2")
    assert svc.session_view(registry, sid)["replans"][0]["severity"] == "severe"


def test_ctcae_reads_the_intervention_from_the_routes(registry: Registry) -> None:
    sid = _session(registry)
    _give(registry, sid, range(1, 2))
    bt = svc.record_breakthrough(
        registry,
        "nurse",
        {
            "session_id": sid,
            "step_no": 1,
            "findings": ["flushing"],
            "scale": "ctcae-allergic",
            "treatments": ["diphenhydramine:50:mg:IV"],
        },
    )
    assert bt["grade"]["grade"] == "3" and any("routes" in w for w in bt["grade"]["warnings"])
    assert bt["grade"]["brown"]["grade"] == "mild"


def test_phenotype_is_computed_or_chosen_only_when_the_findings_do_not_decide(registry: Registry) -> None:
    sid = _session(registry)
    _give(registry, sid, range(1, 2))
    bt = svc.record_breakthrough(
        registry,
        "nurse",
        {"session_id": sid, "step_no": 1, "findings": ["flushing", "chills", "fever"]},
    )
    assert bt["phenotype"]["phenotype"] == "mixed" and bt["phenotype"]["computed"]
    from immunoplan.services.inputs import validate
    from immunoplan.services.records.desensitization.breakthrough import grade_phenotype

    chosen = grade_phenotype(
        validate(
            svc.BreakthroughFields, {"step_no": 1, "findings": ["headache"], "phenotype": "cytokine release"}
        )
    )
    assert (chosen["phenotype"], chosen["computed"], chosen["chosen"]) == ("cytokine release", False, True)
    none = grade_phenotype(validate(svc.BreakthroughFields, {"step_no": 1, "findings": ["headache"]}))
    assert none["phenotype"] == "undetermined"


def test_a_finding_brown_cannot_place_is_a_warning_not_a_lower_grade(registry: Registry) -> None:
    sid = _session(registry)
    _give(registry, sid, range(1, 2))
    bt = svc.record_breakthrough(
        registry, "nurse", {"session_id": sid, "step_no": 1, "findings": ["wheeze", "fever"]}
    )
    assert bt["grade"]["grade"] == "moderate"
    assert any("fever" in w and "not lowered" in w for w in bt["grade"]["warnings"])
