"""The model's arithmetic, compiled with Numba, in one file.

Each kernel loops over the whole population's rows in machine code; the maths is documented
where it is used: routing, rewards and learning in ``circuits_abm.engine.learning``,
fitness and the replicator in ``circuits_abm.engine.selection``, a stretch of whole steps
in ``circuits_abm.engine.steps``.  They live in one file because of Numba's on-disk cache
(``cache=True``, which spares every process the seconds of compilation): a cached kernel is
recompiled when *its own* file changes, not when a kernel it calls from another file does,
so a stretch kernel cached beside edited learning code would silently run the old
arithmetic.  Here, any edit recompiles them all.

The kernels spell out dot products in their loops, and their one helper takes numbers, not
arrays: every call that passes an array counts references to it, and in the inner loops
that made the step several times slower than its arithmetic.  ``UPDATE_RULES`` numbers the
monitor's update rules for them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

UPDATE_RULES = {"plain": 0, "block": 1, "route": 2}
TINY = np.finfo(float).tiny  # a share that underflowed to 0 stays finite in log space



def metric(value, partner_value, upkeep, on_pathway):
    """``(A theta)_k`` from ``theta_k`` (``value``): itself on a capability dimension; on a
    motivation pathway, plus the upkeep and the partner pathway's ``partner_value``."""
    if on_pathway:
        return value * (1.0 + upkeep) + partner_value
    return value


def routing(n_circuits, parent, sharpness, keys, cues):
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


