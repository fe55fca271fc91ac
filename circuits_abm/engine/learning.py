"""Routing, reward and learning over the whole population, compiled with Numba.

All functions take the population ``circuits_abm.engine.population.Layout`` and the
environments active in the current step (``A`` of them: one for an ordinary phase, several
for a mixture phase, all of them when measuring retention).  Arrays shaped ``(rows, A)``
hold one column per active environment.

The maths (docs/model.md):

* routing: child ``j`` of a router gets ``softmax_j(beta * <k_j, q_e>)``; a node's *path*
  probability is the product down from its root;
* reward of a mechanism: ``R_e(theta) = <theta, d_e> - theta^T A theta / 2`` (best 1/2 at
  ``d_e`` without motivations), where ``A`` is the identity except on the two pathways of
  each motivation (``circuits_abm.engine.environments``), which share one saturating behaviour;
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
faster (``benchmarks/bench_step.py``), and a step makes two compiled calls (``evaluate``
and ``learn``), since each call costs more than the arithmetic of a small population.
Rows are in level order, so a parent's row comes before its children's: path
probabilities multiply down in one forward pass and subtree values add up in one backward
pass.  ``cache=True`` keeps the compiled code on disk, so only the first run after an
install pays the few seconds of compilation.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from circuits_abm.engine.population import Layout


def routing(layout: Layout, cues: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Routing probabilities and path probabilities, both ``(rows, A)``; roots get 1."""
    return _routing(layout.n_circuits, layout.parent, layout.sharpness, layout.keys, cues)


def leaf_rewards(theta: np.ndarray, demands: np.ndarray, partner: np.ndarray,
                 upkeep: np.ndarray, relevance: np.ndarray) -> np.ndarray:
    """``R_e(theta)`` for every mechanism and active environment, ``(leaves, A)``;
    ``partner``, ``upkeep`` and ``relevance`` (per active environment and dimension) describe
    the reward metric (see the module docstring)."""
    return _leaf_rewards(theta, demands, partner, upkeep, relevance)


def subtree_values(layout: Layout, prob: np.ndarray, rewards: np.ndarray) -> np.ndarray:
    """Expected reward of every node's subtree, ``(rows, A)``; rows ``:n_circuits`` are circuits."""
    return _subtree_values(layout.n_circuits, layout.parent, layout.leaf_rows, prob, rewards)


def evaluate(layout: Layout, demands: np.ndarray, cues: np.ndarray, partner: np.ndarray,
             upkeep: np.ndarray, relevance: np.ndarray) -> tuple[np.ndarray, ...]:
    """``routing``, ``leaf_rewards`` (of theta plus quarantine) and ``subtree_values`` in one
    compiled call: ``(prob, path, rewards, values)``.  The step and the records use it; one
    call instead of three saves the per-call overhead that dominates small populations."""
    return _evaluate(layout.n_circuits, layout.parent, layout.sharpness, layout.keys,
                     layout.leaf_rows, layout.theta, layout.quarantine, demands, cues,
                     partner, upkeep, relevance)


UPDATE_RULES = {"plain": 0, "block": 1, "route": 2}


def learn(
    layout: Layout,
    prob: np.ndarray,
    path: np.ndarray,
    values: np.ndarray,
    mix: np.ndarray,
    demands: np.ndarray,
    cues: np.ndarray,
    fixed_targets: np.ndarray,
    circuit_weight: np.ndarray,
    noise: np.ndarray,
    monitor: np.ndarray,
    partner: np.ndarray,
    upkeep: np.ndarray,
    relevance: np.ndarray,
    rule: str = "plain",
) -> np.ndarray:
    """One learning step for every key and every mechanism (in place on the layout).

    ``prob``, ``path`` and ``values`` are this step's, from before learning; ``mix`` weights
    the active environments; ``circuit_weight`` is ``share**gamma`` per circuit (ones when
    gamma = 0: every circuit learns fully); ``noise`` is already scaled by the noise level,
    one row per mechanism; ``monitor`` is the unit monitored direction that the ``block``
    and ``route`` rules act on; ``partner``, ``upkeep`` and ``relevance`` (per active
    environment) give the reward metric; ``fixed_targets`` holds one demand vector per
    fixed-target rule (the layout's ``target_row`` points into it).  Returns each
    mechanism's update along ``monitor`` (zeros under ``plain``).
    """
    return _learn(layout.n_circuits, layout.parent, layout.owner, layout.key_step, layout.keys,
                  prob, path, values, mix, cues, circuit_weight, layout.leaf_rows,
                  layout.leaf_owner, layout.learning_rate, layout.consolidation,
                  layout.target_row, layout.theta, layout.quarantine, demands, fixed_targets,
                  noise, monitor, partner, upkeep, relevance, UPDATE_RULES[rule])


