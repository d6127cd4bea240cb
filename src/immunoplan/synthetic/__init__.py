"""Synthetic demo cohorts calibrated to seeds 000 and 001 (no real patients).

Targets and all generator parameters are in reference data ``registry_demo_calibration`` (seed numbers marked
VERIFIED with the seed table as source; synthetic parameters UNVERIFIED). docs/demo-cohorts.md explains the
calibration. Two cohorts and a clinic list:

- ``seed001`` (`immunoplan.synthetic.seed001`): 37 adults, SCIT 18 vs Omb+SCIT 19, visits at weeks 0/12/24/48.
  Table 1 counts are allocated exactly; every Table 2-4 mean and SD is matched per group and visit by fitting
  correlated draws to the target moments inside plausible bounds (SLSQP); Table 5 reactions are allocated
  exactly per visit window.
- ``seed000`` (`immunoplan.synthetic.seed000`): 202 patients (or ``patients``), RIT 133 vs RIT+Omb-pre 69,
  with age strata, mite sIgE grades, sIgE/T-IgE ratios, systemic reactions, target-dose completion and
  12-month ACQ/medication burden following the direction of the seed's findings (exact allocation within
  strata so the pattern holds at any size).
- ``clinic`` (`immunoplan.synthetic.clinic`): active SCIT build-up courses due, late or ahead on a given day.

Modules: `demo` (the entry point `create_demo`, one transaction), `writer` (bulk core inserts with explicit
ids; one ``bulk_insert`` audit entry per table), `fitting` (moment fitting and exact allocation), `rows` (one
helper per registry row kind), and one module per cohort.

This package sits above ``services`` in the layers (it doses the omalizumab patients with the omalizumab
service) and below the CLI that calls it (``immunoplan demo``).
"""

from __future__ import annotations

from immunoplan.synthetic.demo import create_demo
from immunoplan.synthetic.rows import calibration
from immunoplan.synthetic.writer import Progress

__all__ = ["Progress", "calibration", "create_demo"]
