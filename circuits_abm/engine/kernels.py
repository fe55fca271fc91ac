"""The model's arithmetic, compiled with Numba, in one file.

Each kernel loops over the whole population's rows in machine code; the maths is documented
where it is used: routing, rewards and learning in ``circuits_abm.engine.learning``,
fitness and the replicator in ``circuits_abm.engine.selection``, a stretch of whole steps
in ``circuits_abm.engine.steps``.  They live in one file because of Numba's on-disk cache
(``cache=True``, which spares every process the seconds of compilation): a cached kernel is
recompiled when *its own* file changes, not when a kernel it calls from another file does,
so a stretch kernel cached beside edited learning code would silently run the old
arithmetic.  Here, any edit recompiles them all.

The kernels spell out dot products in their loops, and their helpers take numbers, not
arrays: every call that passes an array counts references to it, and in the inner loops
that made the step several times slower than its arithmetic.  ``UPDATE_RULES`` numbers the
monitor's update rules for them.

**The same bits on every processor.**  Numba compiles without fast-math, so additions and
multiplications happen in the order written, and the only processor-dependent arithmetic
left would be the C library's ``exp``, ``log`` and ``pow``: glibc picks an implementation
by CPU feature (FMA or not) and the variants differ in the last bit in a fraction of a
percent of calls, which is enough to send a run down another trajectory.  ``exp``,
``log``, ``power`` and ``sin_cos`` below use only addition, multiplication, division and
exact scalings by powers of two, so they give the same bits on every x86-64 machine; the
rest of the engine calls them too (docs/reproducibility.md).  ``exp`` and ``log`` are
fdlibm's algorithms (Sun Microsystems, 1993: "Permission to use, copy, modify, and
distribute this software is freely granted, provided that this notice is preserved."),
accurate to within one unit in the last place.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

UPDATE_RULES = {"plain": 0, "block": 1, "route": 2, "watch": 3}


class Rows(NamedTuple):
    """The population's arrays the step reads and writes (``Layout.rows()``): one row per
    node in level order for the tree, one per mechanism for the parameters."""

    n_circuits: int
    parent: np.ndarray  # parent row, -1 for roots
    owner: np.ndarray  # circuit of each row
    sharpness: np.ndarray  # the parent router's sharpness (0 for roots)
    key_step: np.ndarray  # key learning rate times the parent's sharpness
    keys: np.ndarray  # routing key of each row
    leaf_rows: np.ndarray  # row of each mechanism
    leaf_owner: np.ndarray  # circuit of each mechanism
    learning_rate: np.ndarray  # per mechanism
    consolidation: np.ndarray  # per mechanism
    target_row: np.ndarray  # per mechanism: its fixed target, -1 if none
    theta: np.ndarray  # (mechanisms, dimensions)
    quarantine: np.ndarray  # (mechanisms, dimensions)
    cost: np.ndarray  # per circuit


class PhaseInputs(NamedTuple):
    """A phase's active environments: their mix weights, demand and cue vectors, and the
    reward metric (``relevance``, and ``others``, ``gain`` and ``upkeep`` as in
    ``circuits_abm.engine.environments.PathwayMetric``)."""

    mix: np.ndarray
    demands: np.ndarray
    cues: np.ndarray
    relevance: np.ndarray
    others: np.ndarray
    gain: np.ndarray
    upkeep: np.ndarray


class StepSettings(NamedTuple):
    """What stays fixed over a stretch of steps: the fixed-target rules' targets, the
    monitored direction, update rule (``UPDATE_RULES`` number) and quarantine capacity
    (``inf``: none), the selection strength, gamma, the learning noise and the extinction
    floor."""

    fixed_targets: np.ndarray
    monitor: np.ndarray
    rule: int
    capacity: float
    strength: float
    gamma: float
    noise_level: float
    floor: float
TINY = np.finfo(float).tiny  # a share that underflowed to 0 stays finite in log space

# fdlibm's constants for exp and log: ln 2 split so that k * LN2_HI is exact, and the
# coefficients of the rational (exp) and polynomial (log) approximations.
LN2_HI, LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
INV_LN2 = 1.44269504088896338700e+00
EXP_P = (1.66666666666666019037e-01, -2.77777777770155933842e-03, 6.61375632143793436117e-05,
         -1.65339022054652515390e-06, 4.13813679705723846039e-08)
LOG_LG = (6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01,
          2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01,
          1.479819860511658591e-01)
EXP_OVERFLOW, EXP_UNDERFLOW = 7.09782712893383973096e+02, -7.45133219101941108420e+02
# 1/n! for the sine and cosine series, n = 0..21 (enough for |t| <= pi/4 to the last bit).
INVERSE_FACTORIALS = tuple(1.0 / math.factorial(n) for n in range(22))


def exp(x):
    """``e**x`` to within one unit in the last place, the same bits on every CPU (fdlibm's
    ``e_exp.c``: reduce to ``x = k ln2 + r`` with ``|r| <= ln2/2``, a rational
    approximation of ``e**r``, then scale by ``2**k``)."""
    if x != x:
        return x
    if x > EXP_OVERFLOW:
        return math.inf
    if x < EXP_UNDERFLOW:
        return 0.0
    size = abs(x)
    if size < 2.0**-28:
        return 1.0 + x
    k = 0
    hi, lo = x, 0.0
    if size > 0.5 * LN2_HI:
        if size < 1.5 * LN2_HI:
            k = 1 if x > 0 else -1
        else:
            k = int(INV_LN2 * x + (0.5 if x > 0 else -0.5))
        hi = x - k * LN2_HI  # exact: LN2_HI has trailing zero bits
        lo = k * LN2_LO
        x = hi - lo
    t = x * x
    c = x - t * (EXP_P[0] + t * (EXP_P[1] + t * (EXP_P[2] + t * (EXP_P[3] + t * EXP_P[4]))))
    if k == 0:
        return 1.0 - ((x * c) / (c - 2.0) - x)
    return math.ldexp(1.0 - ((lo - (x * c) / (2.0 - c)) - hi), k)


def log(x):
    """Natural logarithm to within one unit in the last place, the same bits on every CPU
    (fdlibm's ``e_log.c``: ``x = 2**k (1 + f)`` with ``1 + f`` in ``[sqrt(2)/2, sqrt(2))``,
    then a polynomial in ``s = f / (2 + f)``)."""
    if x != x or x < 0.0:
        return math.nan
    if x == 0.0:
        return -math.inf
    if x == math.inf:
        return x
    mantissa, exponent = math.frexp(x)  # exact, subnormals included: x = m 2**e, m in [.5, 1)
    y = 2.0 * mantissa  # in [1, 2)
    k = exponent - 1
    high = int((y - 1.0) * 1048576.0)  # the top 20 bits of the fraction, as fdlibm reads them
    if high >= 0x6A09C:  # y >= sqrt(2), to 20 bits: use y / 2
        y = mantissa
        k += 1
    f = y - 1.0
    dk = float(k)
    if high in (0, 0xFFFFE, 0xFFFFF):  # |f| < 2**-20
        if f == 0.0:
            return dk * LN2_HI + dk * LN2_LO
        r = f * f * (0.5 - 0.33333333333333333 * f)
        return dk * LN2_HI - ((r - dk * LN2_LO) - f)
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (LOG_LG[1] + w * (LOG_LG[3] + w * LOG_LG[5]))
    t2 = z * (LOG_LG[0] + w * (LOG_LG[2] + w * (LOG_LG[4] + w * LOG_LG[6])))
    r = t2 + t1
    if 0x6147A <= high <= 0x6B851:  # near sqrt(2): fdlibm's more careful form
        half_square = 0.5 * f * f
        return dk * LN2_HI - ((half_square - (s * (half_square + r) + dk * LN2_LO)) - f)
    return dk * LN2_HI - ((s * (f - r) - dk * LN2_LO) - f)


def power(x, exponent):
    """``x**exponent`` for ``x >= 0`` (a share to the power gamma), the same bits on every
    CPU: exact for exponents 0 and 1, else ``exp(exponent * log(x))``, within
    ``2 + 4 |exponent ln x|`` units in the last place (the exponent's rounding, magnified)."""
    if exponent == 0.0:
        return 1.0
    if exponent == 1.0 or x == 0.0:
        return x
    return exp(exponent * log(x))


def sin_cos(t):
    """``(sin t, cos t)`` for ``|t| <= pi/4`` by their Taylor series, summed from the
    smallest term: the same bits on every CPU, within a unit or two in the last place."""
    square = t * t
    sine, cosine = INVERSE_FACTORIALS[21], INVERSE_FACTORIALS[20]
    for n in range(19, 0, -2):
        sine = INVERSE_FACTORIALS[n] - square * sine
        cosine = INVERSE_FACTORIALS[n - 1] - square * cosine
    return t * sine, cosine


def metric(value, coupled, gain, upkeep, on_pathway):
    """``(A theta)_k`` from ``theta_k`` (``value``): itself on a capability dimension; on a
    motivation pathway ``(g_k^2 + upkeep) theta_k + g_k coupled``, where ``coupled`` is
    ``sum_j g_j theta_j`` over the motivation's other pathways (``coupled_sum``).  With two
    pathways of gain 1 this is ``(1 + upkeep) theta_k + theta_other`` to the bit."""
    if on_pathway:
        return value * (gain * gain + upkeep) + gain * coupled
    return value


def coupled_sum(theta, m, others, gain, k):
    """``sum_j g_j theta[m, j]`` over the other pathways ``others[k]`` of dimension ``k``'s
    motivation (0 for a capability dimension, whose row is all -1)."""
    total = 0.0
    for i in range(others.shape[1]):
        j = others[k, i]
        if j >= 0:
            total += gain[j] * theta[m, j]
    return total


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
            prob[r, e] = exp(sharpness[r] * logit)
            total[parent[r], e] += prob[r, e]
    for r in range(n_circuits, rows):
        for e in range(n_env):
            prob[r, e] /= total[parent[r], e]
            path[r, e] = prob[r, e] * path[parent[r], e]
    return prob, path


def leaf_rewards(theta, demands, others, gain, upkeep, relevance):
    """``<theta, d_e> - theta^T A_e theta / 2`` per mechanism and environment (``metric``
    gives ``A theta``; ``others`` is all -1 on capability dimensions)."""
    out = np.empty((theta.shape[0], demands.shape[0]))
    pulled = np.empty(theta.shape[1])  # theta_k (A theta)_k
    for m in range(theta.shape[0]):
        for k in range(theta.shape[1]):
            pulled[k] = theta[m, k] * metric(theta[m, k], coupled_sum(theta, m, others, gain, k),
                                             gain[k], upkeep[k], others[k, 0] >= 0)
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


def evaluate(rows, demands, cues, others, gain, upkeep, relevance):
    """``routing``, ``leaf_rewards`` of theta plus quarantine, and ``subtree_values`` of the
    population ``rows`` (a ``Rows``): ``(prob, path, rewards, values)``."""
    prob, path = routing(rows.n_circuits, rows.parent, rows.sharpness, rows.keys, cues)
    rewards = leaf_rewards(rows.theta + rows.quarantine, demands, others, gain, upkeep,
                           relevance)
    values = subtree_values(rows.n_circuits, rows.parent, rows.leaf_rows, prob, rewards)
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
                     monitor, others, gain, upkeep, relevance, rule, capacity):
    """One noisy, routed gradient step for every mechanism: ``delta = eta * w * sum_e mix_e
    p_e (target_e + noise - A_e (theta + q))``.  Rule 1 (block) drops the part of ``delta``
    along ``monitor``, rule 3 (watch) only measures it, rule 2 (route) adds it to the
    quarantine module ``q`` (what takes ``q`` past the norm ``capacity`` stays in
    ``delta``); then ``theta += delta`` and the rule's consolidation decay.  Returns each
    update's component along ``monitor`` (zeros for rule 0, plain)."""
    routed = np.zeros(theta.shape[0])
    delta = np.empty(theta.shape[1])
    current = np.empty((1, theta.shape[1]))
    for m in range(theta.shape[0]):
        weight = circuit_weight[leaf_owner[m]]
        step = learning_rate[m] * weight
        exposure = 0.0  # total routed weight of this mechanism
        for e in range(mix.shape[0]):
            exposure += path[leaf_rows[m], e] * mix[e]
        for k in range(theta.shape[1]):
            current[0, k] = theta[m, k] + quarantine[m, k]
        for k in range(theta.shape[1]):
            if target_row[m] >= 0:  # a fixed-target rule (weighted optimiser)
                target = exposure * fixed_targets[target_row[m], k]
            else:
                target = 0.0
                for e in range(mix.shape[0]):
                    target += path[leaf_rows[m], e] * mix[e] * demands[e, k]
            pull = metric(current[0, k], coupled_sum(current, 0, others, gain, k), gain[k],
                          upkeep[k], others[k, 0] >= 0)
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
        if rule == 1 or rule == 2:
            for k in range(theta.shape[1]):
                delta[k] -= along * monitor[k]
                if rule == 2:
                    quarantine[m, k] += along * monitor[k]
            if rule == 2 and capacity < np.inf:
                overflow(quarantine, m, delta, capacity)
        for k in range(theta.shape[1]):
            theta[m, k] += delta[k]
            theta[m, k] -= consolidation[m] * weight * theta[m, k]
    return routed


