"""Compiled (numba) kernel of the omalizumab-IgE integrator: the numpy solver (`pkpd.solver`), fused.

The same numerics as `pkpd.solver.integrate` (exact depot; RK4 on XT + depot and integrating-factor RK4 on
ET on the 1-day base grid; the embedded third-order estimate from the rates at the new state, reused as the
next step's first stage; the same rejection rule, sub-step counts, graded grids, retries and MAX_SUBSTEPS),
but every quantity in float64 and every step of a patient in registers: one pass over memory per patient and
step instead of ~150. It agrees with ``solver.integrate(..., precision="float64")`` to rounding (measured
< 1e-12 relative; tests/omalizumab/test_omalizumab_pkpd_kernel.py requires <= 1e-9), and with the float32
default to ~2e-4 (the float32 evaluation error of the numpy path).

Patients are taken in blocks of LANES: within a block the loop over steps is outside and the loop over the
block's patients inside, so that the out-of-order core overlaps independent patients (one patient's step is
a chain of dependent divides, logs, exps and square roots). Blocks are spread over threads with ``prange``;
each patient's arithmetic depends on nothing but its own inputs (no reductions across patients, no
vectorised transcendental functions), so results are bitwise identical for any thread count or segment
size (tested). Per-patient summaries are updated in the kernel; the observables at recording times are
written into a buffer of a few recording times (a segment) that the caller turns into percentiles.

Compilation: ``cache=True`` keeps the machine code in ``__pycache__``; the first call in a fresh environment
compiles for ~10-20 s (docs/omalizumab.md has the measured time), later processes load it in well under a
second. `warm_up` compiles (or loads) it once per process.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from immunoplan.clinical.omalizumab.pkpd.model import DoseEvent, Individuals, State, initial_state
from immunoplan.clinical.omalizumab.pkpd.solver import (
    DEFAULT_RTOL,
    DEFAULT_STEPS_PER_DAY,
    DEPOT_RESOLVE,
    GRADE_EXTRA,
    GRADE_LEVELS,
    GRADE_SPLIT,
    GRADE_XT_FRACTION,
    KA_RESOLVE,
    LOCAL_FRACTION,
    MAX_SUBSTEPS,
    UNIFORM_KA_H,
    SolverStats,
)
from immunoplan.errors import InvalidInput

LANES = 16  # patients stepped together in one block (measured: 4-8 ~10 % slower, 1 ~3x slower)
RLANES = 4  # patients re-stepped together (one AVX2 vector of float64)
SEGMENT_RECORDS = 8  # recording times per kernel call (the observables buffer: 3 x 8 x n float64)
MARK_TROUGH, MARK_MID = 1, 2
# stats codes: m = 2^j -> j (1..9); graded m = -(64 split + lv), split = 2^s -> 10 + 41 s + lv
_N_CODES = 10 + 41 * 4
_LOG_DEPOT = -math.log(DEPOT_RESOLVE)
_P_KA, _P_KX, _P_KE, _P_KC, _P_R, _P_KCMKE, _P_VFAC, _P_KDV, _P_VX, _P_VC = range(10)
_N_PAR = 10
# rows of a block's work array: state (0-7: depot, xt, et, c, k, dx, de, lam), error, the state at the
# start of the step (8 rows), per-patient constants of the base step
_W_ERR, _W_START = 8, 9
_W_AF, _W_AH, _W_FULL, _W_KX, _W_KE, _W_KC, _W_R, _W_KDV, _W_KCMKE, _W_VFAC = range(17, 27)
_NW = 27

_JIT = {"cache": True, "fastmath": False, "nogil": True, "error_model": "numpy", "boundscheck": False}
_MAGIC = 6755399441055744.0  # 1.5 * 2^52: x + _MAGIC rounds x to an integer held in the low mantissa bits
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # fdlibm's split of ln 2 (the high part has 32 significant bits)
_LN2_LO = 1.90821492927058770002e-10
_SQRT2 = 1.4142135623730951
_EXP_C = tuple(1.0 / math.factorial(j) for j in range(14))  # Taylor to r^13 / 13!: < 1e-17 for |r| <= ln2/2


@intrinsic
def _bits(typingctx: Any, x: Any) -> Any:
    """The IEEE bits of a float64 as int64 (an LLVM bitcast, so loops using it still vectorise)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _from_bits(typingctx: Any, x: Any) -> Any:
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def _sqrt(typingctx: Any, x: Any) -> Any:
    """Square root as the LLVM intrinsic (IEEE, correctly rounded; numba calls libm's, which blocks
    vectorisation)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        fn = builder.module.declare_intrinsic("llvm.sqrt", [ir.DoubleType()])
        return builder.call(fn, [args[0]])

    return types.float64(types.float64), codegen


@njit(inline="always", **_JIT)
def _exp(x: float) -> float:
    """exp(x) for |x| <= 700 from arithmetic only (no libm call, so the loop over a block vectorises):
    x = n ln2 + r with |r| <= ln2/2 (Cody-Waite), exp(r) by its Taylor polynomial, 2^n from the bits.
    Within 2 ulp of the correctly rounded value (tested against math.exp)."""
    x = min(max(x, -700.0), 700.0)
    t = x * _LOG2E + _MAGIC
    nf = t - _MAGIC
    r = (x - nf * _LN2_HI) - nf * _LN2_LO
    c = _EXP_C
    q = c[13]
    q = q * r + c[12]
    q = q * r + c[11]
    q = q * r + c[10]
    q = q * r + c[9]
    q = q * r + c[8]
    q = q * r + c[7]
    q = q * r + c[6]
    q = q * r + c[5]
    q = q * r + c[4]
    q = q * r + c[3]
    q = q * r + c[2]
    q = q * r + c[1]
    q = q * r + c[0]
    return q * _from_bits((_bits(t) - _bits(_MAGIC) + 1023) << 52)


@njit(inline="always", **_JIT)
def _log(x: float) -> float:
    """log(x) for a positive normal x from arithmetic only: x = 2^e m with m in [sqrt(2)/2, sqrt(2)),
    log m = 2 atanh(s), s = (m - 1)/(m + 1), |s| <= 0.172, by its series to s^21. Within 2 ulp (tested)."""
    b = _bits(x)
    e = ((b >> 52) & 0x7FF) - 1023
    m = _from_bits((b & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    ef = float(e + 1) if big else float(e)
    sv = (m - 1.0) / (m + 1.0)
    s2 = sv * sv
    q = 1.0 / 21.0
    q = q * s2 + 1.0 / 19.0
    q = q * s2 + 1.0 / 17.0
    q = q * s2 + 1.0 / 15.0
    q = q * s2 + 1.0 / 13.0
    q = q * s2 + 1.0 / 11.0
    q = q * s2 + 1.0 / 9.0
    q = q * s2 + 1.0 / 7.0
    q = q * s2 + 1.0 / 5.0
    q = q * s2 + 1.0 / 3.0
    q = q * s2 + 1.0
    return ef * _LN2_HI + (2.0 * sv * q + ef * _LN2_LO)


@njit(inline="always", **_JIT)
def _complex(xin: float, ein: float, kdv: float, alpha: float) -> tuple[float, float]:
    """Complex X_C and k = Kd V_X V_E / V_C (model.complex_into, the same operations in float64)."""
    x = max(xin, 0.0)
    e = max(ein, 1e-12)
    k = _exp(_log(x / e + 1e-30) * alpha) * kdv
    d = ((x - e) + k) * 0.5
    t = d * d + e * k
    t = _sqrt(t) + d + e
    return (x * e) / t, k


@njit(inline="always", **_JIT)
def _rates(xt: float, et: float, c: float, kx: float, ke: float, kc: float, r: float) -> tuple[float, float]:
    """Elimination rate of XT (positive) and dET/dt (solver._Stepper._rates)."""
    xf = max(xt - c, 0.0)
    ef = et - c
    tmp = c * kc
    return xf * kx + tmp, r - (ef * ke + tmp)


@njit(inline="always", **_JIT)
def _step(
    kx: float,
    ke: float,
    kc: float,
    r: float,
    kdv: float,
    kcmke: float,
    vfac: float,
    alpha: float,
    h: float,
    absorbed_full: float,
    absorbed_half: float,
    full: float,
    inv_tol: float,
    depot: float,
    xt: float,
    et: float,
    dx1: float,
    de1: float,
    lam: float,
) -> tuple[float, float, float, float, float, float, float, float, float]:
    """One step of size h of one patient (solver._Stepper.step in float64; kcmke = kc - ke, vfac =
    V_X/V_C - 1): returns the new depot, XT, ET, the complex, k, dx, de and stiffness there, and the
    normalised error estimate."""
    hh = 0.5 * h
    h6 = h / 6.0
    bf = depot * absorbed_full + xt
    bh = depot * absorbed_half + xt
    e2 = _exp(lam * -hh)
    e1 = e2 * e2
    # stage 2
    n1 = lam * et + de1
    y = (n1 * hh + et) * e2
    xa = dx1 * -hh + bh
    c, _ = _complex(xa, y, kdv, alpha)
    dx, de = _rates(xa, y, c, kx, ke, kc, r)
    n2 = lam * y + de
    kxs = dx1 + dx
    kxs = kxs + dx
    # stage 3
    y = e2 * et + n2 * hh
    xa = dx * -hh + bh
    c, _ = _complex(xa, y, kdv, alpha)
    dx, de = _rates(xa, y, c, kx, ke, kc, r)
    n3 = lam * y + de
    kxs = kxs + dx
    kxs = kxs + dx
    # stage 4
    y4 = (e2 * n3) * h + e1 * et
    xa = dx * -h + bf
    c, _ = _complex(xa, y4, kdv, alpha)
    dx4, de = _rates(xa, y4, c, kx, ke, kc, r)
    n4 = lam * y4 + de
    kxs = kxs + dx4
    # combine
    kxs = kxs * -h6
    xt_new = max(bf + kxs, 0.0)
    n2 = (n2 + n3) * e2
    n2 = n2 + n2
    n1 = ((n1 * e1 + n2) + n4) * h6
    et_new = max(et * e1 + n1, 0.0)
    depot_new = depot * full
    # stage 5 at the new state (first-same-as-last) and the error estimate
    c5, k5 = _complex(xt_new, et_new, kdv, alpha)
    n4 = n4 - lam * et_new
    xf = max(xt_new - c5, 0.0)
    ef = et_new - c5
    q = 1.0 / ((xf + ef) + k5)
    lam_new = (xf * q) * kcmke + ke
    dx5, de5 = _rates(xt_new, et_new, c5, kx, ke, kc, r)
    de_err = n4 - de5
    dx_err = dx5 - dx4
    tmp = ((ef + k5) * de_err - ef * dx_err) * q
    err = abs(tmp / ef)
    tmp = (de_err - tmp) * (vfac * h6)
    e_tot = abs((de_err * h6 + tmp) / et_new)
    err = err * h6
    if e_tot > err:
        err = e_tot
    e_om = abs((dx_err * h6 + tmp) / max(xt_new, 1e-12))
    if e_om > err:
        err = e_om
    return depot_new, xt_new, et_new, c5, k5, dx5, de5, lam_new, err * inv_tol


@njit(**_JIT)
def _code(m: int) -> int:
    if m > 0:
        return int(round(math.log2(m)))
    split = (-m) // 64
    return 10 + 41 * int(round(math.log2(split))) + (-m) % 64


@njit(inline="always", **_JIT)
def _observe(
    s: int,
    i: int,
    xt: float,
    et: float,
    c: float,
    p: np.ndarray,
    mw_e: float,
    mw_x: float,
    rec_every: int,
    rec_base: int,
    rec: np.ndarray,
    marks: np.ndarray,
    targets: np.ndarray,
    nadir: np.ndarray,
    below: np.ndarray,
    trough: np.ndarray,
    mid: np.ndarray,
) -> None:
    """Summaries (population._Tracker.record_chunk) and observables of patient i at base step s."""
    v_e, v_c = p[_P_VX, i], p[_P_VC, i]
    e = et - c
    if rec_every > 0 and s % rec_every == 0:
        cc = c / v_c
        free = e / v_e * mw_e
        r = s // rec_every - rec_base
        rec[0, r, i] = free
        rec[1, r, i] = (e / v_e + cc) * mw_e
        rec[2, r, i] = ((xt - c) / v_e + cc) * mw_x / 1000.0
    else:
        free = e * mw_e / v_e
    if s > 0:
        if free < nadir[i]:
            nadir[i] = free
        for j in range(targets.shape[0]):
            if free < targets[j]:
                below[j, i] += 1
    mk = marks[s]
    if mk & MARK_TROUGH:
        trough[i] = free
    if mk & MARK_MID:
        mid[i] = free


@njit(parallel=True, **_JIT)
def _run(
    p: np.ndarray,
    alpha: float,
    to_nmol: float,
    mw_e: float,
    mw_x: float,
    st: np.ndarray,
    have_rates: bool,
    s0: int,
    s1: int,
    observe_start: bool,
    h: float,
    tol: float,
    dose_start: np.ndarray,
    dose_amt: np.ndarray,
    last_dose0: int,
    rec_every: int,
    rec_base: int,
    rec: np.ndarray,
    marks: np.ndarray,
    targets: np.ndarray,
    nadir: np.ndarray,
    below: np.ndarray,
    trough: np.ndarray,
    mid: np.ndarray,
    counts: np.ndarray,
    unconverged: np.ndarray,
    max_err: np.ndarray,
) -> None:
    """Base steps s0 .. s1 - 1 of every patient; st (8, n): depot, xt, et, c, k, dx, de, lam in and out.
    Observations at steps s0 (if observe_start) and s0 + 1 .. s1; dose rows dose_start[s] .. dose_start[s+1]
    of dose_amt are added before step s. Per-block counters: counts (block, code), unconverged, max_err."""
    n = p.shape[1]
    n_blocks = (n + LANES - 1) // LANES
    inv_tol = 1.0 / tol
    for b in prange(n_blocks):
        a = b * LANES
        z = min(n, a + LANES) - a
        # one flat work array per block (rows of LANES, see _W_*): its rows have fixed distances, so the
        # loop over the block's patients vectorises with no aliasing checks; padding lanes copy lane 0
        w = np.empty(_NW * LANES)
        wr = np.empty(_NW * RLANES)
        pend_j = np.empty(LANES, dtype=np.int64)
        pend_m = np.empty(LANES, dtype=np.int64)
        for j in range(LANES):
            i = a + j if j < z else a
            for f in range(8):
                w[f * LANES + j] = st[f, i]
            ka = p[_P_KA, i]
            w[_W_AF * LANES + j] = -math.expm1(-ka * h) * to_nmol
            w[_W_AH * LANES + j] = -math.expm1(-ka * h / 2.0) * to_nmol
            w[_W_FULL * LANES + j] = math.exp(-ka * h)
            w[_W_KX * LANES + j] = p[_P_KX, i]
            w[_W_KE * LANES + j] = p[_P_KE, i]
            w[_W_KC * LANES + j] = p[_P_KC, i]
            w[_W_R * LANES + j] = p[_P_R, i]
            w[_W_KDV * LANES + j] = p[_P_KDV, i]
            w[_W_KCMKE * LANES + j] = p[_P_KCMKE, i]
            w[_W_VFAC * LANES + j] = p[_P_VFAC, i]
            if not have_rates:
                xt0, et0 = w[LANES + j], w[2 * LANES + j]
                c, k = _complex(xt0, et0, p[_P_KDV, i], alpha)
                xf = max(xt0 - c, 0.0)
                ef = et0 - c
                q = 1.0 / ((xf + ef) + k)
                w[7 * LANES + j] = (xf * q) * p[_P_KCMKE, i] + p[_P_KE, i]
                dx, de = _rates(xt0, et0, c, p[_P_KX, i], p[_P_KE, i], p[_P_KC, i], p[_P_R, i])
                w[3 * LANES + j], w[4 * LANES + j], w[5 * LANES + j], w[6 * LANES + j] = c, k, dx, de
            if observe_start and j < z:
                _observe(
                    s0, i, w[LANES + j], w[2 * LANES + j], w[3 * LANES + j], p, mw_e, mw_x, rec_every,
                    rec_base, rec, marks, targets, nadir, below, trough, mid,
                )  # fmt: skip
        last_dose = last_dose0
        for s in range(s0, s1):
            if dose_start[s + 1] > dose_start[s]:
                last_dose = s
                for j in range(LANES):
                    i = a + j if j < z else a
                    for d in range(dose_start[s], dose_start[s + 1]):
                        w[j] = w[j] + dose_amt[d, i]
            since = s - last_dose if last_dose >= 0 else -1
            check = since >= 0 and (since == 0 or since * KA_RESOLVE < _LOG_DEPOT)
            _block_step(w, alpha, h, inv_tol)
            n_pend = 0
            for j in range(z):
                i = a + j
                err = w[_W_ERR * LANES + j]
                depot0, xt0 = w[_W_START * LANES + j], w[(_W_START + 1) * LANES + j]
                # rejection rule (solver._Stepper.rejected)
                picked = err > 1.0
                level = 0
                e_rule = err
                if check:
                    kh = p[_P_KA, i] * h
                    absorbing = kh > KA_RESOLVE and kh * since < _LOG_DEPOT
                    if absorbing and kh <= UNIFORM_KA_H:
                        picked = True
                        e_rule = max(err, (kh / KA_RESOLVE) ** 3 / 1.5)
                    elif absorbing:
                        level = int(np.ceil(np.log2(max(kh, 1.0)))) + GRADE_EXTRA
                    if since == 0 and xt0 < GRADE_XT_FRACTION * (depot0 * w[_W_AF * LANES + j]):
                        level = max(level, GRADE_LEVELS)
                    if level > 0:
                        picked = True
                        level = min(level, 40)
                if not picked:
                    if err > max_err[b]:
                        max_err[b] = err
                else:
                    if level > 0:
                        m = -(64 * GRADE_SPLIT + level)
                    else:
                        need = np.cbrt(e_rule * 1.5)
                        m = int(np.exp2(np.ceil(np.log2(max(need, 2.0)))))
                        m = min(m, MAX_SUBSTEPS)
                    pend_m[n_pend] = m
                    pend_j[n_pend] = j
                    n_pend += 1
            if n_pend:
                _refine_block(
                    w, wr, p, a, alpha, to_nmol, h, inv_tol, pend_j, pend_m, n_pend, counts[b], unconverged,
                    max_err, b,
                )  # fmt: skip
            for j in range(z):
                i = a + j
                _observe(
                    s + 1, i, w[LANES + j], w[2 * LANES + j], w[3 * LANES + j], p, mw_e, mw_x, rec_every,
                    rec_base, rec, marks, targets, nadir, below, trough, mid,
                )  # fmt: skip
        for j in range(z):
            for f in range(8):
                st[f, a + j] = w[f * LANES + j]


@njit(**_JIT)
def _block_step(w: np.ndarray, alpha: float, h: float, inv_tol: float) -> None:
    """The base step of all LANES patients of a block in place (start state into rows _W_START..): a
    loop of a fixed trip count over independent patients with rows at fixed distances, which LLVM
    vectorises (4 float64 a vector on AVX2)."""
    for j in range(LANES):
        for f in range(8):
            w[(_W_START + f) * LANES + j] = w[f * LANES + j]
        r9 = _step(
            w[_W_KX * LANES + j], w[_W_KE * LANES + j], w[_W_KC * LANES + j], w[_W_R * LANES + j],
            w[_W_KDV * LANES + j], w[_W_KCMKE * LANES + j], w[_W_VFAC * LANES + j], alpha, h,
            w[_W_AF * LANES + j], w[_W_AH * LANES + j], w[_W_FULL * LANES + j], inv_tol, w[j],
            w[LANES + j], w[2 * LANES + j], w[5 * LANES + j], w[6 * LANES + j], w[7 * LANES + j],
        )  # fmt: skip
        # explicit stores (a tuple indexed by a loop variable, or this body in an inlined helper taking
        # the width, stops the vectoriser: measured 4x slower)
        w[j] = r9[0]
        w[LANES + j] = r9[1]
        w[2 * LANES + j] = r9[2]
        w[3 * LANES + j] = r9[3]
        w[4 * LANES + j] = r9[4]
        w[5 * LANES + j] = r9[5]
        w[6 * LANES + j] = r9[6]
        w[7 * LANES + j] = r9[7]
        w[_W_ERR * LANES + j] = r9[8]


@njit(**_JIT)
def _block_step_r(w: np.ndarray, alpha: float, h: float, inv_tol: float) -> None:
    """One sub-step of the RLANES patients re-stepped together (as `_block_step`)."""
    for j in range(RLANES):
        for f in range(8):
            w[(_W_START + f) * RLANES + j] = w[f * RLANES + j]
        r9 = _step(
            w[_W_KX * RLANES + j], w[_W_KE * RLANES + j], w[_W_KC * RLANES + j], w[_W_R * RLANES + j],
            w[_W_KDV * RLANES + j], w[_W_KCMKE * RLANES + j], w[_W_VFAC * RLANES + j], alpha, h,
            w[_W_AF * RLANES + j], w[_W_AH * RLANES + j], w[_W_FULL * RLANES + j], inv_tol, w[j],
            w[RLANES + j], w[2 * RLANES + j], w[5 * RLANES + j], w[6 * RLANES + j], w[7 * RLANES + j],
        )  # fmt: skip
        # explicit stores (a tuple indexed by a loop variable, or this body in an inlined helper taking
        # the width, stops the vectoriser: measured 4x slower)
        w[j] = r9[0]
        w[RLANES + j] = r9[1]
        w[2 * RLANES + j] = r9[2]
        w[3 * RLANES + j] = r9[3]
        w[4 * RLANES + j] = r9[4]
        w[5 * RLANES + j] = r9[5]
        w[6 * RLANES + j] = r9[6]
        w[7 * RLANES + j] = r9[7]
        w[_W_ERR * RLANES + j] = r9[8]


@njit(**_JIT)
def _refine_block(
    w: np.ndarray,
    wr: np.ndarray,
    p: np.ndarray,
    a: int,
    alpha: float,
    to_nmol: float,
    h: float,
    inv_tol: float,
    pend_j: np.ndarray,
    pend_m: np.ndarray,
    n_pend: int,
    counts: np.ndarray,
    unconverged: np.ndarray,
    max_err: np.ndarray,
    b: int,
) -> None:
    """Re-step the pending lanes (pend_j, first sub-step counts pend_m) of block w from the start of the
    step (solver._refine and _sub_steps): lanes with the same m are stepped RLANES at a time (padding lanes
    copy the first), m sub-steps of h/m, or for m < 0 the graded grid; a lane whose summed estimate is
    above 1 goes on with 2m (graded: twice the split) until MAX_SUBSTEPS. The accepted state is written
    back into w; counters as in `_run`."""
    acc = np.zeros(RLANES)
    grp = np.empty(RLANES, dtype=np.int64)
    while n_pend > 0:
        m = pend_m[0]
        g = 0
        for q in range(n_pend):  # the first RLANES pending lanes with this m
            if pend_m[q] == m and g < RLANES:
                grp[g] = q
                g += 1
        for r in range(RLANES):
            jj = pend_j[grp[r if r < g else 0]]
            i = a + jj
            for f in range(8):
                wr[f * RLANES + r] = w[(_W_START + f) * LANES + jj]
            wr[_W_KX * RLANES + r] = p[_P_KX, i]
            wr[_W_KE * RLANES + r] = p[_P_KE, i]
            wr[_W_KC * RLANES + r] = p[_P_KC, i]
            wr[_W_R * RLANES + r] = p[_P_R, i]
            wr[_W_KDV * RLANES + r] = p[_P_KDV, i]
            wr[_W_KCMKE * RLANES + r] = p[_P_KCMKE, i]
            wr[_W_VFAC * RLANES + r] = p[_P_VFAC, i]
            acc[r] = 0.0
        if m > 0:
            n_sizes, split, levels = 1, m, 0
        else:
            split, levels = (-m) // 64, (-m) % 64
            n_sizes = levels + 1
        for sz in range(n_sizes):
            size = h / m if m > 0 else h * 2.0 ** -(levels if sz == 0 else levels - sz + 1) / split
            for r in range(RLANES):
                ka = p[_P_KA, a + pend_j[grp[r if r < g else 0]]]
                wr[_W_AF * RLANES + r] = -math.expm1(-ka * size) * to_nmol
                wr[_W_AH * RLANES + r] = -math.expm1(-ka * size / 2.0) * to_nmol
                wr[_W_FULL * RLANES + r] = math.exp(-ka * size)
            for _ in range(split):
                _block_step_r(wr, alpha, size, inv_tol)
                for r in range(RLANES):
                    acc[r] += wr[_W_ERR * RLANES + r]
        done = np.zeros(n_pend, dtype=np.bool_)
        for r in range(g):
            q = grp[r]
            err = acc[r]
            if err <= 1.0 or abs(m) >= MAX_SUBSTEPS:
                jj = pend_j[q]
                for f in range(8):
                    w[f * LANES + jj] = wr[f * RLANES + r]
                if err > 1.0:
                    unconverged[b] += 1
                if err > max_err[b]:
                    max_err[b] = err
                counts[_code(m)] += 1
                done[q] = True
            else:
                pend_m[q] = 2 * m if m > 0 else m - 64 * ((-m) // 64)
        k = 0
        for q in range(n_pend):
            if not done[q]:
                pend_j[k] = pend_j[q]
                pend_m[k] = pend_m[q]
                k += 1
        n_pend = k


@dataclass
class KernelResult:
    """Per-patient summaries of free IgE (ng/mL) on the base grid, the final state and the recording
    times. ``below_steps[j, i]``: base steps of patient i ending below ``targets[j]``; nadir over t > 0;
    trough/mid: the value at the marked steps (NaN if none)."""

    times: np.ndarray
    nadir: np.ndarray
    below_steps: np.ndarray
    trough: np.ndarray
    mid: np.ndarray
    final: State


def _params(ind: Individuals) -> np.ndarray:
    p = np.empty((_N_PAR, ind.n))
    p[_P_KA], p[_P_KX], p[_P_KE], p[_P_KC], p[_P_R] = ind.ka, ind.kx, ind.ke, ind.kc, ind.r
    p[_P_KCMKE] = ind.kc - ind.ke
    p[_P_VFAC] = ind.v_x / ind.v_c - 1.0
    p[_P_KDV], p[_P_VX], p[_P_VC] = ind.kd_vfac, ind.v_x, ind.v_c
    return p


def default_threads() -> int:
    """Threads for the kernel: the usable CPUs (each thread takes whole blocks of patients, there is no
    per-step barrier; measured on 2 cores: 2 threads 1.9x faster than one at 10^5 patients)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def simulate(
    ind: Individuals,
    events: Sequence[DoseEvent],
    days: Any,
    *,
    steps_per_day: int = DEFAULT_STEPS_PER_DAY,
    rtol: float = DEFAULT_RTOL,
    record_every_steps: int = 0,
    marks: dict[int, int] | None = None,
    targets: Sequence[float] = (),
    on_records: Callable[[np.ndarray, np.ndarray], None] | None = None,
    threads: int | None = None,
    stats: SolverStats | None = None,
    segment_records: int = SEGMENT_RECORDS,
) -> KernelResult:
    """Integrate every patient from day 0 to ``days`` (as `solver.integrate`, same arguments and rules).

    With ``record_every_steps`` > 0 the observables at base steps 0, k, 2k ... are passed to
    ``on_records(times, values)`` a segment of up to ``segment_records`` recording times at a time, values of
    shape (3, times, n): free IgE (ng/mL), total IgE (ng/mL), total omalizumab (ug/mL). ``marks`` maps a base
    step to MARK_TROUGH | MARK_MID (free IgE kept per patient); ``targets`` (ng/mL): base steps below each
    are counted. ``threads`` (default `default_threads`) and ``segment_records`` change the speed only.
    """
    n_steps_dec = Decimal(days) * steps_per_day
    if n_steps_dec != n_steps_dec.to_integral_value() or n_steps_dec < 0:
        raise InvalidInput("days", f"must be a non-negative multiple of 1/{steps_per_day} day")
    if not 1e-8 <= float(rtol) <= 0.1:
        raise InvalidInput("rtol", "must be between 1e-8 and 0.1", "1e-8 .. 0.1")
    n_steps = int(n_steps_dec)
    n = ind.n
    h = 1.0 / steps_per_day
    rows: dict[int, list[np.ndarray]] = {}
    for ev in events:
        k = Decimal(ev.day) * steps_per_day
        if k != k.to_integral_value():
            raise InvalidInput("dose day", f"{ev.day} is not on the 1/{steps_per_day}-day grid")
        if int(k) < n_steps:
            rows.setdefault(int(k), []).append(np.broadcast_to(np.asarray(ev.dose_mg, dtype=float), (n,)))
    dose_steps = sorted(rows)
    dose_amt = np.zeros((max(1, sum(len(v) for v in rows.values())), n))
    dose_start = np.zeros(n_steps + 2, dtype=np.int64)
    d = 0
    for s in range(n_steps + 1):
        dose_start[s] = d
        for row in rows.get(s, []):
            dose_amt[d] = row
            d += 1
    dose_start[n_steps + 1] = d
    mark_arr = np.zeros(n_steps + 1, dtype=np.int64)
    for s, v in (marks or {}).items():
        if 0 <= s <= n_steps:
            mark_arr[s] = v
    tgt = np.asarray(list(targets), dtype=float)
    threads = default_threads() if threads is None else max(1, int(threads))
    p = _params(ind)
    st0 = initial_state(ind)
    st = np.zeros((8, n))
    st[0], st[1], st[2] = st0.depot_mg, st0.xt, st0.et
    nadir = np.full(n, np.inf)
    below = np.zeros((tgt.size, n), dtype=np.int64)
    trough = np.full(n, np.nan)
    mid = np.full(n, np.nan)
    n_blocks = max(1, -(-n // LANES))
    counts = np.zeros((n_blocks, _N_CODES), dtype=np.int64)
    unconv = np.zeros(n_blocks, dtype=np.int64)
    max_err = np.zeros(n_blocks)
    every = int(record_every_steps)
    seg_steps = max(1, segment_records) * every if every > 0 else n_steps
    times: list[float] = []
    old = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        s0 = 0
        while True:
            s1 = min(n_steps, s0 + seg_steps) if s0 < n_steps else s0
            first = s0 == 0
            obs_lo = s0 if first else s0 + 1
            rec_idx = [s for s in range(obs_lo, s1 + 1) if every > 0 and s % every == 0]
            rec_base = rec_idx[0] // every if rec_idx else 0
            rec = np.empty((3, max(1, len(rec_idx)), n))
            last = max([s for s in dose_steps if s < s0], default=-1)
            _run(
                p, ind.alpha, 1000.0 / ind.mw_x, ind.mw_e, ind.mw_x, st, not first, s0, s1, first, h,
                float(rtol) * LOCAL_FRACTION, dose_start, dose_amt, last, every, rec_base, rec, mark_arr, tgt,
                nadir, below, trough, mid, counts, unconv, max_err,
            )  # fmt: skip
            if rec_idx:
                t = np.asarray(rec_idx, dtype=float) * h
                times.extend(t.tolist())
                if on_records is not None:
                    on_records(t, rec[:, : len(rec_idx)])
            if s1 >= n_steps:
                break
            s0 = s1
    finally:
        numba.set_num_threads(old)
    if stats is not None:
        stats.base_steps += n_steps
        stats.patient_steps += n_steps * n
        tot = counts.sum(axis=0)
        for code in np.flatnonzero(tot).tolist():
            if code < 10:
                m = 2**code
            else:
                s_, lv = divmod(code - 10, 41)
                m = -(64 * 2**s_ + lv)
            stats.refined[m] = stats.refined.get(m, 0) + int(tot[code])
        stats.unconverged += int(unconv.sum())
        stats.max_error = max(stats.max_error, float(max_err.max()))
    final = State(st[0].copy(), st[1].copy(), st[2].copy())
    return KernelResult(np.asarray(times), nadir, below, trough, mid, final)


def integrate(
    ind: Individuals,
    events: Sequence[DoseEvent],
    days: Any,
    *,
    steps_per_day: int = DEFAULT_STEPS_PER_DAY,
    rtol: float = DEFAULT_RTOL,
    record_every_steps: int | None = None,
    threads: int | None = None,
    stats: SolverStats | None = None,
) -> tuple[np.ndarray, list[dict[str, np.ndarray]], State]:
    """`solver.integrate`'s interface (times, observables per recording time, final state) on the kernel."""
    keys = ("free_ige_ng_ml", "total_ige_ng_ml", "total_omalizumab_ug_ml")
    records: list[dict[str, np.ndarray]] = []

    def keep(_t: np.ndarray, values: np.ndarray) -> None:
        for r in range(values.shape[1]):
            records.append({k: values[q, r].copy() for q, k in enumerate(keys)})

    res = simulate(
        ind,
        events,
        days,
        steps_per_day=steps_per_day,
        rtol=rtol,
        record_every_steps=record_every_steps or 0,
        on_records=keep,
        threads=threads,
        stats=stats,
    )
    return res.times, records, res.final


@functools.cache
def warm_up() -> None:
    """Compile (or load from the cache) the kernel once per process: a 1-patient, 1-day run."""
    from immunoplan.clinical.omalizumab.pkpd.model import individuals

    simulate(individuals("lowe2009", 70.0, 150.0), [DoseEvent(Decimal(0), 150.0)], 1, record_every_steps=1)
