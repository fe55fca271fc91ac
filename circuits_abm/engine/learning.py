"""Routing, reward and learning over the whole population, compiled with Numba.

All functions take the population ``circuits_abm.engine.population.Layout`` and the
environments active in the current step (``A`` of them: one for an ordinary phase, several
for a mixture phase, all of them when measuring retention).  Arrays shaped ``(rows, A)``
hold one column per active environment.

The maths (docs/model.md):

* routing: child ``j`` of a router gets ``softmax_j(beta * <k_j, q_e>)``; a node's *path*
  probability is the product down from its root;
* reward of a mechanism: ``R_e(theta) = <theta, d_e> - theta^T A theta / 2`` (best 1/2 at
  ``d_e`` without motivations), where ``A`` is the identity except on the pathways of each
  motivation (``circuits_abm.engine.environments``), which share one saturating behaviour;
  a router earns the routing-weighted reward of its children;
* mechanisms learn ``theta += eta * w * p * (target + noise - theta)`` where ``p`` is the
  path probability (gradient routing: a misrouted update interferes), the target is
  ``d_e`` (naive, generalist) or a fixed weighted sum of demands (weighted optimiser), and
  generalists also decay by their consolidation rate.  Under the ``block`` update rule the
  component of each update along the monitored direction ``u`` is dropped; under ``route``
  it goes into the mechanism's quarantine module ``q`` instead, and the mechanism is
  scored (and its gradient taken) with ``theta + q``;
* keys follow the policy gradient of their router's expected reward and stay unit length,
  so that a router's sharpness (which is paid for) is its real power to tell contexts apart.

Why compiled loops rather than numpy expressions: populations are tens of rows, so a
numpy step (some fifty array operations) spent most of its time in per-call overhead.  The
kernels below loop over the whole population's rows in machine code instead, tens of times
faster (``benchmarks/bench_step.py``).  The kernels themselves are in
``circuits_abm.engine.kernels`` (``kernels.learn`` is the learning step); since each call
from Python costs more than the arithmetic of a small population, the model runs them
inside one compiled stretch of steps (``circuits_abm.engine.steps``).
Rows are in level order, so a parent's row comes before its children's: path
probabilities multiply down in one forward pass and subtree values add up in one backward
pass.  ``cache=True`` keeps the compiled code on disk, so only the first run after an
install pays the few seconds of compilation.
"""

from __future__ import annotations

import numpy as np

from circuits_abm.engine import kernels
from circuits_abm.engine.environments import PathwayMetric
from circuits_abm.engine.population import Layout


def routing(layout: Layout, cues: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Routing probabilities and path probabilities, both ``(rows, A)``; roots get 1."""
    return kernels.routing(layout.n_circuits, layout.parent, layout.sharpness, layout.keys, cues)


def leaf_rewards(theta: np.ndarray, demands: np.ndarray, metric: PathwayMetric,
                 relevance: np.ndarray) -> np.ndarray:
    """``R_e(theta)`` for every mechanism and active environment, ``(leaves, A)``;
    ``metric`` and ``relevance`` (per active environment and dimension) describe the reward
    metric (see the module docstring)."""
    return kernels.leaf_rewards(theta, demands, *metric.arrays(), relevance)


def subtree_values(layout: Layout, prob: np.ndarray, rewards: np.ndarray) -> np.ndarray:
    """Expected reward of every node's subtree, ``(rows, A)``; rows ``:n_circuits`` are circuits."""
    return kernels.subtree_values(layout.n_circuits, layout.parent, layout.leaf_rows, prob, rewards)


def evaluate(layout: Layout, demands: np.ndarray, cues: np.ndarray, metric: PathwayMetric,
             relevance: np.ndarray) -> tuple[np.ndarray, ...]:
    """``routing``, ``leaf_rewards`` (of theta plus quarantine) and ``subtree_values`` in one
    compiled call: ``(prob, path, rewards, values)``, as the step computes them (the records
    use it to score the population in every environment)."""
    return kernels.evaluate(layout.rows(), demands, cues, *metric.arrays(), relevance)


