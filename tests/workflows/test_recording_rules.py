"""Recording rules of `registry_recording` at the service level: nothing recorded as done after the clinic
clock (injections, omalizumab doses, reaction onsets; visits not after the clinic's today), and the same
injection entered twice in one minute is refused even when the vial was not typed. Each refusal writes
nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from immunoplan import clock
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.registry import models as m
from immunoplan.registry.db import open_registry
from immunoplan.services import records as rec
from immunoplan.services.records import injections

NOW = "2026-03-10T10:00"


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Any]:
    r = open_registry(tmp_path / "r.sqlite")
    with clock.frozen(NOW):
        rec.register_patient(r, "dr.a", pseudo_id="R-1", sex="female", birth_date="1990-01-01")
        yield r
    r.dispose()


def _count(reg: Any, model: type) -> int:
    with reg.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _cluster_course(reg: Any) -> int:
    c = rec.plan_course(
        reg,
        "dr.a",
        pseudo_id="R-1",
        kind="cluster",
        product_id="alutard-sq-hdm",
        regimen_id="cluster",
        started_on="2026-03-10",
        dose_unit="SQ-U",
    )
    return int(c["id"])


def test_the_same_volume_in_the_same_minute_is_one_injection_even_without_its_vial(reg: Any) -> None:
    cid = _cluster_course(reg)
    first = injections.record(
        reg,
        "nurse.a",
        injections.InjectionIn(course_id=cid, dose_ml="0.1", vial="1", given_at="2026-03-10T09:30"),
    )
    with pytest.raises(Conflict) as e:  # the second nurse types the volume only
        injections.record(
            reg,
            "nurse.b",
            injections.InjectionIn(
                course_id=cid, dose_ml="0.1", given_at="2026-03-10T09:30", override_reason="walk-in"
            ),
        )
    assert f"injection {first['id']}" in str(e.value) and "nurse.a" in str(e.value)
    assert _count(reg, m.Injection) == 1


def test_an_omalizumab_dose_in_the_future_is_refused(reg: Any) -> None:
    with pytest.raises(InvalidInput) as e:
        rec.record_omalizumab(reg, "nurse.a", pseudo_id="R-1", given_at="2062-01-01T10:00", dose_mg="150")
    assert e.value.field == "given_at" and "future" in e.value.reason
    assert _count(reg, m.OmalizumabAdministration) == 0
    rec.record_omalizumab(reg, "nurse.a", pseudo_id="R-1", given_at="2026-03-10T10:04", dose_mg="150")
    assert _count(reg, m.OmalizumabAdministration) == 1  # within the tolerance of the clinic clock


def test_a_visit_after_the_clinics_today_is_refused(reg: Any) -> None:
    with pytest.raises(InvalidInput) as e:
        rec.record_visit(reg, "dr.a", pseudo_id="R-1", code="baseline", visit_on="2026-03-11")
    assert e.value.field == "visit_on"
    assert _count(reg, m.Visit) == 0
    rec.record_visit(reg, "dr.a", pseudo_id="R-1", code="baseline", visit_on="2026-03-10")
    assert _count(reg, m.Visit) == 1


def test_a_reaction_onset_in_the_future_is_refused(reg: Any) -> None:
    with pytest.raises(InvalidInput) as e:
        rec.record_reaction(reg, "nurse.a", pseudo_id="R-1", kind="local", onset_at="2062-01-01T10:00")
    assert e.value.field == "onset_at"
    assert _count(reg, m.Reaction) == 0


def test_the_due_list_bounds_its_windows(reg: Any) -> None:
    with pytest.raises(InvalidInput) as e:
        rec.list_due_injections(reg, window_days=10**23)
    assert e.value.field == "window_days" and "365" in (e.value.accepted or "")
    with pytest.raises(InvalidInput):
        rec.list_due_injections(reg, grace_days=-1)
    assert rec.list_due_injections(reg, window_days=7) == []
