"""Routing, reward and learning, vectorised over the whole population.

All functions take the population :class:`~circuits_abm.population.Layout` and the
environments active in the current step (``A`` of them: one for an ordinary phase, several
for a mixture phase, all of them when measuring retention).  Arrays shaped ``(rows, A)``
hold one column per active environment.

The maths (MODEL.md §2):

* routing: child ``j`` of a router gets ``softmax_j(beta * <k_j, q_e>)``; a node's *path*
  probability is the product down from its root;
* reward of a mechanism: ``R_e(theta) = <theta, d_e> - |theta|^2 / 2`` (best 1/2 at ``d_e``);
  a router earns the routing-weighted reward of its children;
* mechanisms learn ``theta += eta * w * p * (target + noise - theta)`` where ``p`` is the
  path probability (gradient routing: a misrouted update interferes), the target is
  ``d_e`` (naive, generalist) or a fixed weighted sum of demands (weighted optimiser), and
  generalists also decay by their consolidation rate;
* keys follow the policy gradient of their router's expected reward and stay unit length,
  so that a router's sharpness (which is paid for) is its real power to tell contexts apart.
"""

from __future__ import annotations

import numpy as np

from circuits_abm.population import Layout


def routing(layout: Layout, cues: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Routing probabilities and path probabilities, both ``(rows, A)``; roots get 1.

    Keys and cues are unit vectors and sharpness is capped, so a logit is at most
    ``max_sharpness`` in size and ``exp`` cannot overflow: no max-subtraction is needed.
    """
    n_rows = len(layout.nodes)
    prob = np.ones((n_rows, cues.shape[0]))
    if not layout.has_routers:
        return prob, prob
    c = layout.n_circuits
    expo = np.exp(layout.child_sharpness[:, None] * (layout.keys[c:] @ cues.T))
    total = np.add.reduceat(expo, layout.sibling_starts, axis=0)
    prob[c:] = expo / total[layout.sibling_group]
    path = prob.copy()
    for level in layout.levels:
        path[level.start : level.stop] *= path[level.parents]
    return prob, path


def leaf_rewards(theta: np.ndarray, demands: np.ndarray) -> np.ndarray:
    """``R_e(theta)`` for every mechanism and active environment, ``(leaves, A)``."""
    return theta @ demands.T - 0.5 * np.einsum("ld,ld->l", theta, theta)[:, None]


def subtree_values(layout: Layout, prob: np.ndarray, rewards: np.ndarray) -> np.ndarray:
    """Expected reward of every node's subtree, ``(rows, A)``; rows ``:n_circuits`` are circuits."""
    values = np.zeros_like(prob)
    values[layout.leaf_rows] = rewards
    for level in reversed(layout.levels):
        rows = slice(level.start, level.stop)
        weighted = prob[rows] * values[rows]
        values[level.group_parents] = np.add.reduceat(weighted, level.group_starts, axis=0)
    return values


def learn_mechanisms(
    layout: Layout,
    path: np.ndarray,
    mix: np.ndarray,
    demands: np.ndarray,
    weighted_target: np.ndarray,
    leaf_weight: np.ndarray | None,
    noise: np.ndarray,
) -> None:
    """One noisy, routed gradient step for every mechanism (in place on ``layout.theta``).

    ``mix`` weights the active environments; ``leaf_weight`` is ``share**gamma`` of each
    leaf's circuit (None when gamma = 0: every circuit learns fully); ``noise`` is already
    scaled by the noise level, one row per leaf.
    """
    theta = layout.theta
    routed = path[layout.leaf_rows] * mix  # (L, A)
    exposure = routed.sum(axis=1)[:, None]  # total routed weight of each leaf
    target = routed @ demands
    if len(layout.weighted_leaves):
        w = layout.weighted_leaves
        target[w] = exposure[w] * weighted_target
    step = layout.learning_rate if leaf_weight is None else layout.learning_rate * leaf_weight
    theta += step[:, None] * (target + exposure * (noise - theta))
    if layout.any_consolidation:
        decay = layout.consolidation if leaf_weight is None else layout.consolidation * leaf_weight
        theta -= decay[:, None] * theta


def learn_keys(
    layout: Layout,
    prob: np.ndarray,
    path: np.ndarray,
    values: np.ndarray,
    mix: np.ndarray,
    cues: np.ndarray,
    node_weight: np.ndarray | None,
) -> None:
    """Policy-gradient step on every routing key, then back to unit length (in place).

    For child ``j`` of router ``r``: ``dk_j = rate * w * sum_e mix_e * path_r * beta_r
    * pi_j (V_j - V_r) q_e`` — keys move toward contexts where their child beats the
    router's average.  ``node_weight`` is ``share**gamma`` per row (None when gamma = 0).
    """
    if not layout.has_routers:
        return
    c = layout.n_circuits
    parents = layout.child_parent
    coef = (mix * path[parents]) * prob[c:] * (values[c:] - values[parents])
    scale = layout.key_step if node_weight is None else layout.key_step * node_weight[c:]
    keys = layout.keys[c:]
    keys += scale[:, None] * (coef @ cues)
    keys /= np.maximum(np.sqrt(np.einsum("kd,kd->k", keys, keys)), 1e-12)[:, None]
