"""Draws that hit published summary statistics: moment fitting inside bounds and exact allocation."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize


def _moment_match(
    start: np.ndarray, mean: float, sd: float, low: np.ndarray, high: np.ndarray
) -> np.ndarray | None:
    """Alternate exact standardisation and clipping; None when it does not settle inside the bounds."""
    x = start.astype(float)
    for _ in range(2000):
        x = mean + sd * (x - x.mean()) / (x.std(ddof=1) or 1.0)
        clipped = np.clip(x, low, high)
        if np.allclose(clipped, x, atol=1e-10, rtol=0):
            return clipped
        x = clipped
    return None


def _slsqp(start: np.ndarray, mean: float, sd: float, bounds: list[tuple[float, float]]) -> np.ndarray:
    res = minimize(
        lambda v: float(((v - start) ** 2).sum()),
        start,
        method="SLSQP",
        bounds=bounds,
        constraints=[
            {"type": "eq", "fun": lambda v: v.mean() - mean},
            {"type": "eq", "fun": lambda v: v.std(ddof=1) - sd},
        ],
        options={"maxiter": 500, "ftol": 1e-12},
    )
    lo, hi = np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])
    return np.clip(res.x, lo, hi)


def fit(x0: np.ndarray, mean: float, sd: float, low: float, high: float) -> np.ndarray:
    """Values near ``x0`` with sample mean ``mean`` and SD ``sd`` (ddof=1), each within [low, high]."""
    n = len(x0)
    z = (x0 - x0.mean()) / (x0.std(ddof=1) or 1.0)
    start = np.clip(mean + sd * z, low, high)
    got = _moment_match(start, mean, sd, np.full(n, low), np.full(n, high))
    return got if got is not None else _slsqp(start, mean, sd, [(low, high)] * n)


def fit_bounded(x0: np.ndarray, mean: float, sd: float, bounds: list[tuple[float, float]]) -> np.ndarray:
    """Like `fit` with one [low, high] per element (used for BMI within its Table 1 category)."""
    lo, hi = np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])
    start = np.clip(x0, lo, hi)
    got = _moment_match(start, mean, sd, lo, hi)
    return got if got is not None else _slsqp(start, mean, sd, bounds)


def mean_sd(pair: list[Any]) -> tuple[float, float]:
    """(mean, SD) from a calibration ``[mean, sd]`` pair."""
    return float(pair[0]), float(pair[1])


def allocate(n: int, shares: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    """Exactly round(n * share) of each label (largest remainder), in random order."""
    keys = list(shares)
    raw = np.array([shares[k] for k in keys]) * n / sum(shares.values())
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts))[: n - counts.sum()]:
        counts[i] += 1
    labels = np.repeat(np.array(keys, dtype=object), counts)
    rng.shuffle(labels)
    return labels


def flags(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[rng.choice(n, size=k, replace=False)] = True
    return out