def overflow(quarantine, m, delta, capacity):
    """A quarantine module past its norm ``capacity`` is scaled back to it, and what it
    cannot hold is added to the mechanism's update ``delta`` (it is learned as under the
    plain rule)."""
    squared = 0.0
    for k in range(quarantine.shape[1]):
        squared += quarantine[m, k] * quarantine[m, k]
    norm = np.sqrt(squared)
    if norm <= capacity:
        return
    kept = capacity / norm
    for k in range(quarantine.shape[1]):
        delta[k] += quarantine[m, k] * (1.0 - kept)
        quarantine[m, k] *= kept


def learn(n_circuits, parent, owner, key_step, keys, prob, path, values, mix, cues,
          circuit_weight, leaf_rows, leaf_owner, learning_rate, consolidation, target_row,
          theta, quarantine, demands, fixed_targets, noise, monitor, others, gain, upkeep,
          relevance, rule, capacity):
    """One learning step for every key, then every mechanism (in place on the layout's
    ``keys``, ``theta`` and ``quarantine``).

    ``prob``, ``path`` and ``values`` are this step's, from before learning; ``mix`` weights
    the active environments; ``circuit_weight`` is ``share**gamma`` per circuit (ones when
    gamma = 0: every circuit learns fully); ``noise`` is already scaled by the noise level,
    one row per mechanism; ``monitor`` is the unit monitored direction that the ``block``
    and ``route`` rules act on (``rule`` is their ``UPDATE_RULES`` number; ``capacity`` caps
    a quarantine module's norm); ``others``, ``gain``, ``upkeep`` and ``relevance`` (per
    active environment) give the reward metric;
    ``fixed_targets`` holds one demand vector per fixed-target rule (``target_row`` points
    into it).  Returns each mechanism's update along ``monitor`` (zeros under ``plain``)."""
    learn_keys(n_circuits, parent, owner, key_step, keys, prob, path, values, mix, cues,
               circuit_weight)
    return learn_mechanisms(leaf_rows, leaf_owner, learning_rate, consolidation, target_row,
                            theta, quarantine, path, mix, demands, fixed_targets,
                            circuit_weight, noise, monitor, others, gain, upkeep, relevance,
                            rule, capacity)


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
        grown[i] = shares[i] * exp(strength * (fit[i] - best))
        total += grown[i]
    if total > TINY:
        for i in range(shares.shape[0]):
            shares[i] = grown[i] / total
        return
    for i in range(shares.shape[0]):  # every share underflowed: redo it in log space
        grown[i] = log(max(shares[i], TINY)) + strength * (fit[i] - best)
    top = grown.max()
    total = 0.0
    for i in range(shares.shape[0]):
        grown[i] = exp(grown[i] - top)
        total += grown[i]
    for i in range(shares.shape[0]):
        shares[i] = grown[i] / total


