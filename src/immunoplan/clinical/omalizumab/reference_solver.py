"""Independent per-patient reference solution of the same binding model with scipy ``solve_ivp`` (LSODA).

Written directly from the textbook form (nlmixr2lib encoding of Hayashi 2007 / Lowe 2009): three states
(depot mg, total omalizumab nmol, total IgE nmol), complex X_C = (S - sqrt(S^2 - 4 XT ET)) / 2 with
S = XT + ET + Kd V_X V_E / V_C. Used by the tests (agreement to 1 %) and as the benchmark baseline; it shares
no numerical code with `pkpd.integrate`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.integrate import solve_ivp

from immunoplan.clinical.omalizumab.pkpd import DoseEvent, Individuals


def solve_one(
    ind: Individuals,
    i: int,
    events: Sequence[DoseEvent],
    t_eval: np.ndarray,
    *,
    rtol: float = 1e-8,
    atol: float = 1e-10,
) -> dict[str, np.ndarray]:
    """Free IgE (ng/mL), total IgE (ng/mL), total omalizumab (ug/mL) of patient ``i`` at ``t_eval`` (days)."""
    ka, clx, cle, clc = (float(ind.ka[i]), float(ind.cl_x[i]), float(ind.cl_e[i]), float(ind.cl_c[i]))
    vx, vc, r, kd0 = float(ind.v_x[i]), float(ind.v_c[i]), float(ind.r[i]), float(ind.kd0[i])
    ve, alpha, mwx, mwe = vx, ind.alpha, ind.mw_x, ind.mw_e

    def split(xt: float, et: float) -> tuple[float, float, float]:
        kd = kd0 * (xt / et) ** alpha if xt > 0 and et > 0 else 0.0
        s = xt + et + kd * vx * ve / vc
        xc = 0.5 * (s - math.sqrt(max(s * s - 4.0 * xt * et, 0.0)))
        return xt - xc, et - xc, xc

    def f(_t: float, y: np.ndarray) -> list[float]:
        dep, xt, et = y
        fx, fe, xc = split(xt, et)
        return [
            -ka * dep,
            ka * dep * 1000.0 / mwx - clx * fx / vx - clc * xc / vc,
            r - cle * fe / ve - clc * xc / vc,
        ]

    doses: dict[float, float] = {}
    for ev in events:
        d = float(ev.day)
        doses[d] = doses.get(d, 0.0) + float(
            np.asarray(ev.dose_mg, dtype=float).reshape(-1)[0]
            if np.ndim(ev.dose_mg) == 0
            else np.asarray(ev.dose_mg)[i]
        )
    y = np.array([0.0, 0.0, float(ind.ige0_ng_ml[i]) / mwe * ve])
    t_end = float(t_eval[-1])
    cuts = sorted({0.0, t_end, *[d for d in doses if d < t_end]})
    out_t, out_y = [], []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        y = y.copy()
        y[0] += doses.get(a, 0.0)
        mask = (t_eval >= a) & ((t_eval < b) | ((b == t_end) & (t_eval <= b)))
        sol = solve_ivp(f, (a, b), y, method="LSODA", t_eval=t_eval[mask], rtol=rtol, atol=atol)
        out_t.append(sol.t)
        out_y.append(sol.y)
        end = (
            solve_ivp(f, (a, b), y, method="LSODA", rtol=rtol, atol=atol)
            if sol.t.size == 0 or sol.t[-1] != b
            else sol
        )
        y = end.y[:, -1]
    ys = np.concatenate(out_y, axis=1)
    fx, fe, xc = np.vectorize(split)(ys[1], ys[2])
    return {
        "times_days": np.concatenate(out_t),
        "free_ige_ng_ml": fe / ve * mwe,
        "total_ige_ng_ml": (fe / ve + xc / vc) * mwe,
        "total_omalizumab_ug_ml": (fx / vx + xc / vc) * mwx / 1000.0,
    }
