"""Heterogeneous coupling: environments at latent coordinates, transfer by distance.

Each environment gets a latent coordinate in one of several geometries; a property transfers
between two environments by an RBF kernel of their distance with the property's own length
scale.  Learnabilities are log-normal and initial logits Gaussian around the shared means.
More environments fill the same region more densely, so the total transfer into each grows
with N, as in the homogeneous case, but now at a rate set by the geometry.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.special import logit

from circuits_abm.reward_seeking.couplings import kernel_coupling
from circuits_abm.reward_seeking.dynamics import (
    DEFAULT_INITIAL,
    Initial,
    System,
    integrate,
)

GEOMETRIES = ("line", "plane", "clusters")
CLUSTERS = 5  # centres of the "clusters" geometry
CLUSTER_SPREAD = 0.05  # their standard deviation, in units of the unit cube


@dataclass(frozen=True)
class Heterogeneity:
    """How environments differ: where they sit, how far each property transfers, and the
    spread of learnabilities and initial logits around their means."""

    geometry: str = "plane"
    scale: float = 1.0  # calibration: coordinates are multiplied by this
    length_z: float = 1.0  # reward-seeking propensity transfers far
    length_s: float = 1.0  # ... and so does reward-seeking skill
    length_l: float = 0.01  # local skills barely transfer
    ratio: float = 1.0  # mean α^S / α^L
    log_alpha_sd: float = 0.5  # log-normal learnabilities (sd of log α)
    logit_sd: float = 0.5  # Gaussian initial logits (sd around the mean logit)
    n_features: int = 256  # random Fourier features per kernel at large N


def coordinates(geometry: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """N latent coordinates in the unit line, square, or around clusters in the unit cube."""
    if geometry == "line":
        return rng.uniform(0, 1, size=(n, 1))
    if geometry == "plane":
        return rng.uniform(0, 1, size=(n, 2))
    if geometry == "clusters":
        centres = rng.uniform(0, 1, size=(CLUSTERS, 3))
        return centres[rng.integers(CLUSTERS, size=n)] + rng.normal(0, CLUSTER_SPREAD, (n, 3))
    raise ValueError(f"geometry {geometry!r} is not one of {', '.join(GEOMETRIES)}")


def heterogeneous_system(n: int, priors, h: Heterogeneity, rng: np.random.Generator,
                         initial: Initial = DEFAULT_INITIAL) -> System:
    """N sampled environments, one column per prior (the priors share every other draw)."""
    coords = h.scale * coordinates(h.geometry, n, rng)

    priors = np.atleast_1d(priors)

    def logits(means):
        noise = rng.normal(0, h.logit_sd, size=(n, 1))
        return logit(np.broadcast_to(means, priors.shape))[None, :] + noise

    def learnabilities(mean):
        return mean * np.exp(rng.normal(0, h.log_alpha_sd, size=n))

    c_z = kernel_coupling(coords, h.length_z, h.n_features, rng)
    same = h.length_s == h.length_z
    c_s = c_z if same else kernel_coupling(coords, h.length_s, h.n_features, rng)
    return System(
        z=logits(priors), a=logits(initial.skill_rs), b=logits(initial.skill_local),
        alpha_z=learnabilities(1.0), alpha_s=learnabilities(h.ratio), alpha_l=learnabilities(1.0),
        c_z=c_z, c_s=c_s, c_l=kernel_coupling(coords, h.length_l, h.n_features, rng),
    )


def resample_rng(seed: int, geometry: str, resample: int, n: int) -> np.random.Generator:
    """Independent, reproducible draws per (seed, geometry, resample, N)."""
    return np.random.default_rng([seed, GEOMETRIES.index(geometry), resample, n])


def mean_propensities(n: int, priors, h: Heterogeneity, seed: int, resample: int,
                      initial: Initial = DEFAULT_INITIAL, **integration) -> np.ndarray:
    """The trained mean propensity of one resample of N environments, per prior."""
    rng = resample_rng(seed, h.geometry, resample, n)
    system = heterogeneous_system(n, priors, h, rng, initial)
    return integrate(system, **integration).mean_propensity


def calibrate_scale(h: Heterogeneity, prior: float, target_n: int, threshold: float, seed: int,
                    resamples: int = 3, iterations: int = 10, initial: Initial = DEFAULT_INITIAL,
                    **integration) -> float:
    """The coordinate scale at which ``target_n`` environments sit at the threshold.

    The essay's per-geometry fudge factor: without it some geometries only cross at N far
    beyond the sweep.  Spreading environments further apart (a larger scale) lowers every
    transfer.  While the spread is below the local length scale, local skills transfer as
    well as reward seeking and nothing crosses; once it is above, reward seeking wins until
    the spread also outgrows its own length scale.  A coarse scan over 1e-3..1e3 finds the
    last crossing from above to below the threshold; bisection on log(scale) refines it.
    Only slopes of N* against the prior are meaningful afterwards, not absolute values.
    """
    def excess(log_scale: float) -> float:
        scaled = replace(h, scale=float(np.exp(log_scale)))
        values = [mean_propensities(target_n, [prior], scaled, seed, 10_000 + r, initial,
                                    **integration)[0] for r in range(resamples)]
        return float(np.median(values)) - threshold

    scan = np.log(np.geomspace(1e-3, 1e3, 25))
    above = [excess(x) > 0 for x in scan]
    crossings = [i for i in range(len(scan) - 1) if above[i] and not above[i + 1]]
    if not crossings:
        raise ValueError(
            f"{h.geometry}: no coordinate scale in [1e-3, 1e3] puts N={target_n} at the "
            f"threshold {threshold} for prior {prior}; change the length scales or the target")
    low, high = scan[crossings[-1]], scan[crossings[-1] + 1]
    for _ in range(iterations):
        middle = 0.5 * (low + high)
        if excess(middle) > 0:
            low = middle
        else:
            high = middle
    return float(np.exp(0.5 * (low + high)))
