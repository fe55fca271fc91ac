"""Rates over seeds: how often an outcome happened, with a Wilson 95% interval.

Every scientific claim of the project is a rate over runs with independently derived seeds,
never a single trajectory; this module turns per-run outcomes into ``k/n`` and its interval.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def rate_of(flags: list[bool]) -> Rate:
    """The ``wilson`` rate of a list of per-run outcomes."""
    return wilson(sum(bool(f) for f in flags), len(flags))
