"""The ``clinic`` demo list: active SCIT build-up courses whose next injection is due, late or ahead."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import numpy as np

from immunoplan.reference import basis
from immunoplan.synthetic.rows import add_injection, add_patient, add_visit, calibration, utc_at
from immunoplan.synthetic.writer import Writer


def write(w: Writer, rng: np.random.Generator, today: date) -> int:
    """Active SCIT build-up courses whose next weekly injection is due, late or ahead on ``today``."""
    cal = calibration()
    syn, c1 = cal["clinic_synthetic"], cal["seed001_synthetic"]
    lo, hi = syn["days_since_last_injection"]
    doses = [Decimal(x) for x in c1["build_up_sq_u"]]
    vols = [Decimal(x) for x in c1["build_up_ml"]]
    bb = [basis("registry_demo_calibration", "clinic_synthetic").to_dict()]
    for i in range(syn["patients"]):
        pid = f"CLINIC-{i + 1:03d}"
        given = int(rng.integers(1, len(doses)))  # injections so far (never the whole build-up)
        last = today - timedelta(days=int(rng.integers(lo, hi + 1)))
        start = last - timedelta(weeks=given - 1)
        age = int(rng.integers(18, 65))
        birth = start - timedelta(days=age * 365)
        sex = "female" if i % 2 else "male"
        p_id = add_patient(
            w, pid, f"Demo clinic patient {i + 1}", birth, age, "adult", sex, 3, "clinic", None, start
        )
        course = w.add(
            "courses",
            patient_id=p_id,
            kind="SCIT",
            product="Alutard SQ house dust mite",
            allergen="d1",
            regimen="weekly build-up (15 injections)",
            product_id="alutard-sq-hdm",  # the catalogue's 15-week weekly schedule (its doses above)
            regimen_id="conventional",
            with_omalizumab=False,
            omalizumab_timing="none",
            status="active",
            started_on=start,
            ended_on=None,
            stop_reason=None,
            target_dose=Decimal("100000"),
            dose_unit="SQ-U",
            target_reached=False,
            target_reached_on=None,
            interval_days=syn["interval_days"],
            next_due_on=last + timedelta(days=syn["interval_days"]),
            plan={"source": syn["note"]},
            basis=bb,
            created_at=w.now,
        )
        add_visit(w, p_id, course, "baseline", start, 0, asthma_step=3)
        for k in range(given):
            when = utc_at(start + timedelta(weeks=k), 10)
            add_injection(
                w,
                p_id,
                course,
                k + 1,
                when,
                "build-up",
                doses[k],
                c1["build_up_vial"][k],
                vols[k],
                "DEMO-CLINIC",
            )
    return int(syn["patients"])
