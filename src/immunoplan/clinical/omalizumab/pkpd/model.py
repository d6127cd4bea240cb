"""Omalizumab-IgE quasi-equilibrium binding model (Hayashi 2007; Lowe 2009): parameters, covariates, rates.

Structure (Hayashi 2007 p.552; Lowe 2009 Eq. 1-3, as encoded in nlmixr2lib; the project's reference note
omalizumab_pkpd.md section 2). States are amounts in nmol except the depot (mg):

    dD/dt  = -ka D                                   (doses enter D)
    dXT/dt =  ka D (1000/MW_X) - CL_X C_fX - CL_C C_C  (total omalizumab, free + complex)
    dET/dt =  R               - CL_E C_fE - CL_C C_C  (total IgE, free + complex)

with instantaneous binding Kd = C_fX C_fE / C_C and Kd = Kd0 (XT/ET)^alpha. ET(0) = baseline total IgE
(IU/mL x 2.42 ng/IU / MW_E x V_E). Clearances and volumes are apparent (CL/F, V/F) as published.

This module holds the published parameters (reference data ``omalizumab_pkpd_models``), the covariate model
(`individuals`), the complex from the cancellation-free root of the binding quadratic (float32, in reusable
buffers), the right-hand side, the dose events and the state; `immunoplan.clinical.omalizumab.pkpd.solver`
integrates it. Arrays hold one entry per patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from immunoplan import reference
from immunoplan.errors import InvalidInput

MODELS = ("lowe2009", "hayashi2007")
DEFAULT_MODEL = "lowe2009"
PARAM_NAMES = ("ka", "cl_x", "v_x", "cl_e", "cl_c", "r", "v_c", "kd0")


def model_spec(model: str) -> dict[str, Any]:
    """Published parameters of ``model`` from reference/data/omalizumab_pkpd_models.json."""
    models = reference.load("omalizumab_pkpd_models")["models"]
    if model not in models:
        raise InvalidInput("model", f"unknown model {model!r}", ", ".join(MODELS))
    return models[model]


def ige_ng_per_iu() -> float:
    """1 IU/mL total IgE = 2.42 ng/mL (Hayashi 2007 p.549; Lowe 2009 Methods)."""
    return float(reference.load("omalizumab_pkpd_models")["ige_ng_per_iu"]["value"])


def omega_matrix(model: str) -> np.ndarray:
    """Covariance matrix of the log-normal etas, ordered as PARAM_NAMES."""
    om = model_spec(model)["omega"]
    idx = {n: i for i, n in enumerate(om["names"])}
    m = np.zeros((len(PARAM_NAMES), len(PARAM_NAMES)))
    for n, v in om["variances"].items():
        m[idx[n], idx[n]] = v
    for a, b, v in om["covariances"]:
        m[idx[a], idx[b]] = m[idx[b], idx[a]] = v
    order = [idx[n] for n in PARAM_NAMES]
    return m[np.ix_(order, order)]


@dataclass
class Individuals:
    """Individual parameters (arrays of shape (n,)) in day / L / nmol units."""

    ka: np.ndarray
    cl_x: np.ndarray
    v_x: np.ndarray
    cl_e: np.ndarray
    cl_c: np.ndarray
    r: np.ndarray  # IgE production, nmol/day
    v_c: np.ndarray
    kd0: np.ndarray  # nM
    alpha: float
    mw_x: float
    mw_e: float
    ige0_ng_ml: np.ndarray

    def __post_init__(self) -> None:
        self.kx = self.cl_x / self.v_x
        self.ke = self.cl_e / self.v_x
        self.kc = self.cl_c / self.v_c
        self.kd_vfac = self.kd0 * self.v_x * self.v_x / self.v_c
        self.kd_vfac32 = self.kd_vfac.astype(np.float32)

    @property
    def n(self) -> int:
        return int(self.ka.shape[0])

    @property
    def v_e(self) -> np.ndarray:
        return self.v_x  # V_E/f = V_X/f in both models

    def take(self, idx: np.ndarray | slice) -> Individuals:
        arrays = {
            k: getattr(self, k)[idx]
            for k in ("ka", "cl_x", "v_x", "cl_e", "cl_c", "r", "v_c", "kd0", "ige0_ng_ml")
        }
        return Individuals(alpha=self.alpha, mw_x=self.mw_x, mw_e=self.mw_e, **arrays)


def individuals(
    model: str,
    weight_kg: np.ndarray | float,
    total_ige_iu_ml: np.ndarray | float,
    eta: np.ndarray | None = None,
) -> Individuals:
    """Covariate (power) models of the chosen paper, plus optional etas (shape (n, 8), order PARAM_NAMES)."""
    spec = model_spec(model)
    wt = np.atleast_1d(np.asarray(weight_kg, dtype=float))
    ige_ng = np.atleast_1d(np.asarray(total_ige_iu_ml, dtype=float)) * ige_ng_per_iu()
    n = max(wt.size, ige_ng.size, 0 if eta is None else eta.shape[0])
    wt, ige_ng = np.broadcast_to(wt, (n,)).copy(), np.broadcast_to(ige_ng, (n,)).copy()
    e = np.zeros((n, len(PARAM_NAMES))) if eta is None else np.asarray(eta, dtype=float)
    th, we, ie = spec["theta"], spec["weight_exponents"], spec["ige_exponents"]
    w = wt / spec["ref_weight_kg"]
    g = ige_ng / spec["ref_ige_ng_ml"]
    col = {k: e[:, i] for i, k in enumerate(PARAM_NAMES)}

    def p(theta: float, key: str) -> np.ndarray:
        return theta * np.exp(col[key]) * w ** we.get(key, 0.0) * g ** ie.get(key, 0.0)

    cl_x = p(th["cl_x_l_day"], "cl_x")
    if spec["cl_c_is_increment_over_cl_x"]:  # Hayashi: CL_C = CL_X + delta CL_C (IIV on the increment)
        cl_c = cl_x + th["cl_c_l_day"] * np.exp(col["cl_c"])
    else:
        cl_c = p(th["cl_c_l_day"], "cl_c")
    r_nmol = (
        th["r_nmol_day"] if "r_nmol_day" in th else th["r_ug_day"] / spec["mw_ige_kda"]
    )  # ug/d / kDa = nmol/d
    return Individuals(
        ka=th["ka_per_day"] * np.exp(col["ka"]),
        cl_x=cl_x,
        v_x=p(th["v_x_l"], "v_x"),
        cl_e=p(th["cl_e_l_day"], "cl_e"),
        cl_c=cl_c,
        r=p(r_nmol, "r"),
        v_c=p(th["v_c_l"], "v_c"),
        kd0=p(th["kd0_nm"], "kd0"),
        alpha=float(th["alpha"]),
        mw_x=float(spec["mw_omalizumab_kda"]),
        mw_e=float(spec["mw_ige_kda"]),
        ige0_ng_ml=ige_ng,
    )


def half_lives_days(ind: Individuals) -> dict[str, np.ndarray]:
    """Theoretical half-lives ln2 V/CL of free omalizumab, complex and free IgE (Lowe 2009 p.73)."""
    ln2 = np.log(2.0)
    return {
        "free_omalizumab": ln2 * ind.v_x / ind.cl_x,
        "complex": ln2 * ind.v_c / ind.cl_c,
        "free_ige": ln2 * ind.v_e / ind.cl_e,
    }


def complex_amount(xt: np.ndarray, et: np.ndarray, ind: Individuals) -> np.ndarray:
    return _complex_and_k(xt, et, ind)[0]


def _complex_and_k(xt: np.ndarray, et: np.ndarray, ind: Individuals) -> tuple[np.ndarray, np.ndarray]:
    """Omalizumab-IgE complex amount X_C (nmol) at quasi-equilibrium, and k = Kd V_X V_E / V_C.

    X_C^2 - S X_C + XT ET = 0 with S = XT + ET + k and Kd = Kd0 (XT/ET)^alpha (Hayashi 2007 p.552).
    The smaller root is taken as 2 XT ET / (S + sqrt(D)) with D = (XT - ET)^2 + k (2 (XT + ET) + k)
    = S^2 - 4 XT ET, a form with no cancellation. It is evaluated in float32 for speed: relative error ~1e-7
    on X_C, i.e. ~1e-4 on free IgE when 99.9 % of IgE is bound, far below the 1 % agreement with LSODA that
    the tests require.
    """
    n = np.shape(xt)[0] if np.ndim(xt) else 1
    c = np.empty(n)
    k = np.empty(n, dtype=np.float32)
    complex_into(np.reshape(xt, n), np.reshape(et, n), ind, c, ComplexWork(n), k)
    return c, k


def binding(xt: np.ndarray, et: np.ndarray, ind: Individuals) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Free omalizumab, free IgE and complex amounts (nmol)."""
    c = complex_amount(xt, et, ind)
    return xt - c, et - c, c