def leaf_rewards(theta, demands, partner, upkeep, relevance):
    """``<theta, d_e> - theta^T A_e theta / 2`` per mechanism and environment (``metric``
    gives ``A theta``; ``partner`` is -1 on capability dimensions)."""
    out = np.empty((theta.shape[0], demands.shape[0]))
    pulled = np.empty(theta.shape[1])  # theta_k (A theta)_k
    for m in range(theta.shape[0]):
        for k in range(theta.shape[1]):
            pulled[k] = theta[m, k] * metric(theta[m, k], theta[m, partner[k]], upkeep[k],
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


def subtree_values(n_circuits, parent, leaf_rows, prob, rewards):
    """Leaves hold their reward; each router sums its children's values weighted by their
    routing probability, deepest rows first."""
    values = np.zeros(prob.shape)
    for m in range(leaf_rows.shape[0]):
        values[leaf_rows[m]] = rewards[m]
    for r in range(prob.shape[0] - 1, n_circuits - 1, -1):
        for e in range(prob.shape[1]):
            values[parent[r], e] += prob[r, e] * values[r, e]
    return values


def evaluate(n_circuits, parent, sharpness, keys, leaf_rows, theta, quarantine, demands,
             cues, partner, upkeep, relevance):
    """``routing``, ``leaf_rewards`` of theta plus quarantine, and ``subtree_values``:
    ``(prob, path, rewards, values)``."""
    prob, path = routing(n_circuits, parent, sharpness, keys, cues)
    rewards = leaf_rewards(theta + quarantine, demands, partner, upkeep, relevance)
    values = subtree_values(n_circuits, parent, leaf_rows, prob, rewards)
    return prob, path, rewards, values


def learn_keys(n_circuits, parent, owner, key_step, keys, prob, path, values, mix, cues,
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


def learn_mechanisms(leaf_rows, leaf_owner, learning_rate, consolidation, target_row, theta,
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
            pull = metric(current[k], current[partner[k]], upkeep[k], partner[k] >= 0)
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


def learn(n_circuits, parent, owner, key_step, keys, prob, path, values, mix, cues,
          circuit_weight, leaf_rows, leaf_owner, learning_rate, consolidation, target_row,
          theta, quarantine, demands, fixed_targets, noise, monitor, partner, upkeep,
          relevance, rule):
    """One learning step for every key, then every mechanism (in place on the layout's
    ``keys``, ``theta`` and ``quarantine``).

    ``prob``, ``path`` and ``values`` are this step's, from before learning; ``mix`` weights
    the active environments; ``circuit_weight`` is ``share**gamma`` per circuit (ones when
    gamma = 0: every circuit learns fully); ``noise`` is already scaled by the noise level,
    one row per mechanism; ``monitor`` is the unit monitored direction that the ``block``
    and ``route`` rules act on (``rule`` is their ``UPDATE_RULES`` number); ``partner``,
    ``upkeep`` and ``relevance`` (per active environment) give the reward metric;
    ``fixed_targets`` holds one demand vector per fixed-target rule (``target_row`` points
    into it).  Returns each mechanism's update along ``monitor`` (zeros under ``plain``)."""
    learn_keys(n_circuits, parent, owner, key_step, keys, prob, path, values, mix, cues,
               circuit_weight)
    return learn_mechanisms(leaf_rows, leaf_owner, learning_rate, consolidation, target_row,
                            theta, quarantine, path, mix, demands, fixed_targets,
                            circuit_weight, noise, monitor, partner, upkeep, relevance, rule)


def fitness(circuit_values, mix, cost, out):
    """Into ``out``: each circuit's reward under the objective mix (``circuit_values`` has a
    column per active environment), minus its structural cost."""
    for i in range(out.shape[0]):
        reward = 0.0
        for a in range(mix.shape[0]):
            reward += circuit_values[i, a] * mix[a]
        out[i] = reward - cost[i]


def replicate(shares, fit, strength):
    """The exponential replicator (``circuits_abm.engine.selection.replicator``) in place, one
    circuit at a time: growth relative to the fittest circuit, then, if every share
    underflowed, again in log space."""
    best = fit.max()
    grown = np.empty(shares.shape[0])
    total = 0.0
    for i in range(shares.shape[0]):
        grown[i] = shares[i] * np.exp(strength * (fit[i] - best))
        total += grown[i]
    if total > TINY:
        for i in range(shares.shape[0]):
            shares[i] = grown[i] / total
        return
    for i in range(shares.shape[0]):  # every share underflowed: redo it in log space
        grown[i] = np.log(max(shares[i], TINY)) + strength * (fit[i] - best)
    top = grown.max()
    total = 0.0
    for i in range(shares.shape[0]):
        grown[i] = np.exp(grown[i] - top)
        total += grown[i]
    for i in range(shares.shape[0]):
        shares[i] = grown[i] / total


def share_weighted(shares, values):
    """``sum_i shares_i * values_i``, added up in index order."""
    total = 0.0
    for i in range(shares.shape[0]):
        total += shares[i] * values[i]
    return total


def advance(n_circuits, parent, owner, sharpness, key_step, keys, leaf_rows, leaf_owner,
            learning_rate, consolidation, target_row, theta, quarantine, cost, shares, mix,
            demands, cues, relevance, partner, upkeep, fixed_targets, monitor, rule, strength,
            gamma, noise_level, standard_noise, floor, fit, mean_fitness, routed_mass):
    """Up to ``len(standard_noise)`` whole steps (``circuits_abm.engine.steps.advance``):
    evaluate, fitness, replicator, learning, then the step's records; stops after a step
    that leaves a share below ``floor``.  Returns the number of steps done."""
    weight = np.empty(n_circuits)
    for s in range(standard_noise.shape[0]):
        prob, path, _, values = evaluate(n_circuits, parent, sharpness, keys, leaf_rows, theta,
                                         quarantine, demands, cues, partner, upkeep, relevance)
        fitness(values, mix, cost, fit)
        replicate(shares, fit, strength)
        for i in range(n_circuits):
            weight[i] = shares[i] ** gamma  # gamma = 0: every circuit learns fully
        routed = learn(n_circuits, parent, owner, key_step, keys, prob, path, values, mix, cues,
                       weight, leaf_rows, leaf_owner, learning_rate, consolidation, target_row,
                       theta, quarantine, demands, fixed_targets, noise_level * standard_noise[s],
                       monitor, partner, upkeep, relevance, rule)
        mean_fitness[s] = share_weighted(shares, fit)
        mass = 0.0  # under the plain rule nothing is measured along the monitor
        if rule != 0:
            for m in range(routed.shape[0]):
                mass += shares[leaf_owner[m]] * routed[m]
        routed_mass[s] = mass
        if shares.min() < floor:
            return s + 1
    return standard_noise.shape[0]


# Compiled here rather than with a decorator: the mutation test (make mutation) skips
# decorated functions, and these kernels are the model's arithmetic.  It runs them as
# plain Python (NUMBA_DISABLE_JIT=1, where njit returns the function unchanged).
metric = njit(cache=True)(metric)
routing = njit(cache=True)(routing)
leaf_rewards = njit(cache=True)(leaf_rewards)
subtree_values = njit(cache=True)(subtree_values)
evaluate = njit(cache=True)(evaluate)
learn_keys = njit(cache=True)(learn_keys)
learn_mechanisms = njit(cache=True)(learn_mechanisms)
learn = njit(cache=True)(learn)
fitness = njit(cache=True)(fitness)
replicate = njit(cache=True)(replicate)
share_weighted = njit(cache=True)(share_weighted)
advance = njit(cache=True)(advance)