def share_weighted(shares, values):
    """``sum_i shares_i * values_i``, added up in index order."""
    total = 0.0
    for i in range(shares.shape[0]):
        total += shares[i] * values[i]
    return total


def advance(rows, phase, settings, shares, standard_noise, fit, mean_fitness, routed_mass):
    """Up to ``len(standard_noise)`` whole steps of the population ``rows`` (a ``Rows``) in
    the ``phase`` (``PhaseInputs``) under ``settings`` (``StepSettings``), in place on
    ``rows`` and ``shares`` (``circuits_abm.engine.steps.advance``): evaluate, fitness,
    replicator, learning, then the step's records into ``fit``, ``mean_fitness`` and
    ``routed_mass``; stops after a step that leaves a share below the floor.  Returns the
    number of steps done."""
    weight = np.empty(rows.n_circuits)
    for s in range(standard_noise.shape[0]):
        prob, path, _, values = evaluate(rows, phase.demands, phase.cues, phase.others,
                                         phase.gain, phase.upkeep, phase.relevance)
        fitness(values, phase.mix, rows.cost, fit)
        replicate(shares, fit, settings.strength)
        for i in range(rows.n_circuits):
            weight[i] = power(shares[i], settings.gamma)  # gamma = 0: every circuit learns fully
        routed = learn(rows.n_circuits, rows.parent, rows.owner, rows.key_step, rows.keys, prob,
                       path, values, phase.mix, phase.cues, weight, rows.leaf_rows,
                       rows.leaf_owner, rows.learning_rate, rows.consolidation, rows.target_row,
                       rows.theta, rows.quarantine, phase.demands, settings.fixed_targets,
                       settings.noise_level * standard_noise[s], settings.monitor,
                       phase.others, phase.gain, phase.upkeep, phase.relevance, settings.rule,
                       settings.capacity)
        mean_fitness[s] = share_weighted(shares, fit)
        mass = 0.0  # under the plain rule nothing is measured along the monitor
        if settings.rule != 0:
            for m in range(routed.shape[0]):
                mass += shares[rows.leaf_owner[m]] * routed[m]
        routed_mass[s] = mass
        if shares.min() < settings.floor:
            return s + 1
    return standard_noise.shape[0]


# Compiled here rather than with a decorator: the mutation test (make mutation) skips
# decorated functions, and these kernels are the model's arithmetic.  It runs them as
# plain Python (NUMBA_DISABLE_JIT=1, where njit returns the function unchanged).
exp = njit(cache=True)(exp)
log = njit(cache=True)(log)
power = njit(cache=True)(power)
sin_cos = njit(cache=True)(sin_cos)
metric = njit(cache=True)(metric)
coupled_sum = njit(cache=True)(coupled_sum)
overflow = njit(cache=True)(overflow)
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
