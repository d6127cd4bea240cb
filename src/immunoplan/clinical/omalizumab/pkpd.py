"""Omalizumab-IgE quasi-equilibrium binding model (Hayashi 2007; Lowe 2009), vectorised over patients.

Structure (Hayashi 2007 p.552; Lowe 2009 Eq. 1-3, as encoded in nlmixr2lib; /work/shared/reference/
omalizumab_pkpd.md section 2). States are amounts in nmol except the depot (mg):

    dD/dt  = -ka D                                   (doses enter D)
    dXT/dt =  ka D (1000/MW_X) - CL_X C_fX - CL_C C_C  (total omalizumab, free + complex)
    dET/dt =  R               - CL_E C_fE - CL_C C_C  (total IgE, free + complex)

with instantaneous binding Kd = C_fX C_fE / C_C and Kd = Kd0 (XT/ET)^alpha. ET(0) = baseline total IgE
(IU/mL x 2.42 ng/IU / MW_E x V_E). Clearances and volumes are apparent (CL/F, V/F) as published.

Numerics: the depot is solved exactly; XT + depot by RK4 and ET by integrating-factor RK4 on a fixed 1-day
grid that lands on every dosing time, with 1/8-day sub-steps for patients whose free IgE is still falling
steeply after a dose. The complex comes from the cancellation-free root of the binding quadratic. Arrays hold
one entry per patient, stepped in chunks (on worker threads if asked); there is no Python loop over patients.
States are float64; the complex and the RK stages are evaluated in float32 in preallocated per-chunk buffers
(agreement with scipy LSODA stays within 0.2 %, the tests require 1 %).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from immunoplan import reference
from immunoplan.errors import InvalidInput

MODELS = ("lowe2009", "hayashi2007")
DEFAULT_MODEL = "lowe2009"
PARAM_NAMES = ("ka", "cl_x", "v_x", "cl_e", "cl_c", "r", "v_c", "kd0")
DEFAULT_STEPS_PER_DAY = 1
REFINE_SUBSTEPS = 8
REFINE_DAYS = 3
REFINE_FREE_FRACTION = 0.25
CHUNK_SIZE = 32768  # patients per chunk at most: fewer numpy calls per patient; buffers stay in L3


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
    _complex_into(np.reshape(xt, n), np.reshape(et, n), ind, c, _ComplexWork(n), k)
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
    """Per-patient amounts; ``c``/``k`` cache the complex and Kd term of the current (xt, et)."""

    depot_mg: np.ndarray
    xt: np.ndarray
    et: np.ndarray
    c: np.ndarray | None = None
    k: np.ndarray | None = None

    def complex_and_k(self, ind: Individuals) -> tuple[np.ndarray, np.ndarray]:
        """Complex and k as float32 arrays (exactly the values `_complex_and_k` casts to float64)."""
        if self.c is None or self.k is None:
            self.c, self.k = _complex32(self.xt, self.et, ind, _ComplexWork(ind.n))
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


def integrate(
    ind: Individuals,
    events: Sequence[DoseEvent],
    days: Any,
    *,
    steps_per_day: int = DEFAULT_STEPS_PER_DAY,
    refine_substeps: int = REFINE_SUBSTEPS,
    on_step: Callable[[float, list[State], list[Individuals]], None] | None = None,
    on_chunk: Callable[[float, int, State, Individuals], None] | None = None,
    record_every_steps: int | None = None,
    chunk_size: int | None = None,
    threads: int = 1,
) -> tuple[np.ndarray, list[dict[str, np.ndarray]], State]:
    """Integrate all patients from day 0 to ``days`` on a base grid of 1/steps_per_day day.

    Patients whose free IgE is still above REFINE_FREE_FRACTION of total IgE when a dose is given (the first
    dose, a dose after a long gap, hyper-IgE) are stepped with ``refine_substeps`` sub-steps per base step for
    the next REFINE_DAYS days: that is when their free IgE falls by one to two orders of magnitude in a day.
    The refined patients of all chunks are pooled (and re-chunked) so that a handful of them per chunk does
    not cost a full set of numpy calls per chunk and sub-step. Patients are stepped in cache-sized chunks
    (optionally on ``threads`` threads; numpy releases the GIL); every patient's arithmetic is elementwise,
    so results do not depend on ``chunk_size`` (default `balanced_chunk_size`) or ``threads``. After every
    base step ``on_chunk(t, i, state, individuals)`` is called for each chunk ``i`` (on the worker threads)
    and then ``on_step(t, states, individuals)`` with all per-chunk states; with ``record_every_steps`` the
    observables at t = 0, k*record_every_steps base steps ... are returned.
    Dose days must lie on the base grid.
    """
    n_steps_dec = Decimal(days) * steps_per_day
    if n_steps_dec != n_steps_dec.to_integral_value() or n_steps_dec < 0:
        raise InvalidInput("days", f"must be a non-negative multiple of 1/{steps_per_day} day")
    n_steps = int(n_steps_dec)
    dose_at: dict[int, list[Any]] = {}
    for ev in events:
        k = Decimal(ev.day) * steps_per_day
        if k != k.to_integral_value():
            raise InvalidInput("dose day", f"{ev.day} is not on the 1/{steps_per_day}-day grid")
        dose_at.setdefault(int(k), []).append(ev.dose_mg)
    h = 1.0 / steps_per_day
    chunk_size = balanced_chunk_size(ind.n, threads) if chunk_size is None else max(1, int(chunk_size))
    bounds = [(a, min(a + chunk_size, ind.n)) for a in range(0, ind.n, chunk_size)] or [(0, 0)]
    inds = [ind.take(slice(a, b)) for a, b in bounds]
    states = [initial_state(c) for c in inds]
    steppers = [_Stepper(c, h) for c in inds]
    refine_until = -1
    refine_steps = int(np.ceil(REFINE_DAYS * steps_per_day))
    m_sub = max(1, refine_substeps)
    refine: _Refined | None = None
    pool = ThreadPoolExecutor(threads) if threads > 1 and len(inds) > 1 else None

    def run(tasks: list[Callable[[], None]]) -> None:
        if pool is None or len(tasks) < 2:
            for task in tasks:
                task()
        else:
            for fut in [pool.submit(task) for task in tasks]:
                fut.result()

    times: list[float] = []
    records: list[dict[str, np.ndarray]] = []
    try:
        for step in range(n_steps + 1):
            if record_every_steps and step % record_every_steps == 0:
                times.append(step * h)
                records.append(
                    concat_observables(
                        [observables(s_.xt, s_.et, c, s_) for s_, c in zip(states, inds, strict=True)]
                    )
                )
            if step == n_steps:
                break
            if step in dose_at:
                picks = []
                for (a, b), s_, c in zip(bounds, states, inds, strict=True):
                    for dose in dose_at[step]:
                        d = np.asarray(dose, dtype=float)
                        s_.depot_mg = s_.depot_mg + (d[a:b] if d.ndim else d)
                    cc, _ = s_.complex_and_k(c)
                    picks.append(np.flatnonzero(s_.et - cc > REFINE_FREE_FRACTION * s_.et))
                refine = _Refined.build(picks, states, inds, h / m_sub, chunk_size)
                refine_until = step + refine_steps
            refining = refine if step < refine_until else None
            t_now = (step + 1) * h
            observe_now = on_chunk if refining is None else None  # else: after the scatter
            tasks: list[Callable[[], None]] = [
                functools.partial(_step_chunk, stp, s_, c, i, t_now, observe_now)
                for i, (stp, s_, c) in enumerate(zip(steppers, states, inds, strict=True))
            ]
            if refining is not None:
                tasks += refining.tasks(m_sub)
            run(tasks)
            if refining is not None:
                refining.scatter(states)
                if on_chunk is not None:
                    run(
                        [
                            functools.partial(on_chunk, t_now, i, s_, c)
                            for i, (s_, c) in enumerate(zip(states, inds, strict=True))
                        ]
                    )
            if on_step is not None:
                on_step(t_now, states, inds)
    finally:
        if pool is not None:
            pool.shutdown()
    final = State(*(np.concatenate([getattr(s_, f) for s_ in states]) for f in ("depot_mg", "xt", "et")))
    return np.asarray(times), records, final


def _step_chunk(
    stepper: _Stepper,
    state: State,
    ind: Individuals,
    i: int,
    t: float,
    on_chunk: Callable[[float, int, State, Individuals], None] | None,
) -> None:
    """One base step of chunk ``i``, then its observer (in the same worker task: one barrier per step)."""
    stepper.step(state)
    if on_chunk is not None:
        on_chunk(t, i, state, ind)


def balanced_chunk_size(n: int, threads: int = 1) -> int:
    """At most CHUNK_SIZE patients per chunk, with a number of chunks that is a multiple of ``threads`` and
    chunks of (nearly) equal size, so that every thread gets the same work."""
    threads = max(1, threads)
    n_chunks = -(-max(n, 1) // CHUNK_SIZE)
    n_chunks = -(-n_chunks // threads) * threads
    return max(1, -(-n // n_chunks))


@dataclass
class _Refined:
    """Patients of all chunks stepped with sub-steps after a dose, pooled into groups of <= chunk_size.

    ``picks[i]`` are the local indices in chunk i; the groups hold their own states between base steps
    (the chunks' base step for these patients is overwritten by ``scatter``).
    """

    picks: list[np.ndarray]
    groups: list[tuple[State, _Stepper]]

    @classmethod
    def build(
        cls, picks: list[np.ndarray], states: list[State], inds: list[Individuals], h: float, size: int
    ) -> _Refined | None:
        total = sum(p.size for p in picks)
        if total == 0:
            return None
        fields = ("ka", "cl_x", "v_x", "cl_e", "cl_c", "r", "v_c", "kd0", "ige0_ng_ml")
        used = [(p, s, c) for p, s, c in zip(picks, states, inds, strict=True) if p.size]
        state_cat = {
            f: np.concatenate([getattr(s, f)[p] for p, s, _ in used]) for f in ("depot_mg", "xt", "et")
        }
        par_cat = {f: np.concatenate([getattr(c, f)[p] for p, _, c in used]) for f in fields}
        proto = inds[0]
        groups = []
        for a in range(0, total, size):
            sl = slice(a, min(a + size, total))
            ind = Individuals(
                alpha=proto.alpha, mw_x=proto.mw_x, mw_e=proto.mw_e, **{f: v[sl] for f, v in par_cat.items()}
            )
            st = State(*(state_cat[f][sl].copy() for f in ("depot_mg", "xt", "et")))
            groups.append((st, _Stepper(ind, h)))
        return cls(picks, groups)

    def tasks(self, m_sub: int) -> list[Callable[[], None]]:
        def sub_steps(st: State, stepper: _Stepper) -> None:
            for _ in range(m_sub):
                stepper.step(st)

        return [functools.partial(sub_steps, st, stp) for st, stp in self.groups]

    def scatter(self, states: list[State]) -> None:
        """Write the groups' states (and cached complex/Kd term) back into the chunks."""
        cat = {f: np.concatenate([getattr(st, f) for st, _ in self.groups]) for f in ("depot_mg", "xt", "et")}
        c_k = [st.complex_and_k(stp.ind) for st, stp in self.groups]
        cat["c"] = np.concatenate([c for c, _ in c_k])
        cat["k"] = np.concatenate([k for _, k in c_k])
        a = 0
        for p, s_ in zip(self.picks, states, strict=True):
            if p.size == 0:
                continue
            b = a + p.size
            for f, v in cat.items():
                getattr(s_, f)[p] = v[a:b]
            a = b


def concat_observables(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Join per-chunk observables into one array per quantity."""
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


class _ComplexWork:
    """Float32 scratch buffers of the binding solve (`_complex_into`) for n patients."""

    def __init__(self, n: int) -> None:
        def f32() -> np.ndarray:
            return np.empty(n, dtype=np.float32)

        self.x32, self.e32, self.k32, self.s32, self.d32, self.t32 = (f32() for _ in range(6))
        # floors as arrays: np.maximum with an array is ~4x faster than with a scalar (SIMD loop)
        self.zero32 = np.zeros(n, dtype=np.float32)
        self.tiny32 = np.full(n, 1e-12, dtype=np.float32)


class _Work(_ComplexWork):
    """Float32 scratch buffers of one stepper (one chunk), reused at every step: no per-step allocation."""

    def __init__(self, n: int) -> None:
        super().__init__(n)

        def f32() -> np.ndarray:
            return np.empty(n, dtype=np.float32)

        self.xa, self.y, self.c, self.xf, self.ef, self.tmp = (f32() for _ in range(6))
        self.dx, self.de, self.lam, self.e1, self.e2 = (f32() for _ in range(5))
        self.n1, self.n2, self.n3, self.n4, self.kxs = (f32() for _ in range(5))


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


def _complex_into(
    xt: np.ndarray,
    et: np.ndarray,
    ind: Individuals,
    c: np.ndarray,
    w: _ComplexWork,
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


def _complex32(
    xt: np.ndarray, et: np.ndarray, ind: Individuals, w: _ComplexWork
) -> tuple[np.ndarray, np.ndarray]:
    """New float32 arrays (complex, k): the values `_complex_and_k` gives, before its cast to float64."""
    c, k = np.empty(ind.n, dtype=np.float32), np.empty(ind.n, dtype=np.float32)
    _complex_into(xt, et, ind, c, w, k)
    return c, k


class _Stepper:
    """One step of size h: depot exact; XT + depot by RK4; ET by integrating-factor (Lawson) RK4.

    XT is integrated as B = XT + depot (nmol), whose derivative has no absorption term, with the depot known
    exactly at every stage, so fast absorption (large ka) costs no accuracy. For ET the local stiffness
    lam = -d(dET/dt)/dET (`et_stiffness`) is frozen in an integrating factor, which keeps high-IgE patients
    (fast free-IgE turnover, little of it bound) stable at day-sized steps.

    The states (depot, XT, ET) are accumulated in float64; the stage values and rates are evaluated in
    float32, in place in per-chunk scratch buffers (`_Work`). The complex was already float32 (relative
    error ~1e-7); the float32 stages add errors of the same order to each step's increment, against the
    1 % agreement with LSODA the tests require.
    """

    def __init__(self, ind: Individuals, h: float) -> None:
        self.ind, self.h = ind, h
        to_nmol = 1000.0 / ind.mw_x
        # XT + depot absorbed so far: B(t + s) - depot left = XT + depot (1 - exp(-ka s)) in nmol
        self.absorbed_half = -np.expm1(-ind.ka * h / 2.0) * to_nmol
        self.absorbed_full = -np.expm1(-ind.ka * h) * to_nmol
        self.full = np.exp(-ind.ka * h)
        self.absorbed_half32 = self.absorbed_half.astype(np.float32)
        self.absorbed_full32 = self.absorbed_full.astype(np.float32)
        f32 = np.float32
        self.kx, self.ke, self.kc = ind.kx.astype(f32), ind.ke.astype(f32), ind.kc.astype(f32)
        self.r = ind.r.astype(f32)
        self.kc_minus_ke = (ind.kc - ind.ke).astype(f32)
        self.w = _Work(ind.n)
        self.bh = np.empty(ind.n, dtype=f32)
        self.bf = np.empty(ind.n, dtype=f32)
        self.et = np.empty(ind.n, dtype=f32)
        self.xt = np.empty(ind.n, dtype=f32)
        self.f64 = np.empty(ind.n)  # float32 -> float64 staging (mixed-type ufuncs are 3x slower)
        self.zero64 = np.zeros(ind.n)

    def _stage(self, xt: np.ndarray, et: np.ndarray, c: np.ndarray, k: np.ndarray | None = None) -> None:
        """Rates into w.dx (elimination of XT, positive) and w.de (dET/dt); with ``k`` also w.lam, the
        stiffness ke (1 - c') + kc c' with c' = xf / (xf + ef + k) (`et_stiffness`)."""
        w = self.w
        xf, ef, tmp = w.xf, w.ef, w.tmp
        np.subtract(xt, c, out=xf)
        np.maximum(xf, w.zero32, out=xf)
        np.subtract(et, c, out=ef)
        if k is not None:
            lam = w.lam
            np.add(xf, ef, out=lam)
            lam += k
            np.divide(xf, lam, out=lam)
            lam *= self.kc_minus_ke
            lam += self.ke
        np.multiply(xf, self.kx, out=w.dx)
        np.multiply(c, self.kc, out=tmp)
        w.dx += tmp
        np.multiply(ef, self.ke, out=w.de)
        w.de += tmp
        np.subtract(self.r, w.de, out=w.de)

    def _x_stage(self, base: np.ndarray, frac: float) -> np.ndarray:
        """XT at a stage: base - frac h (elimination rate of the previous stage)."""
        xa = self.w.xa
        np.multiply(self.w.dx, np.float32(-frac * self.h), out=xa)
        xa += base
        return xa

    def step(self, st: State) -> None:
        ind, w = self.ind, self.w
        f32 = np.float32
        h = self.h
        hh = f32(0.5 * h)
        xt, et = st.xt, st.et
        bf = st.depot_mg * self.absorbed_full
        bf += xt  # float64: becomes the new XT
        et32, xt32, d32 = self.et, self.xt, w.tmp
        np.copyto(et32, et, casting="same_kind")
        np.copyto(xt32, xt, casting="same_kind")
        np.copyto(d32, st.depot_mg, casting="same_kind")
        np.multiply(d32, self.absorbed_full32, out=self.bf)
        self.bf += xt32
        np.multiply(d32, self.absorbed_half32, out=self.bh)
        self.bh += xt32
        c1, kk = st.complex_and_k(ind)
        self._stage(xt32, et32, c1, kk)
        lam, e1, e2, y = w.lam, w.e1, w.e2, w.y
        n1, n2, n3, n4, kxs = w.n1, w.n2, w.n3, w.n4, w.kxs
        np.copyto(kxs, w.dx)  # XT elimination rates with RK4 weights 1, 2, 2, 1
        np.multiply(lam, -hh, out=e2)
        np.exp(e2, out=e2)
        np.multiply(e2, e2, out=e1)
        # stage 2
        np.multiply(lam, et32, out=n1)
        n1 += w.de
        np.multiply(n1, hh, out=y)
        y += et32
        y *= e2
        xa = self._x_stage(self.bh, 0.5)
        _complex_into(xa, y, ind, w.c, w)
        self._stage(xa, y, w.c)
        np.multiply(lam, y, out=n2)
        n2 += w.de
        kxs += w.dx
        kxs += w.dx
        # stage 3
        np.multiply(e2, et32, out=y)
        np.multiply(n2, hh, out=w.tmp)
        y += w.tmp
        xa = self._x_stage(self.bh, 0.5)
        _complex_into(xa, y, ind, w.c, w)
        self._stage(xa, y, w.c)
        np.multiply(lam, y, out=n3)
        n3 += w.de
        kxs += w.dx
        kxs += w.dx
        # stage 4
        np.multiply(e2, n3, out=y)
        y *= f32(h)
        np.multiply(e1, et32, out=w.tmp)
        y += w.tmp
        xa = self._x_stage(self.bf, 1.0)
        _complex_into(xa, y, ind, w.c, w)
        self._stage(xa, y, w.c)
        np.multiply(lam, y, out=n4)
        n4 += w.de
        kxs += w.dx
        # combine
        kxs *= f32(-h / 6.0)
        np.copyto(self.f64, kxs)
        bf += self.f64
        st.xt = np.maximum(bf, self.zero64, out=bf)
        n2 += n3
        n2 *= e2
        n2 += n2
        n1 *= e1
        n1 += n2
        n1 += n4
        n1 *= f32(h / 6.0)
        np.copyto(self.f64, e1)
        new_et = np.multiply(et, self.f64)
        np.copyto(self.f64, n1)
        new_et += self.f64
        st.et = np.maximum(new_et, self.zero64, out=new_et)
        st.depot_mg = st.depot_mg * self.full
        st.c, st.k = _complex32(st.xt, st.et, ind, w)  # reused by the next step and by observers