def rhs(xt: np.ndarray, et: np.ndarray, ind: Individuals) -> tuple[np.ndarray, np.ndarray]:
    """Elimination/production part of d(XT)/dt and d(ET)/dt (nmol/day); absorption is handled exactly."""
    return _rates(xt, et, complex_amount(xt, et, ind), ind)


def _rates(xt: np.ndarray, et: np.ndarray, c: np.ndarray, ind: Individuals) -> tuple[np.ndarray, np.ndarray]:
    dxt = xt - c
    np.maximum(dxt, 0.0, out=dxt)
    dxt *= ind.kx
    det = et - c
    det *= ind.ke
    c = c * ind.kc
    dxt += c
    np.negative(dxt, out=dxt)
    det += c
    np.subtract(ind.r, det, out=det)
    return dxt, det


def et_stiffness(
    xt: np.ndarray, et: np.ndarray, c: np.ndarray, k: np.ndarray, ind: Individuals
) -> np.ndarray:
    """-d(dET/dt)/dET at fixed Kd: CL_E/V_E (1 - c') + CL_C/V_C c' with c' = dX_C/dET = x / (x + e + k).

    From differentiating X_C^2 - S X_C + XT ET = 0; the rate the integrating factor removes exactly.
    """
    x = np.maximum(xt - c, 0.0)
    e = et - c
    cp = x / (x + e + k)
    return ind.ke * (1.0 - cp) + ind.kc * cp


