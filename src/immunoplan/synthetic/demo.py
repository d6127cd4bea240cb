"""`create_demo`: the synthetic cohorts (seed 001, seed 000, the clinic list) in one transaction."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import func, select

from immunoplan import clock
from immunoplan.errors import InvalidInput
from immunoplan.reference import basis
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.synthetic import clinic as clinic_list
from immunoplan.synthetic import seed000, seed001
from immunoplan.synthetic.rows import calibration
from immunoplan.synthetic.writer import Progress, Writer


def create_demo(
    reg: Registry,
    *,
    seed: int = 0,
    patients: int | None = None,
    actor: str = "demo",
    progress: Progress | None = None,
    today: date | None = None,
    clinic: bool = False,
) -> dict[str, Any]:
    """Create the demo cohorts in one transaction. ``patients`` sizes the seed-000 cohort (default 202, as in
    the seed); seed 001 always has its 37 patients (its tables are per-patient statistics). With ``clinic`` a
    small ``clinic`` list with active build-up courses relative to ``today`` makes due/late injections visible
    (the ``immunoplan demo`` command adds it unless ``--no-clinic``)."""
    cal = calibration()
    n0 = sum(cal["seed000"]["counts"].values()) if patients is None else int(patients)
    if n0 < 2 or n0 > 10**6:
        raise InvalidInput("patients", f"{n0} is outside the accepted range", "[2, 1000000]")
    if seed < 0:
        raise InvalidInput("seed", "must not be negative", "[0, inf)")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    with reg.transaction(actor, "demo") as s:
        existing = s.scalar(
            select(func.count())
            .select_from(m.Patient)
            .where(m.Patient.cohort.in_(("seed000", "seed001")) | (m.Patient.pseudo_id == "CLINIC-001"))
        )
        if existing:
            raise InvalidInput("db", "already holds the demo cohorts; use a new database")
        w = Writer(s)
        n1 = seed001.write(w, rng, actor)
        w.flush()
        if progress:
            progress(0, n0, "seed001 done")
        seed000.write(w, rng, n0, actor, progress)
        n_clinic = clinic_list.write(w, rng, today or clock.today()) if clinic else 0
        w.finish({"generator": "immunoplan.synthetic", "seed": seed, "calibration_version": cal["version"]})
        counts = dict(w.counts)
    return {
        "seed": seed,
        "cohorts": {"seed001": n1, "seed000": n0, **({"clinic": n_clinic} if clinic else {})},
        "rows": counts,
        "calibration": basis("registry_demo_calibration").to_dict(),
        "seconds": round(time.perf_counter() - t0, 2),
    }