# --------------------------------------------------------------------------- kernels


# The kernels spell out dot products in their loops, and their one helper takes numbers, not
# arrays: every call that passes an array counts references to it, and in the inner loops
# that made the step several times slower than its arithmetic.


def _metric(value, partner_value, upkeep, on_pathway):
    """``(A theta)_k`` from ``theta_k`` (``value``): itself on a capability dimension; on a
    motivation pathway, plus the upkeep and the partner pathway's ``partner_value``."""
    if on_pathway:
        return value * (1.0 + upkeep) + partner_value
    return value


def _routing(n_circuits, parent, sharpness, keys, cues):
    """Softmax over each router's children, then path = product of probabilities from the
    root.  Keys and cues are unit vectors and sharpness is capped, so a logit is at most
    ``max_sharpness`` in size and ``exp`` cannot overflow: no max-subtraction is needed."""
    rows, n_env = keys.shape[0], cues.shape[0]
    prob = np.ones((rows, n_env))
    path = np.ones((rows, n_env))
    total = np.zeros((rows, n_env))  # per router: the softmax denominator
    for r in range(n_circuits, rows):
        for e in range(n_env):
            logit = 0.0
            for k in range(keys.shape[1]):
                logit += keys[r, k] * cues[e, k]
            prob[r, e] = np.exp(sharpness[r] * logit)
            total[parent[r], e] += prob[r, e]
    for r in range(n_circuits, rows):
        for e in range(n_env):
            prob[r, e] /= total[parent[r], e]
            path[r, e] = prob[r, e] * path[parent[r], e]
    return prob, path


def _leaf_rewards(theta, demands, partner, upkeep, relevance):
    """``<theta, d_e> - theta^T A_e theta / 2`` per mechanism and environment (``_metric``
    gives ``A theta``; ``partner`` is -1 on capability dimensions)."""
    out = np.empty((theta.shape[0], demands.shape[0]))
    pulled = np.empty(theta.shape[1])  # theta_k (A theta)_k
    for m in range(theta.shape[0]):
        for k in range(theta.shape[1]):
            pulled[k] = theta[m, k] * _metric(theta[m, k], theta[m, partner[k]], upkeep[k],
                                              partner[k] >= 0)
        for e in range(demands.shape[0]):
            quadratic = 0.0
            for k in range(theta.shape[1]):
                quadratic += pulled[k] * relevance[e, k]
            linear = 0.0
            for k in range(theta.shape[1]):
                linear += theta[m, k] * demands[e, k]
            out[m, e] = linear - 0.5 * quadratic
    return out


def _subtree_values(n_circuits, parent, leaf_rows, prob, rewards):
    """Leaves hold their reward; each router sums its children's values weighted by their
    routing probability, deepest rows first."""
    values = np.zeros(prob.shape)
    for m in range(leaf_rows.shape[0]):
        values[leaf_rows[m]] = rewards[m]
    for r in range(prob.shape[0] - 1, n_circuits - 1, -1):
        for e in range(prob.shape[1]):
            values[parent[r], e] += prob[r, e] * values[r, e]
    return values


def _evaluate(n_circuits, parent, sharpness, keys, leaf_rows, theta, quarantine, demands,
              cues, partner, upkeep, relevance):
    prob, path = _routing(n_circuits, parent, sharpness, keys, cues)
    rewards = _leaf_rewards(theta + quarantine, demands, partner, upkeep, relevance)
    values = _subtree_values(n_circuits, parent, leaf_rows, prob, rewards)
    return prob, path, rewards, values


def _learn_keys(n_circuits, parent, owner, key_step, keys, prob, path, values, mix, cues,
                circuit_weight):
    """Policy-gradient step on every routing key, then back to unit length.

    For child ``j`` of router ``r``: ``dk_j = rate * w * sum_e mix_e * path_r * beta_r
    * pi_j (V_j - V_r) q_e`` — keys move toward contexts where their child beats the
    router's average (``key_step`` is the rate times the router's sharpness)."""
    for j in range(n_circuits, keys.shape[0]):
        r = parent[j]
        scale = key_step[j] * circuit_weight[owner[j]]
        for e in range(cues.shape[0]):
            coef = scale * mix[e] * path[r, e] * prob[j, e] * (values[j, e] - values[r, e])
            for k in range(keys.shape[1]):
                keys[j, k] += coef * cues[e, k]
        squared = 0.0
        for k in range(keys.shape[1]):
            squared += keys[j, k] * keys[j, k]
        norm = max(np.sqrt(squared), 1e-12)
        for k in range(keys.shape[1]):
            keys[j, k] /= norm


