"""Selection: fitness, the exponential replicator, and extinction.

``x_i <- x_i * exp(beta_sel * (f_i - f_mean))``, renormalised.  Computed in log space so that
no selection strength, however extreme, produces overflow or NaN; the log-ratio identity
``ln(x_i / x_j)`` changes by exactly ``beta_sel * (f_i - f_j)`` holds to round-off.
"""

from __future__ import annotations

import numpy as np

TINY = np.finfo(float).tiny  # a share that underflowed to 0 stays finite in log space


def fitness(circuit_rewards: np.ndarray, mix: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Reward under the current objective mix, minus each circuit's structural cost."""
    return circuit_rewards @ mix - cost


def replicator(shares: np.ndarray, fit: np.ndarray, strength: float) -> np.ndarray:
    """One exponential-replicator step; returns shares on the simplex.

    Growth factors are taken relative to the fittest circuit (``exp`` of a non-positive
    number: no overflow at any strength); subtracting the maximum instead of the mean
    changes nothing after renormalisation.  If every share underflows, the step is
    redone in log space.
    """
    grown = shares * np.exp(strength * (fit - fit.max()))
    total = grown.sum()
    if total > TINY:
        return grown / total
    log_shares = np.log(np.maximum(shares, TINY)) + strength * (fit - fit.max())
    grown = np.exp(log_shares - log_shares.max())
    return grown / grown.sum()


def survivors(shares: np.ndarray, floor: float) -> np.ndarray:
    """Mask of circuits at or above the extinction floor (the largest always survives)."""
    alive = shares >= floor
    alive[np.argmax(shares)] = True
    return alive
