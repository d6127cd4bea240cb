"""Property tests (hypothesis): exact decimals survive storage, the demo moment fitter hits its targets in
bounds, desensitization cumulative doses are exact sums, measurement checks accept exactly the range."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from immunoplan.errors import InvalidInput
from immunoplan.reference import load
from immunoplan.registry import checks
from immunoplan.registry import models as m
from immunoplan.services import records as rec
from immunoplan.synthetic.fitting import fit

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
DECIMALS = st.decimals(
    min_value=Decimal("0.000001"),
    max_value=Decimal("1000000"),
    allow_nan=False,
    allow_infinity=False,
    places=6,
)


@SETTINGS
@given(dose=DECIMALS, volume=DECIMALS)
def test_exact_decimal_round_trip(sqlite_registry, dose, volume):
    reg = sqlite_registry
    with reg.transaction("prop") as s:
        s.execute(delete(m.Injection))
        p = s.scalar(select(m.Patient)) or m.Patient(pseudo_id="P", sex="female")
        s.add(p)
        s.flush()
        c = s.scalar(select(m.Course)) or m.Course(patient_id=p.id, kind="SCIT")
        s.add(c)
        s.flush()
        s.add(
            m.Injection(
                course_id=c.id,
                patient_id=p.id,
                given_at=datetime(2025, 1, 1, tzinfo=UTC),
                dose=dose,
                dose_unit="SQ-U",
                volume_ml=volume,
            )
        )
    with reg.session() as s:
        inj = s.scalar(select(m.Injection))
        assert inj.dose == dose and inj.volume_ml == volume


@settings(max_examples=60, deadline=None)
@given(n=st.integers(5, 40), mean=st.floats(-50, 150), sd=st.floats(0.5, 20), seed=st.integers(0, 10**6))
def test_fit_hits_mean_and_sd_inside_bounds(n, mean, sd, seed):
    low, high = mean - 2.5 * sd, mean + 2.5 * sd  # always feasible: +-2.5 SD leaves room for any n
    x = fit(np.random.default_rng(seed).normal(size=n), mean, sd, low, high)
    assert x.min() >= low - 1e-9 and x.max() <= high + 1e-9
    assert abs(x.mean() - mean) < 1e-6 * max(1, abs(mean)) + 1e-6
    assert abs(x.std(ddof=1) - sd) < 1e-6 * sd + 1e-6


@SETTINGS
@given(doses=st.lists(DECIMALS, min_size=1, max_size=6))
def test_desensitization_cumulative_dose_is_the_exact_sum(sqlite_registry, doses):
    reg = sqlite_registry
    pid = f"D{len(doses)}-{abs(hash(tuple(doses))) % 10**9}"
    try:
        rec.register_patient(reg, "t", pseudo_id=pid, sex="male")
    except InvalidInput:
        return  # same example drawn twice
    c = rec.plan_course(reg, "t", pseudo_id=pid, kind="drug_desensitization", drug="x")
    sess = rec.start_desensitization(
        reg, "t", course_id=c["id"], session_on="2025-01-01", drug="x", target_dose_mg=sum(doses)
    )
    with reg.session() as s:
        for n, d in enumerate(doses, start=1):
            rec.record_step(reg, "t", session_id=sess["id"], step_no=n, dose_mg=d)
        last = s.scalar(
            select(m.DesensitizationStep.cumulative_dose_mg)
            .where(m.DesensitizationStep.session_id == sess["id"])
            .order_by(m.DesensitizationStep.step_no.desc())
        )
    assert last == sum(doses, Decimal(0))


KINDS = load("registry_measurements")["kinds"]


@settings(max_examples=80, deadline=None)
@given(kind=st.sampled_from(sorted(KINDS)), value=st.floats(-1e6, 1e6, allow_nan=False))
def test_measurement_check_accepts_exactly_the_plausible_range(kind, value):
    spec = KINDS[kind]
    above_low = spec["low"] < value if spec.get("low_inclusive") is False else spec["low"] <= value
    inside = above_low and value <= spec["high"]
    try:
        _, v, _, unit = checks.measurement(kind, value, "d1")
    except InvalidInput as exc:
        assert not inside and exc.field == "value"
    else:
        assert inside and unit == spec["unit"] and v == pytest.approx(value)
