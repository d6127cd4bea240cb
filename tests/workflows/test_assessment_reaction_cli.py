"""CLI: `assessment record` stores the assessment shown (with its basis) and `injection reaction` records a
graded reaction to the last injection with the next dose from the adjustment rules; refusals exit 2."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from immunoplan import clock
from immunoplan.registry import models as m
from immunoplan.registry.db import open_registry

ASSESS = "assessment record --patient {pid} --age {age} --total-ige 420 --sige 68 --json"
INJECT = "injection record --course 1 --dose-ml 0.1 --strength 1 --given-at 2026-03-10T09:05 --json"
REACT = "injection reaction --course 1 --kind systemic {symptoms} --by nurse.kim --json"


@pytest.fixture
def run(cli, tmp_path: Path) -> Any:
    """``run("command text")``: the CLI on one tmp registry (``--db`` added), at 2026-03-10 09:40."""
    path = str(tmp_path / "c.sqlite")

    def call(text: str) -> Any:
        with clock.frozen("2026-03-10T09:40"):
            return cli(*shlex.split(text), "--db", path)

    call.path = path  # type: ignore[attr-defined]
    assert call("patient add --mrn 7 --name 'A B' --birth-date 2012-01-02 --sex female --json").code == 0
    plan = "course plan --patient 1 --kind scit --product alutard-sq-hdm --regimen cluster --start 2026-03-10"
    assert call(plan + " --json").code == 0
    return call


def _count(path: str, model: type) -> int:
    reg = open_registry(path)
    try:
        with reg.session() as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        reg.dispose()


def test_assessment_record_stores_the_result_with_its_basis(run: Any) -> None:
    r = run(ASSESS.format(pid=1, age=14) + " --by dr.lee")
    assert r.code == 0, r.stderr
    assert r.json["result"]["risk"]["risk_tier"] == "high"
    assert r.json["result"]["basis"], "the stored assessment lists every rule's basis"
    assert _count(run.path, m.RiskAssessment) == 1


def test_assessment_record_refuses_bad_input_and_writes_nothing(run: Any) -> None:
    r = run(ASSESS.format(pid=1, age=400))
    assert r.code == 2 and "age_years" in r.stderr and "[0, 120]" in r.stderr
    r = run(ASSESS.format(pid=99, age=14))
    assert r.code == 2 and "99" in r.stderr
    assert _count(run.path, m.RiskAssessment) == 0


def test_injection_reaction_grades_records_and_gives_the_dose_after_it(run: Any) -> None:
    assert run(INJECT).code == 0
    r = run(REACT.format(symptoms="--symptom urticaria --symptom wheeze"))
    assert r.code == 0, r.stderr
    assert r.json["next"]["rule"]["id"] == "lsu-systemic-tenth"
    assert _count(run.path, m.Reaction) == 1


def test_injection_reaction_refuses_an_unknown_finding(run: Any) -> None:
    assert run(INJECT).code == 0
    r = run(REACT.format(symptoms="--symptom nonsense"))
    assert r.code == 2 and "nonsense" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert _count(run.path, m.Reaction) == 0