def _learn_mechanisms(leaf_rows, leaf_owner, learning_rate, consolidation, target_row, theta,
                      quarantine, path, mix, demands, fixed_targets, circuit_weight, noise,
                      monitor, partner, upkeep, relevance, rule):
    """One noisy, routed gradient step for every mechanism: ``delta = eta * w * sum_e mix_e
    p_e (target_e + noise - A_e (theta + q))``.  Rule 1 (block) drops the part of ``delta``
    along ``monitor``, rule 2 (route) adds that part to the quarantine module ``q``; then
    ``theta += delta`` and the rule's consolidation decay.  Returns each update's
    component along ``monitor`` (zeros for rule 0, plain)."""
    routed = np.zeros(theta.shape[0])
    delta = np.empty(theta.shape[1])
    current = np.empty(theta.shape[1])
    for m in range(theta.shape[0]):
        weight = circuit_weight[leaf_owner[m]]
        step = learning_rate[m] * weight
        exposure = 0.0  # total routed weight of this mechanism
        for e in range(mix.shape[0]):
            exposure += path[leaf_rows[m], e] * mix[e]
        for k in range(theta.shape[1]):
            current[k] = theta[m, k] + quarantine[m, k]
        for k in range(theta.shape[1]):
            if target_row[m] >= 0:  # a fixed-target rule (weighted optimiser)
                target = exposure * fixed_targets[target_row[m], k]
            else:
                target = 0.0
                for e in range(mix.shape[0]):
                    target += path[leaf_rows[m], e] * mix[e] * demands[e, k]
            pull = _metric(current[k], current[partner[k]], upkeep[k], partner[k] >= 0)
            counted = 0.0  # routed weight of the environments where dimension k counts
            for e in range(mix.shape[0]):
                counted += path[leaf_rows[m], e] * mix[e] * relevance[e, k]
            if counted == exposure:
                delta[k] = step * (target + exposure * (noise[m, k] - pull))
            else:
                delta[k] = step * (target + exposure * noise[m, k] - counted * pull)
        if rule != 0:
            along = 0.0
            for k in range(theta.shape[1]):
                along += delta[k] * monitor[k]
            routed[m] = along
            for k in range(theta.shape[1]):
                delta[k] -= along * monitor[k]
                if rule == 2:
                    quarantine[m, k] += along * monitor[k]
        for k in range(theta.shape[1]):
            theta[m, k] += delta[k]
            theta[m, k] -= consolidation[m] * weight * theta[m, k]
    return routed


def _learn(n_circuits, parent, owner, key_step, keys, prob, path, values, mix, cues,
           circuit_weight, leaf_rows, leaf_owner, learning_rate, consolidation, target_row,
           theta, quarantine, demands, fixed_targets, noise, monitor, partner, upkeep,
           relevance, rule):
    """Keys, then mechanisms, in one compiled call (``learn``)."""
    _learn_keys(n_circuits, parent, owner, key_step, keys, prob, path, values, mix, cues,
                circuit_weight)
    return _learn_mechanisms(leaf_rows, leaf_owner, learning_rate, consolidation, target_row,
                             theta, quarantine, path, mix, demands, fixed_targets,
                             circuit_weight, noise, monitor, partner, upkeep, relevance, rule)


# Compiled here rather than with a decorator: the mutation test (make mutation) skips
# decorated functions, and these kernels are the model's arithmetic.  It runs them as
# plain Python (NUMBA_DISABLE_JIT=1, where njit returns the function unchanged).
_metric = njit(cache=True)(_metric)
_routing = njit(cache=True)(_routing)
_leaf_rewards = njit(cache=True)(_leaf_rewards)
_subtree_values = njit(cache=True)(_subtree_values)
_evaluate = njit(cache=True)(_evaluate)
_learn_keys = njit(cache=True)(_learn_keys)
_learn_mechanisms = njit(cache=True)(_learn_mechanisms)
_learn = njit(cache=True)(_learn)
