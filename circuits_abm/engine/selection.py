"""Selection: fitness, the exponential replicator, and extinction.

Fitness is a circuit's reward under the current objective mix minus its structural cost;
the replicator is ``x_i <- x_i * exp(beta_sel * (f_i - f_mean))``, renormalised.  It is
computed in log space when needed, so that no selection strength, however extreme,
produces overflow or NaN; the log-ratio identity ``ln(x_i / x_j)`` changes by exactly
``beta_sel * (f_i - f_j)`` holds to round-off.  Both run compiled inside the model's
stretches of steps (``kernels.fitness``, ``kernels.replicate``).
"""

from __future__ import annotations

import numpy as np

from circuits_abm.engine import kernels


def replicator(shares: np.ndarray, fit: np.ndarray, strength: float) -> np.ndarray:
    """One exponential-replicator step; returns new shares on the simplex.

    Growth factors are taken relative to the fittest circuit (``exp`` of a non-positive
    number: no overflow at any strength); subtracting the maximum instead of the mean
    changes nothing after renormalisation.  If every share underflows, the step is
    redone in log space.
    """
    out = np.array(shares, dtype=float)
    kernels.replicate(out, np.asarray(fit, dtype=float), float(strength))
    return out


def survivors(shares: np.ndarray, floor: float) -> np.ndarray:
    """Mask of circuits at or above the extinction floor (the largest always survives)."""
    alive = shares >= floor
    alive[np.argmax(shares)] = True
    return alive
