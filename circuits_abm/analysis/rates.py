"""Rates over seeds: how often an outcome happened, with a Wilson 95% interval.

Every scientific claim of the project is a rate over runs with independently derived seeds,
never a single trajectory; this module turns per-run outcomes into ``k/n`` and its interval,
and, for scattered designs, into a probability that varies smoothly over two axes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Rate:
    """How often something happened: ``k`` of ``n`` runs, with a Wilson interval."""

    k: int
    n: int
    low: float
    high: float

    @property
    def estimate(self) -> float:
        """The observed rate k/n."""
        return self.k / self.n

    def text(self) -> str:
        """``19/20 = 0.95 [0.76, 0.99]``."""
        return f"{self.k}/{self.n} = {self.estimate:.2f} [{self.low:.2f}, {self.high:.2f}]"


def wilson(k: int, n: int, confidence: float = CONFIDENCE) -> Rate:
    """``k`` successes in ``n`` trials with the Wilson score interval (no continuity
    correction): unlike the normal approximation it stays inside [0, 1] and is not empty
    at ``k = n``, which is where most claims sit."""
    if n <= 0:
        raise ValueError("a rate needs at least one run")
    interval = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return Rate(k, n, float(interval.low), float(interval.high))


def half_width(values) -> float:
    """The half-width of the normal 95% interval of the mean of ``values`` (a sequence of
    per-run measurements): 1.96 standard errors."""
    values = np.asarray(values, dtype=float)
    return float(1.96 * values.std(ddof=1) / np.sqrt(len(values)))


def rate_of(flags: list[bool]) -> Rate:
    """The ``wilson`` rate of a list of per-run outcomes."""
    return wilson(sum(bool(f) for f in flags), len(flags))


SMOOTHING = 0.12  # kernel bandwidth, as a share of each axis's range
GRID_CELLS = 80


def smoothed_probability(u: np.ndarray, v: np.ndarray, hits: np.ndarray,
                         cells: int = GRID_CELLS, bandwidth: float = SMOOTHING) -> np.ndarray:
    """Nadaraya-Watson estimate of P(hit) on a ``cells`` x ``cells`` grid over the unit
    square, from runs at unit coordinates (``u``, ``v``): a Gaussian-weighted share of the
    nearby runs, with no model of the boundary's shape."""
    grid = (np.arange(cells) + 0.5) / cells
    du = grid[:, None] - u[None, :]
    dv = grid[:, None] - v[None, :]
    wu, wv = np.exp(-0.5 * (du / bandwidth) ** 2), np.exp(-0.5 * (dv / bandwidth) ** 2)
    weights = wv[:, None, :] * wu[None, :, :]  # (v cell, u cell, run)
    return (weights @ hits.astype(float)) / weights.sum(axis=2)
