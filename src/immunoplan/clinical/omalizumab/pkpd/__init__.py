"""Omalizumab-IgE quasi-equilibrium binding model (Hayashi 2007; Lowe 2009), vectorised over patients.

`model` holds what the papers define (parameters, covariate model, binding, right-hand side, doses, state);
`solver` integrates it for many patients at once (RK4 with an integrating factor on a 1-day grid, an embedded
error estimate per patient and step against a stated tolerance ``rtol``, sub-steps for exactly the patients
and steps that need them, chunks, threads, float32 scratch buffers). The public names of both are re-exported
here, so ``from immunoplan.clinical.omalizumab import pkpd; pkpd.integrate(...)`` is the usual entry point.
`reference` (not re-exported; scipy) holds the independent vectorised reference solutions and the
covariate-tail sample the accuracy tests use.
"""

from __future__ import annotations

from immunoplan.clinical.omalizumab.pkpd.model import (
    DEFAULT_MODEL,
    MODELS,
    PARAM_NAMES,
    DoseEvent,
    Individuals,
    State,
    binding,
    complex_amount,
    et_stiffness,
    half_lives_days,
    ige_ng_per_iu,
    individuals,
    initial_state,
    model_spec,
    observables,
    omega_matrix,
    regular_regimen,
    rhs,
)
from immunoplan.clinical.omalizumab.pkpd.solver import (
    CHUNK_SIZE,
    DEFAULT_RTOL,
    DEFAULT_STEPS_PER_DAY,
    LOCAL_FRACTION,
    MAX_SUBSTEPS,
    SolverStats,
    balanced_chunk_size,
    concat_observables,
    integrate,
)

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_MODEL",
    "DEFAULT_RTOL",
    "DEFAULT_STEPS_PER_DAY",
    "LOCAL_FRACTION",
    "MAX_SUBSTEPS",
    "MODELS",
    "PARAM_NAMES",
    "DoseEvent",
    "Individuals",
    "SolverStats",
    "State",
    "balanced_chunk_size",
    "binding",
    "complex_amount",
    "concat_observables",
    "et_stiffness",
    "half_lives_days",
    "ige_ng_per_iu",
    "individuals",
    "initial_state",
    "integrate",
    "model_spec",
    "observables",
    "omega_matrix",
    "regular_regimen",
    "rhs",
]
