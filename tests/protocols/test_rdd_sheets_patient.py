"""The rdd sheets printed for a session: patient header, drug-allergy alert, cycle, diluent, bag concentration
against the label, the flagged drawn-volume rounding, premedication and the session's reactions. Also the
planner's sheet without a patient: labelled blank lines."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from immunoplan import clock
from immunoplan.registry.db import Registry, open_registry
from immunoplan.services import protocols
from immunoplan.services.records import desensitization as svc
from immunoplan.services.records import register_patient
from immunoplan.services.records.desensitization.sheets import sheet_data
from immunoplan.sheets.render import render_html, render_pdf

START = "2026-12-01T09:00"
# the example: oxaliplatin 160 mg, 250 mL bags, 80 mL/h, 4 bags (16 steps), stock 5 mg/mL
PLAN: dict[str, Any] = {
    "drug": "oxaliplatin",
    "dose_mg": "160",
    "bag_volume_ml": "250",
    "final_rate_ml_h": "80",
    "bags": 4,
    "stock_mg_ml": "5",
    "start": "09:00",
    "session_on": "2026-12-01",
    "premedication_regimen": "prieto-garcia-2023-16-step",
    "override_reason": "16-step protocol of seed 004 (UNVERIFIED rates)",
}


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = open_registry(tmp_path / "registry.sqlite")
    with clock.frozen(START):
        yield reg
    reg.dispose()


def _session(reg: Registry) -> int:
    pid = int(
        register_patient(
            reg,
            "t",
            pseudo_id="RDD-7",
            mrn="MRN-004217",
            display_name="Kari Nordmann",
            birth_date="1961-04-12",
            sex="female",
            height_cm=168,
            weight_kg=64,
        )["id"]
    )
    return int(svc.start_session(reg, "dr", {**PLAN, "patient_id": pid})["session_id"])


def test_pharmacy_sheet_of_a_session(registry: Registry) -> None:
    sid = _session(registry)
    html = render_html("rdd-pharmacy", sheet_data(registry, sid))
    for text in (
        "Kari Nordmann",
        "MRN-004217",
        "1961-04-12",
        "64 kg",
        "2026-12-01",
        "<b>Cycle:</b> 1 of course",
        "DRUG ALLERGY ALERT: drug allergy: oxaliplatin",
        "glucose 5 % ONLY",
        "sodium chloride 0.9 %",
        "6 h at room temperature",
        "FLAG +56.3 %",
        "Bag 1: drawing 0.05 mL for an exact 0.032 mL",
        "below (0.2-0.7)",
    ):
        assert text in html, text
    assert "fill in patient name" not in html


def test_pdf_text_of_the_pharmacy_sheet(registry: Registry, tmp_path: Path) -> None:
    pytest.importorskip("weasyprint")
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler) not installed")
    sid = _session(registry)
    pdf = tmp_path / "pharmacy.pdf"
    pdf.write_bytes(render_pdf("rdd-pharmacy", sheet_data(registry, sid)))
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    flat = " ".join(text.split())
    for needle in ("Kari Nordmann", "MRN-004217", "glucose 5 % ONLY", "FLAG +56.3 %", "DRUG ALLERGY ALERT"):
        assert needle in flat, needle


def test_nursing_sheet_premedication_and_reactions(registry: Registry) -> None:
    sid = _session(registry)
    html = render_html("rdd-nursing", sheet_data(registry, sid))
    assert "Premedication: Seed 004" in html and "dexchlorpheniramine" in html
    assert "Kari Nordmann" in html and "DRUG ALLERGY ALERT" in html
    assert "Reactions recorded in the registry" not in html
    clock.set_now(clock.parse_local("t", START) + timedelta(minutes=1))
    svc.mark_step(registry, "nurse", {"session_id": sid, "step_no": 1})
    clock.set_now(clock.parse_local("t", START) + timedelta(minutes=16))
    svc.mark_step(registry, "nurse", {"session_id": sid, "step_no": 2})
    clock.set_now(clock.parse_local("t", START) + timedelta(minutes=20))
    svc.record_breakthrough(
        registry,
        "nurse",
        {"session_id": sid, "step_no": 2, "severity": "mild", "treatment": "dexchlorpheniramine 5 mg IV"},
    )
    data = sheet_data(registry, sid)
    assert [r["step"] for r in data["session_reactions"]] == [2]
    html = render_html("rdd-nursing", data)
    assert "Reactions recorded in the registry" in html
    assert "dexchlorpheniramine 5 mg IV" in html


def test_planner_sheet_without_patient_prints_labelled_blanks() -> None:
    d = protocols.plan_desensitization(**{k: v for k, v in PLAN.items() if k != "session_on"}).to_dict()
    html = render_html("rdd", d)
    assert "Printed from the planner without a patient" in html
    assert '<b>Patient name:</b> <span class="fill"' in html
    assert '<b>MRN:</b> <span class="fill"' in html
    assert "DRUG ALLERGY ALERT: drug allergy: oxaliplatin" in html
    assert "FLAG +56.3 %" in html


def test_prepared_at_prints_use_by_in_clinic_time(registry: Registry) -> None:
    sid = _session(registry)
    html = render_html(
        "rdd-pharmacy", sheet_data(registry, sid), prepared_at=clock.parse_local("p", "2026-12-01T08:30")
    )
    assert clock.format_local(clock.parse_local("p", "2026-12-01T08:30")) in html
    assert clock.format_local(clock.parse_local("p", "2026-12-01T14:30")) + " (room temperature)" in html
