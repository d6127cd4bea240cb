"""The dose actually given of a desensitization session stopped by a reaction: the reaction step counts the
part infused before the infusion stopped (its minutes into the step), not the whole step."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from immunoplan import clock
from immunoplan.registry.db import Registry, open_registry
from immunoplan.services.records import desensitization as svc
from immunoplan.services.records import register_patient

START = "2026-11-21T09:00"
PLAN: dict[str, Any] = {
    "drug": "carboplatin",
    "dose_mg": "500",
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


def _at(minutes: float) -> None:
    clock.set_now(clock.parse_local("at", START) + timedelta(minutes=minutes))


def _started(reg: Registry, steps: int) -> tuple[int, dict[str, Any]]:
    pid = int(register_patient(reg, "t", pseudo_id="DG-1", sex="female")["id"])
    out = svc.start_session(reg, "dr", {**PLAN, "patient_id": pid})
    sid = int(out["session_id"])
    for n in range(1, steps + 1):
        _at((n - 1) * 15)
        svc.mark_step(reg, "nurse", {"session_id": sid, "step_no": n})
    return sid, out


@pytest.mark.parametrize("minutes_in", [Decimal("5"), Decimal("0"), Decimal("15")])
def test_a_session_stopped_minutes_into_a_step_counts_that_part_of_the_step(
    registry: Registry, minutes_in: Decimal
) -> None:
    sid, out = _started(registry, 9)
    plan = {s["step"]: s for s in out["steps"]}
    _at(8 * 15 + float(minutes_in))
    svc.record_breakthrough(
        registry,
        "nurse",
        {"session_id": sid, "step_no": 9, "severity": "severe", "minutes_into_step": str(minutes_in)},
    )
    done = svc.finish_session(registry, "nurse", {"session_id": sid, "outcome": "stopped"})
    before = Decimal(str(plan[8]["cumulative_mg"]))
    part = Decimal(str(plan[9]["dose_mg"])) * minutes_in / Decimal(str(plan[9]["minutes"]))
    assert abs(Decimal(str(done["dose_given_mg"])) - (before + part)) < Decimal("1e-9")
    assert Decimal(str(done["dose_given_mg"])) < Decimal(str(plan[9]["cumulative_mg"])) or minutes_in == 15