@dataclass(frozen=True)
class DoseEvent:
    """A subcutaneous dose at ``day`` from the start; ``dose_mg`` a scalar or one value per patient."""

    day: Decimal
    dose_mg: Any


def regular_regimen(dose_mg: Any, interval_weeks: Any, weeks: Any) -> list[DoseEvent]:
    """Doses every ``interval_weeks`` from day 0 while the dose day is before the end of ``weeks``."""
    interval_days = Decimal(interval_weeks) * 7
    end = Decimal(weeks) * 7
    out, t = [], Decimal(0)
    while t < end:
        out.append(DoseEvent(t, dose_mg))
        t += interval_days
    return out


def observables(
    xt: np.ndarray, et: np.ndarray, ind: Individuals, state: State | None = None
) -> dict[str, np.ndarray]:
    """Free IgE (ng/mL), total IgE (ng/mL) and total omalizumab (ug/mL) from the state amounts.

    With ``state`` (whose xt/et are the arrays given) its cached complex is used instead of recomputing it.
    """
    if state is None:
        x, e, c = binding(xt, et, ind)
    else:
        c, _ = state.complex_and_k(ind)
        x, e = xt - c, et - c
    cc = c / ind.v_c
    return {
        "free_ige_ng_ml": e / ind.v_e * ind.mw_e,
        "total_ige_ng_ml": (e / ind.v_e + cc) * ind.mw_e,
        "total_omalizumab_ug_ml": (x / ind.v_x + cc) * ind.mw_x / 1000.0,
    }


