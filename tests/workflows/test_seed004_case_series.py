"""Seed 004 as a test: the 8 patients of Prieto-García 2023 (J Investig Allergol Clin Immunol 33:497) entered
through the services (patient, desensitization course for the culprit drug with its cycles, index reaction
with grade and phenotype, the adjuvant omalizumab plan and doses, the sessions and their outcome as the
case descriptions give them) reproduce the paper's Table from the registry
(`desensitization_case_series`, ``immunoplan report case-series``).

The Table is compared cell by cell with its golden copy (tests/golden/seed004_case_series.json, copied
unchanged). The paper gives no dates: the calendar below is synthetic (cycles every 2-4 weeks as the
regimens say); the order of events and the numbers of doses and cycles are the paper's. Cells are compared
after spacing is normalised ("+ID" and "+ ID", "2 doses/ stopped" and "2 doses/stopped" are printed both
ways in the Table)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from desens_course_helpers import (
    completed_cycle,
    mild_then_completed,
    omalizumab_dose,
    set_day,
    stopped_cycle,
)

from immunoplan import clock
from immunoplan.registry.db import Registry, open_registry
from immunoplan.services.records import register_patient
from immunoplan.services.records.desensitization import course as dc

GOLDEN = Path(__file__).parents[1] / "golden" / "seed004_case_series.json"
ADJ = "desensitization_adjuvant"
W = timedelta(weeks=1)
D = timedelta(days=1)


def _norm(cell: str) -> str:
    cell = re.sub(r"\s+", " ", cell.replace("<sup>a</sup>", "")).strip()
    cell = re.sub(r"^\+\s*", "+ ", cell)
    return re.sub(r"\s*/\s*", "/", cell)


def _patient(reg: Registry, n: int, sex: str, age: int, index_on: date) -> int:
    born = date(index_on.year - age - 1, index_on.month, 1) + timedelta(days=200)
    return int(
        register_patient(
            reg, "t", pseudo_id=f"S4-{n}", sex=sex, birth_date=born.isoformat(), height_cm=165, weight_kg=70
        )["id"]
    )


def _index(reg: Registry, course_id: int, **kw: Any) -> None:
    set_day(kw["reaction_on"] + D)
    dc.record_index_reaction(reg, "dr", {"course_id": course_id, "scale": "brown2004", **kw})


def _course_of(reg: Registry, sid: int) -> int:
    from immunoplan.services.records.desensitization import session_view

    return int(session_view(reg, sid)["course_id"])


def _adjuvant(reg: Registry, course_id: int, first_ds: date, cycle_weeks: int) -> None:
    dc.plan_adjuvant_omalizumab(reg, "dr", course_id, ADJ, first_ds.isoformat(), cycle_weeks=cycle_weeks)


def _stop(reg: Registry, course_id: int, day: date, reason: str) -> None:
    set_day(day, "16:00")
    dc.end_course(reg, "dr", course_id, "stopped", reason, day.isoformat())


def build(reg: Registry) -> None:  # noqa: PLR0915 - eight case descriptions, one after the other
    # P1: rituximab, grade 3, +ID 10 mg/mL, type I. DS failed (urticaria at step 16); omalizumab 14 and 3 days
    # before the next DS, urticaria again at step 16; the patient refused to continue.
    ir = date(2024, 3, 4)
    p = _patient(reg, 1, "male", 78, ir)
    d0 = date(2024, 4, 1)
    sid = stopped_cycle(reg, p, "rituximab", "700", d0, 16, "mild")
    c = _course_of(reg, sid)
    _index(
        reg,
        c,
        reaction_on=ir,
        drug="rituximab",
        grade="3",
        skin_test="positive",
        skin_test_detail="ID 10 mg/mL",
        phenotype="type I",
        context="Lymphoma B-R",
    )
    d1 = d0 + 4 * W
    _adjuvant(reg, c, d1, 3)
    omalizumab_dose(reg, c, d1 - 14 * D)
    omalizumab_dose(reg, c, d1 - 3 * D)
    stopped_cycle(reg, p, "rituximab", "700", d1, 16, "mild", cycle_choice="next-omalizumab")
    _stop(reg, c, d1, "patient refused to continue (seed 004 patient 1)")

    # P2: oxaliplatin, grade 3, + PT 5 mg/mL, type I. DS withdrawn (step 7); omalizumab 6 days before the next
    # DS, same symptoms at step 1: oxaliplatin withdrawn.
    ir = date(2024, 3, 11)
    p = _patient(reg, 2, "male", 58, ir)
    d0 = date(2024, 4, 8)
    sid = stopped_cycle(reg, p, "oxaliplatin", "160", d0, 7, "moderate")
    c = _course_of(reg, sid)
    _index(
        reg,
        c,
        reaction_on=ir,
        drug="oxaliplatin",
        grade="3",
        skin_test="positive",
        skin_test_detail="PT 5 mg/mL",
        phenotype="type I",
        context="Rectal FOLFOX",
    )
    d1 = d0 + 3 * W
    _adjuvant(reg, c, d1, 2)
    omalizumab_dose(reg, c, d1 - 6 * D)
    stopped_cycle(reg, p, "oxaliplatin", "160", d1, 1, "moderate", cycle_choice="next-omalizumab")
    _stop(reg, c, d1, "oxaliplatin withdrawn (seed 004 patient 2)")

    # P3: oxaliplatin, grade 2, + ID 5 mg/mL, mixed. DS completed with a delayed reaction (twice); omalizumab
    # 1 week before the next, then every 2 weeks: 15 cycles with no further reactions.
    ir = date(2024, 3, 18)
    p = _patient(reg, 3, "female", 62, ir)
    d0 = date(2024, 4, 15)
    sid = completed_cycle(reg, p, "oxaliplatin", "160", d0)
    c = _course_of(reg, sid)
    _index(
        reg,
        c,
        reaction_on=ir,
        drug="oxaliplatin",
        grade="2",
        skin_test="positive",
        skin_test_detail="ID 5 mg/mL",
        phenotype="mixed",
        context="Colon FOLFOX",
    )
    d1 = d0 + 2 * W
    _adjuvant(reg, c, d1, 2)
    omalizumab_dose(reg, c, d1 - W)
    for k in range(15):
        day = d1 + 2 * k * W
        if k:
            omalizumab_dose(reg, c, day - W)
        completed_cycle(reg, p, "oxaliplatin", "160", day, cycle_choice="same-protocol")

    # P4: carboplatin, grade 3, + ID 0.1 mg/mL, type I. DS completed with a skin reaction at step 15, the next
    # not completed; omalizumab 14 and 1 days before, then every 4 weeks: 3 cycles.
    ir = date(2024, 3, 25)
    p = _patient(reg, 4, "female", 47, ir)
    d0 = date(2024, 4, 22)
    sid = mild_then_completed(reg, p, "carboplatin", "500", d0, 15)
    c = _course_of(reg, sid)
    _index(
        reg,
        c,
        reaction_on=ir,
        drug="carboplatin",
        grade="3",
        skin_test="positive",
        skin_test_detail="ID 0.1 mg/mL",
        phenotype="type I",
        context="Ovarian T-C",
    )
    stopped_cycle(reg, p, "carboplatin", "500", d0 + 3 * W, 12, "mild", cycle_choice="same-protocol")
    d1 = d0 + 7 * W
    _adjuvant(reg, c, d1, 4)
    omalizumab_dose(reg, c, d1 - 14 * D)
    omalizumab_dose(reg, c, d1 - D)
    for k in range(3):
        day = d1 + 4 * k * W
        if k:
            omalizumab_dose(reg, c, day - D)
        completed_cycle(reg, p, "carboplatin", "500", day)

    # P5: oxaliplatin, grade 2, negative skin test 2 years after the IR, mixed. Reaction at step 12 (7th DS);
    # omalizumab 1 week before the next cycle, every 2 weeks: 3 cycles.
    ir = date(2022, 4, 1)
    p = _patient(reg, 5, "female", 50, ir)
    d0 = date(2024, 5, 6)
    sid = stopped_cycle(reg, p, "oxaliplatin", "160", d0, 12, "moderate")
    c = _course_of(reg, sid)
    _index(
        reg,
        c,
        reaction_on=ir,
        drug="oxaliplatin",
        grade="2",
        skin_test="negative",
        skin_test_detail="(2 years after IR)",
        phenotype="mixed",
        context="Colon CAPOX",
    )
    d1 = d0 + 3 * W
    _adjuvant(reg, c, d1, 2)
    omalizumab_dose(reg, c, d1 - W)
    for k in range(3):
        day = d1 + 2 * k * W
        if k:
            omalizumab_dose(reg, c, day - W)
        completed_cycle(reg, p, "oxaliplatin", "160", day)

    # P6: docetaxel, grade 2, + PT 10 mg/mL, type I. Urticaria at steps 10-13; omalizumab 14 and 7 days
    # before: completed with urticaria at step 14 (MCR), then one more with 3 hives at step 14; every 4 weeks.
    ir = date(2024, 4, 1)
    p = _patient(reg, 6, "female", 38, ir)
    d0 = date(2024, 5, 13)
    sid = stopped_cycle(reg, p, "docetaxel", "130", d0, 10, "mild")
    c = _course_of(reg, sid)
    _index(
        reg,
        c,
        reaction_on=ir,
        drug="docetaxel",
        grade="2",
        skin_test="positive",
        skin_test_detail="PT 10 mg/mL",
        phenotype="type I",
        context="Breast D-C",
    )
    d1 = d0 + 3 * W
    _adjuvant(reg, c, d1, 4)
    omalizumab_dose(reg, c, d1 - 14 * D)
    omalizumab_dose(reg, c, d1 - 7 * D)
    mild_then_completed(reg, p, "docetaxel", "130", d1, 14, cycle_choice="next-omalizumab")
    omalizumab_dose(reg, c, d1 + 3 * W)
    mild_then_completed(reg, p, "docetaxel", "130", d1 + 4 * W, 14)

    # P7: oxaliplatin, grade 2, + PT 5 mg/mL, type I. 12-step DS with a reaction at step 11, 16-step with
    # bronchospasm at step 13; 2 doses, DS not completed (step 14); a 3rd dose in 2 weeks, DS completed with
    # mild palmar erythema at step 14; monthly omalizumab, 4 more DS.
    ir = date(2024, 4, 8)
    p = _patient(reg, 7, "male", 59, ir)
    d0 = date(2024, 5, 20)
    sid = stopped_cycle(reg, p, "oxaliplatin", "160", d0, 11, "mild", bags=3)
    c = _course_of(reg, sid)
    _index(
        reg,
        c,
        reaction_on=ir,
        drug="oxaliplatin",
        grade="2",
        skin_test="positive",
        skin_test_detail="PT 5 mg/mL",
        phenotype="type I",
        context="Colorectal FOLFOX-C",
    )
    stopped_cycle(reg, p, "oxaliplatin", "160", d0 + 2 * W, 13, "severe", cycle_choice="change-bags")
    d1 = d0 + 6 * W
    _adjuvant(reg, c, d1, 2)
    omalizumab_dose(reg, c, d1 - 14 * D)
    omalizumab_dose(reg, c, d1 - D)
    stopped_cycle(reg, p, "oxaliplatin", "160", d1, 14, "mild", cycle_choice="next-omalizumab")
    omalizumab_dose(reg, c, d1 + 13 * D)
    mild_then_completed(reg, p, "oxaliplatin", "160", d1 + 2 * W, 14, cycle_choice="same-protocol")
    for k in range(1, 5):
        omalizumab_dose(reg, c, d1 + 13 * D + 4 * k * W)
        completed_cycle(reg, p, "oxaliplatin", "160", d1 + 2 * W + 4 * k * W)

    # P8: carboplatin, grade 3, + ID 1 mg/mL, type I. DS in the ICU stopped at step 15; after 2 doses, milder
    # erythema at step 15, resumed and completed; no more cycles needed.
    ir = date(2024, 4, 15)
    p = _patient(reg, 8, "female", 74, ir)
    d0 = date(2024, 5, 27)
    sid = stopped_cycle(reg, p, "carboplatin", "500", d0, 15, "moderate")
    c = _course_of(reg, sid)
    _index(
        reg,
        c,
        reaction_on=ir,
        drug="carboplatin",
        grade="3",
        skin_test="positive",
        skin_test_detail="ID 1 mg/mL",
        phenotype="type I",
        context="Ovarian C-G",
    )
    d1 = d0 + 4 * W
    _adjuvant(reg, c, d1, 3)
    omalizumab_dose(reg, c, d1 - 14 * D)
    omalizumab_dose(reg, c, d1 - D)
    mild_then_completed(reg, p, "carboplatin", "500", d1, 15, cycle_choice="next-omalizumab")
    set_day(d1 + 8 * W, "16:00")
    dc.end_course(reg, "dr", c, "completed", "no additional cycles needed (seed 004 patient 8)")


@pytest.fixture(scope="module")
def seed_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    path = tmp_path_factory.mktemp("seed004") / "registry.sqlite"
    reg = open_registry(path)
    with clock.frozen("2026-12-01T10:00"):
        build(reg)
    yield reg
    reg.dispose()


def _expected() -> list[dict[str, str]]:
    g = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert len(g["rows"]) == 8 and g["original_source"].startswith("Prieto-Garcia")
    return [dict(zip(g["header"], row, strict=True)) for row in g["rows"]]


def _table_row(r: dict[str, Any]) -> dict[str, str]:
    return {
        "P#": r["patient"].removeprefix("S4-"),
        "Sex/age": r["sex_age"],
        "Cancer/ChT": r["context"],
        "Culprit drug": r["culprit_drug"],
        "Severity of IR <sup>a</sup>": r["severity"],
        "Skin tests": r["skin_test"],
        "Phenotype": r["phenotype"],
        "OMZ before next DS/ maintenance": f"{r['omalizumab_before_next_ds']}/{r['omalizumab_maintenance']}",
        "Outcome/ tolerated cycles": r["outcome"],
    }


def test_the_registry_reproduces_the_seed004_table(seed_registry: Registry) -> None:
    rows = dc.desensitization_case_series(seed_registry)
    got = [{k: _norm(v) for k, v in _table_row(r).items()} for r in rows]
    want = [{k: _norm(v) for k, v in row.items()} for row in _expected()]
    assert len(got) == 8
    for g, w in zip(got, want, strict=True):
        assert g == w
    assert all(r["scale"] == "brown2004" and r["adjuvant_off_label"] for r in rows)


def test_a_changed_golden_cell_fails_the_comparison(seed_registry: Registry) -> None:
    """The comparison can fail: a mutated expected cell is not matched."""
    rows = dc.desensitization_case_series(seed_registry)
    want = _expected()
    want[2]["Outcome/ tolerated cycles"] = "14 cycles"
    assert _norm(_table_row(rows[2])["Outcome/ tolerated cycles"]) != _norm(
        want[2]["Outcome/ tolerated cycles"]
    )


def test_cli_report_case_series_json(seed_registry: Registry, cli: Any) -> None:
    db = seed_registry.url.removeprefix("sqlite:///")
    r = cli("report", "case-series", "--db", db, "--json")
    assert r.code == 0, r.stderr
    assert r.json["n"] == 8 and r.json["rows"][6]["outcome"] == "5 cycles (MCR at first)"
    assert r.json["rows"][6]["omalizumab_maintenance"] == "1st in 2 wk then every 4 wk"
    bad = cli("report", "case-sheets", "--db", db, "--json")
    assert bad.code == 2
