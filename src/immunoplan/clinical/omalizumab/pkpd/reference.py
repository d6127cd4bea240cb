"""Independent reference solutions of the binding model with scipy ``solve_ivp``, all patients in one system.

Written from the textbook form (nlmixr2lib encoding of Hayashi 2007 / Lowe 2009), in float64, sharing no
numerical code with `pkpd.integrate`: states (depot mg, total omalizumab nmol, total IgE nmol) per patient,
complex X_C = 2 XT ET / (S + sqrt(S^2 - 4 XT ET)) with S = XT + ET + Kd V_X V_E / V_C, Kd = Kd0 (XT/ET)^alpha.
The system is restarted at every dose (the depot jumps). Two uses:

- a tight reference (DOP853 at rtol 1e-11) for the accuracy tests and the benchmark's accuracy column;
- the benchmark's peer: what a competent user would write instead (one vectorised ``solve_ivp``).

scipy's error norm is the RMS over all 3n components, so in one system of n patients a single patient's local
error may exceed rtol by up to sqrt(3n); at rtol 1e-11 and a few hundred patients that is still < 1e-9.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

from immunoplan.clinical.omalizumab.pkpd.model import (
    PARAM_NAMES,
    DoseEvent,
    Individuals,
    individuals,
    model_spec,
    omega_matrix,
)

TIGHT_RTOL = 1e-11


def _dose_table(events: Sequence[DoseEvent], n: int) -> dict[float, np.ndarray]:
    doses: dict[float, np.ndarray] = {}
    for ev in events:
        d = float(ev.day)
        doses[d] = doses.get(d, np.zeros(n)) + np.broadcast_to(np.asarray(ev.dose_mg, dtype=float), (n,))
    return doses


def _split(xt: np.ndarray, et: np.ndarray, ind: Individuals) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Free omalizumab, free IgE, complex (nmol), textbook quadratic in its cancellation-free form."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((xt > 0) & (et > 0), xt / np.where(et > 0, et, 1.0), 0.0)
    kd = ind.kd0 * ratio**ind.alpha
    s = xt + et + kd * ind.v_x * ind.v_x / ind.v_c
    disc = np.sqrt(np.maximum(s * s - 4.0 * xt * et, 0.0))
    xc = np.where(s > 0, 2.0 * xt * et / np.where(s > 0, s + disc, 1.0), 0.0)
    return xt - xc, et - xc, xc


def observables_from_amounts(xt: np.ndarray, et: np.ndarray, ind: Individuals) -> dict[str, np.ndarray]:
    fx, fe, xc = _split(xt, et, ind)
    return {
        "free_ige_ng_ml": fe / ind.v_x * ind.mw_e,
        "total_ige_ng_ml": (fe / ind.v_x + xc / ind.v_c) * ind.mw_e,
        "total_omalizumab_ug_ml": (fx / ind.v_x + xc / ind.v_c) * ind.mw_x / 1000.0,
    }


def solve_population(
    ind: Individuals,
    events: Sequence[DoseEvent],
    days: float,
    *,
    record_days: Sequence[float] | np.ndarray | None = None,
    method: str = "DOP853",
    rtol: float = TIGHT_RTOL,
    atol: float = 1e-14,
    exact_depot: bool = False,
    **options: Any,
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """All patients of ``ind`` in one ``solve_ivp`` system from day 0 to ``days``.

    Returns (record times, observables of shape (times, n), final amounts of shape (3, n)); without
    ``record_days`` only the end is recorded. ``atol`` is in nmol (and mg for the depot). With
    ``exact_depot`` the depot is not a state but its closed form D(t) = D(a) exp(-ka (t - a)) since the
    last dose a (what a pharmacometrician writing a fast explicit solver would do: fast absorbers, ka up to
    ~100/day in the tails, otherwise force explicit methods to steps of ~0.03 day for stability alone).
    """
    n = ind.n
    ka, kx, ke, kc = ind.ka, ind.cl_x / ind.v_x, ind.cl_e / ind.v_x, ind.cl_c / ind.v_c
    to_nmol = 1000.0 / ind.mw_x

    last_dose_day = [0.0]  # for exact_depot: the day of the last dose and the depot then
    depot_then = [np.zeros(n)]

    def f(t: float, y: np.ndarray) -> np.ndarray:
        dep, xt, et = y[:n], y[n : 2 * n], y[2 * n :]
        if exact_depot:
            dep = depot_then[0] * np.exp(-ka * (t - last_dose_day[0]))
        fx, fe, xc = _split(xt, et, ind)
        absorb = ka * dep
        out = np.empty_like(y)
        out[:n] = 0.0 if exact_depot else -absorb
        out[n : 2 * n] = absorb * to_nmol - kx * fx - kc * xc
        out[2 * n :] = ind.r - ke * fe - kc * xc
        return out

    doses = _dose_table(events, n)
    rec = np.asarray([days] if record_days is None else record_days, dtype=float)
    y = np.concatenate([np.zeros(n), np.zeros(n), ind.ige0_ng_ml / ind.mw_e * ind.v_x])
    cuts = sorted({0.0, float(days), *[d for d in doses if d < days]})
    out: list[np.ndarray] = []
    out_t: list[np.ndarray] = []
    if rec.size and rec[0] == 0.0:
        out_t.append(np.zeros(1))
        out.append(y[:, None].copy())
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        y = y.copy()
        if a in doses:
            y[:n] += doses[a]
        if exact_depot:
            last_dose_day[0], depot_then[0] = a, y[:n].copy()
        want = rec[(rec > a) & (rec <= b)]
        sol = solve_ivp(
            f, (a, b), y, method=method, rtol=rtol, atol=atol, t_eval=want if want.size else None, **options
        )
        if not sol.success:
            raise RuntimeError(sol.message)
        if want.size:
            out_t.append(sol.t)
            out.append(sol.y)
        if sol.t.size and sol.t[-1] == b:
            y = sol.y[:, -1].copy()
        else:
            y = solve_ivp(f, (a, b), y, method=method, rtol=rtol, atol=atol, **options).y[:, -1].copy()
        if exact_depot:
            y[:n] = depot_then[0] * np.exp(-ka * (b - a))
    ys = np.concatenate(out, axis=1) if out else np.zeros((3 * n, 0))
    obs = observables_from_amounts(ys[n : 2 * n].T, ys[2 * n :].T, ind)
    return np.concatenate(out_t) if out_t else np.zeros(0), obs, y.reshape(3, n)


def tail_sample(model: str, seed: int = 18) -> tuple[Individuals, np.ndarray]:
    """Patients from the covariate tails, with a dose each (mg): weight and baseline IgE at both ends of the
    range the model was fitted on and at 70 kg / 150 IU/mL, absorption ka at eta_ka = -3, 0, +1.75 and +3
    SD (0.006 to 32 per day for Lowe 2009), doses 75, 300 and 600 mg; the other etas drawn from the
    model's omega (seeded). 108 patients: 3 weights x 3 IgE x 4 ka x 3 doses."""
    spec = model_spec(model)
    (w0, w1), (g0, g1) = spec["fitted_ranges"]["weight_kg"], spec["fitted_ranges"]["total_ige_iu_ml"]
    om = omega_matrix(model)
    rows = np.array(
        [
            (wt, ige, z, dose)
            for wt in (w0, 70.0, w1)
            for ige in (g0, 150.0, g1)
            for z in (-3.0, 0.0, 1.75, 3.0)
            for dose in (75.0, 300.0, 600.0)
        ]
    )
    n = rows.shape[0]
    active = np.flatnonzero(np.diag(om) > 0)
    chol = np.linalg.cholesky(om[np.ix_(active, active)])
    eta = np.zeros((n, len(PARAM_NAMES)))
    eta[:, active] = np.random.default_rng(seed).standard_normal((n, active.size)) @ chol.T
    ka = PARAM_NAMES.index("ka")
    eta[:, ka] = rows[:, 2] * np.sqrt(om[ka, ka])
    return individuals(model, rows[:, 0], rows[:, 1], eta), rows[:, 3]


def tail_events(dose_mg: np.ndarray) -> list[DoseEvent]:
    """First dose, a dose two weeks later, and one after a four-week gap (days 0, 14, 42), over 56 days."""
    return [DoseEvent(Decimal(d), dose_mg) for d in (0, 14, 42)]