@dataclass
class State:
    """Per-patient amounts; ``c``/``k`` cache the complex and Kd term of the current (xt, et), and the
    solver's ``dx``/``de``/``lam`` its rates there (elimination of XT, dET/dt, stiffness; float32)."""

    depot_mg: np.ndarray
    xt: np.ndarray
    et: np.ndarray
    c: np.ndarray | None = None
    k: np.ndarray | None = None
    dx: np.ndarray | None = None
    de: np.ndarray | None = None
    lam: np.ndarray | None = None

    def complex_and_k(self, ind: Individuals) -> tuple[np.ndarray, np.ndarray]:
        """Complex and k as float32 arrays (exactly the values `_complex_and_k` casts to float64)."""
        if self.c is None or self.k is None:
            self.c, self.k = complex32(self.xt, self.et, ind, ComplexWork(ind.n))
        return self.c, self.k

    def free_ige_ng_ml(self, ind: Individuals) -> np.ndarray:
        c, _ = self.complex_and_k(ind)
        e = self.et - c
        e *= ind.mw_e
        e /= ind.v_e
        return e


def initial_state(ind: Individuals) -> State:
    """No drug; total IgE = baseline IgE (ng/mL / MW_E x V_E = nmol), as in nlmixr2lib."""
    n = ind.n
    return State(np.zeros(n), np.zeros(n), ind.ige0_ng_ml / ind.mw_e * ind.v_e)


class ComplexWork:
    """Float32 scratch buffers of the binding solve (`complex_into`) for n patients."""

    def __init__(self, n: int) -> None:
        def f32() -> np.ndarray:
            return np.empty(n, dtype=np.float32)

        self.x32, self.e32, self.k32, self.s32, self.d32, self.t32 = (f32() for _ in range(6))
        # floors as arrays: np.maximum with an array is ~4x faster than with a scalar (SIMD loop)
        self.zero32 = np.zeros(n, dtype=np.float32)
        self.tiny32 = np.full(n, 1e-12, dtype=np.float32)


def _to32(src: np.ndarray, out: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """max(src, floor) as float32 into ``out`` (``floor``: a float32 array of one value). Clamping after the
    cast equals clamping before it (rounding is monotone and the floors are kept) and is several times
    cheaper than a casting ``np.maximum``."""
    if src.dtype == np.float32:
        np.maximum(src, floor, out=out)
    else:
        np.copyto(out, src, casting="same_kind")
        np.maximum(out, floor, out=out)
    return out


def complex_into(
    xt: np.ndarray,
    et: np.ndarray,
    ind: Individuals,
    c: np.ndarray,
    w: ComplexWork,
    k_out: np.ndarray | None = None,
) -> np.ndarray:
    """`_complex_and_k` in float32 buffers: the complex into ``c`` (float32 or float64), k into ``k_out``
    (default: a scratch buffer), which is returned."""
    s, d, t = w.s32, w.d32, w.t32
    x = _to32(xt, w.x32, w.zero32)  # an RK stage may undershoot zero; no drug means no complex
    e = _to32(et, w.e32, w.tiny32)
    k = w.k32 if k_out is None else k_out
    np.divide(x, e, out=k)
    k += np.float32(1e-30)  # XT = 0 gives X_C = 0 whatever Kd is; the floor only avoids log(0)
    np.log(k, out=k)
    k *= np.float32(ind.alpha)
    np.exp(k, out=k)
    k *= ind.kd_vfac32
    # X_C = XT ET / (S/2 + sqrt(D/4)) with D/4 = ((XT - ET + k)/2)^2 + ET k and S/2 = (XT - ET + k)/2 + ET:
    # the same root as above with every term of D non-negative (no cancellation), in fewer passes.
    np.subtract(x, e, out=d)
    d += k
    d *= np.float32(0.5)
    np.multiply(d, d, out=t)
    np.multiply(e, k, out=s)
    t += s
    np.sqrt(t, out=t)
    t += d
    t += e
    x *= e
    np.divide(x, t, out=c)  # t >= ET > 0 (IgE production never stops)
    return k


def complex32(
    xt: np.ndarray, et: np.ndarray, ind: Individuals, w: ComplexWork
) -> tuple[np.ndarray, np.ndarray]:
    """New float32 arrays (complex, k): the values `_complex_and_k` gives, before its cast to float64."""
    c, k = np.empty(ind.n, dtype=np.float32), np.empty(ind.n, dtype=np.float32)
    complex_into(xt, et, ind, c, w, k)
    return c, k
