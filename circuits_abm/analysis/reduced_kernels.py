"""The reduced step (``circuits_abm.analysis.reduced_step``) compiled, one replicate at a time.

The path model follows a resident and a newborn through about a thousand steps in each of
up to a few hundred replicates, for every transition out of every state of its chain.
Written over numpy arrays, every step of that costs a dozen array operations on a batch
of a few dozen rows, and Python's overhead per operation, not the arithmetic, set the
path's cost (about 2 s a point).  Here each replicate runs its whole stretch in machine
code: ``advance_alone`` trains residents (the warm-up, and the steps before a birth) and
``contest`` runs resident and newborn from the birth until one of them falls below the
extinction floor.

The arithmetic is ``StepModel.evaluate`` and ``StepModel.learn`` for one circuit
(``evaluate_one`` and ``learn_one``), checked against them to 1e-12 in
``tests/test_reduced_step.py``; the numpy ``StepModel`` is in turn checked against the
model's per-circuit reference.  Exponentials and logarithms are the engine's
(``engine.kernels.exp``, ``log``, ``power``), which give the same bits on every CPU.

Learning noise comes from a xorshift64 generator seeded from the caller's numpy
generator (one seed per call), turned into normal deviates by Marsaglia's polar method:
integer arithmetic and the engine's ``log``, so a path is the same on every machine, and
no array of noise for every replicate and step is drawn up front.

The exponentials and logarithms are compiled in ``engine/kernels.py``; Numba's cache
recompiles these kernels when this file changes, not when that one does (see its
docstring), so an edit there should be followed by one here.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from circuits_abm.engine.kernels import UPDATE_RULES, exp, log, power

BLOCK, ROUTE = UPDATE_RULES["block"], UPDATE_RULES["route"]
TWO_TO_MINUS_53 = 2.0**-53


def next_bits(state):
    """The next 64 bits of the xorshift64 generator held in ``state[0]`` (never 0)."""
    x = state[0]
    x ^= x << np.uint64(13)
    x ^= x >> np.uint64(7)
    x ^= x << np.uint64(17)
    state[0] = x
    return x


def fill_normal(state, out):
    """Fill the 2-d ``out`` with standard normal deviates (Marsaglia's polar method)."""
    flat = out.ravel()
    i = 0
    while i < flat.size:
        u = ((next_bits(state) >> np.uint64(11)) + np.uint64(1)) * TWO_TO_MINUS_53 * 2.0 - 1.0
        v = ((next_bits(state) >> np.uint64(11)) + np.uint64(1)) * TWO_TO_MINUS_53 * 2.0 - 1.0
        s = u * u + v * v
        if s >= 1.0 or s == 0.0:
            continue
        factor = math.sqrt(-2.0 * log(s) / s)
        flat[i] = u * factor
        if i + 1 < flat.size:
            flat[i + 1] = v * factor
        i += 2


def evaluate_one(theta, quarantine, keys, has_keys, weights, demands, metrics, euclidean,
                 cues, sharpness, cost, routed, values, effective):
    """One circuit's fitness when it trains ``weights``; fills ``routed`` and ``values``
    ``(mechanisms, environments)`` as ``StepModel.evaluate`` returns them (``effective``
    is room for one mechanism's parameters)."""
    mechanisms, dims = theta.shape
    environments = demands.shape[0]
    for m in range(mechanisms):
        for k in range(dims):
            effective[k] = theta[m, k] + quarantine[m, k]
        for e in range(environments):
            linear = 0.0
            quadratic = 0.0
            for k in range(dims):
                linear += effective[k] * demands[e, k]
                if euclidean:
                    quadratic += effective[k] * effective[k]
                else:
                    row = 0.0
                    for j in range(dims):
                        row += metrics[e, k, j] * effective[j]
                    quadratic += effective[k] * row
            values[m, e] = linear - 0.5 * quadratic
    for e in range(environments):
        if not has_keys:
            routed[0, e] = 1.0
            continue
        largest = -math.inf
        for m in range(mechanisms):
            logit = 0.0
            for c in range(cues.shape[1]):
                logit += keys[m, c] * cues[e, c]
            routed[m, e] = sharpness * logit
            largest = max(largest, routed[m, e])
        total = 0.0
        for m in range(mechanisms):
            routed[m, e] = exp(routed[m, e] - largest)
            total += routed[m, e]
        for m in range(mechanisms):
            routed[m, e] /= total
    fitness = 0.0
    for m in range(mechanisms):
        for e in range(environments):
            fitness += weights[e] * routed[m, e] * values[m, e]
    return fitness - cost


def learn_one(theta, quarantine, keys, has_keys, weights, routed, values, learning_weight,
              noise_draws, demands, metrics, euclidean, cues, has_target, target_demand,
              learning_rate, consolidation, noise, update_rule, monitor, capacity, key_step,
              delta, effective):
    """One learning step of one circuit, in place: ``StepModel.learn`` with the standard
    normal ``noise_draws`` ``(mechanisms, dimensions)`` and ``key_step`` the keys' rate
    times the sharpness (``delta`` and ``effective`` are room for one mechanism)."""
    mechanisms, dims = theta.shape
    environments = demands.shape[0]
    scale = learning_rate * learning_weight
    for m in range(mechanisms):
        exposure = 0.0
        for e in range(environments):
            exposure += weights[e] * routed[m, e]
        for k in range(dims):
            effective[k] = theta[m, k] + quarantine[m, k]
        for k in range(dims):
            if has_target:
                target = exposure * target_demand[k]
            else:
                target = 0.0
                for e in range(environments):
                    target += weights[e] * routed[m, e] * demands[e, k]
            if euclidean:
                pull = exposure * effective[k]
            else:
                pull = 0.0
                for e in range(environments):
                    row = 0.0
                    for j in range(dims):
                        row += metrics[e, k, j] * effective[j]
                    pull += weights[e] * routed[m, e] * row
            delta[k] = scale * (target + exposure * noise * noise_draws[m, k] - pull)
        if update_rule == BLOCK or update_rule == ROUTE:  # noqa: SIM109 (a tuple is built per call)
            along = 0.0
            for k in range(dims):
                along += delta[k] * monitor[k]
            for k in range(dims):
                delta[k] -= along * monitor[k]
            if update_rule == ROUTE:
                size = 0.0
                for k in range(dims):
                    quarantine[m, k] += along * monitor[k]
                    size += quarantine[m, k] * quarantine[m, k]
                size = math.sqrt(size)
                if size > capacity:
                    kept = capacity / size
                    for k in range(dims):
                        delta[k] += quarantine[m, k] * (1.0 - kept)
                        quarantine[m, k] *= kept
        for k in range(dims):
            theta[m, k] += delta[k]
            theta[m, k] -= consolidation * learning_weight * theta[m, k]
    if has_keys:
        step = key_step * learning_weight
        for e in range(environments):
            router_value = 0.0
            for m in range(mechanisms):
                router_value += routed[m, e] * values[m, e]
            for m in range(mechanisms):
                pulled = step * weights[e] * routed[m, e] * (values[m, e] - router_value)
                for c in range(cues.shape[1]):
                    keys[m, c] += pulled * cues[e, c]
        for m in range(mechanisms):
            size = 0.0
            for c in range(cues.shape[1]):
                size += keys[m, c] * keys[m, c]
            size = max(math.sqrt(size), 1e-12)
            for c in range(cues.shape[1]):
                keys[m, c] /= size


def _workspace(mechanisms, environments, dims):
    """Room for one circuit's step, allocated once per kernel call: routing and values
    ``(mechanisms, environments)``, noise ``(mechanisms, dims)``, and two rows of ``dims``."""
    return (np.empty((mechanisms, environments)), np.empty((mechanisms, environments)),
            np.zeros((mechanisms, dims)), np.empty(dims), np.empty(dims))  # noise 0 if unused


def evaluate_in_place(theta, quarantine, keys, has_keys, weights, step, room):
    """One circuit's fitness on ``weights``, leaving its routing and values in ``room`` (the
    arrays ``_workspace`` makes) for ``learn_in_place``.  ``step`` is the tuple
    ``StepModel.compiled`` builds."""
    (demands, metrics, euclidean, cues, sharpness, per_mechanism, sharpness_cost, has_target,
     target_demand, learning_rate, consolidation, noise, update_rule, monitor, capacity,
     key_step) = step
    routed, values, draws, delta, effective = room
    cost = theta.shape[0] * per_mechanism + sharpness_cost if has_keys else per_mechanism
    return evaluate_one(theta, quarantine, keys, has_keys, weights, demands, metrics,
                        euclidean, cues, sharpness, cost, routed, values, effective)


def learn_in_place(theta, quarantine, keys, has_keys, weights, learning_weight, state, step,
                   room):
    """Learn at ``learning_weight`` from the routing and values ``evaluate_in_place`` left
    in ``room``, with fresh noise from ``state`` (in a contest, after selection: at the
    new share)."""
    (demands, metrics, euclidean, cues, sharpness, per_mechanism, sharpness_cost, has_target,
     target_demand, learning_rate, consolidation, noise, update_rule, monitor, capacity,
     key_step) = step
    routed, values, draws, delta, effective = room
    if noise != 0.0:
        fill_normal(state, draws)
    learn_one(theta, quarantine, keys, has_keys, weights, routed, values, learning_weight,
              draws, demands, metrics, euclidean, cues, has_target, target_demand,
              learning_rate, consolidation, noise, update_rule, monitor, capacity, key_step,
              delta, effective)


def advance_alone(theta, quarantine, keys, has_keys, slots, mix, start, stops, state, step):
    """Train each replicate ``r`` of a resident batch alone (learning weight 1) from step
    ``start`` up to, not including, ``stops[r]``, in place."""
    room = _workspace(theta.shape[1], mix.shape[1], theta.shape[2])
    for r in range(theta.shape[0]):
        for t in range(start, stops[r]):
            weights = mix[slots[r, t]]
            evaluate_in_place(theta[r], quarantine[r], keys[r], has_keys, weights, step, room)
            learn_in_place(theta[r], quarantine[r], keys[r], has_keys, weights, 1.0, state,
                           step, room)


def contest(resident, newborn, births, end, slots, mix, share, floor, gamma, strength,
            state, step):
    """Run each replicate's resident and newborn from its birth step until one of them
    falls below ``floor`` (or ``end``), in place; returns whether the newborn took over
    (its rival fell below the floor, or it holds more than half at the end).  Each
    circuit learns at its share to the power ``gamma``; selection is the replicator."""
    theta, quarantine, keys, has_keys = resident
    born_theta, born_quarantine, born_keys, born_has_keys = newborn
    room = _workspace(theta.shape[1], mix.shape[1], theta.shape[2])
    born_room = _workspace(born_theta.shape[1], mix.shape[1], theta.shape[2])
    took_over = np.zeros(theta.shape[0], dtype=np.bool_)
    for r in range(theta.shape[0]):
        x = share
        for t in range(births[r], end):
            weights = mix[slots[r, t]]
            f_resident = evaluate_in_place(theta[r], quarantine[r], keys[r], has_keys,
                                           weights, step, room)
            f_newborn = evaluate_in_place(born_theta[r], born_quarantine[r], born_keys[r],
                                          born_has_keys, weights, step, born_room)
            mean = x * f_newborn + (1.0 - x) * f_resident
            grown = x * exp(min(max(strength * (f_newborn - mean), -50.0), 50.0))
            rival = (1.0 - x) * exp(min(max(strength * (f_resident - mean), -50.0), 50.0))
            x = grown / (grown + rival)
            learn_in_place(theta[r], quarantine[r], keys[r], has_keys, weights,
                           power(1.0 - x, gamma), state, step, room)
            learn_in_place(born_theta[r], born_quarantine[r], born_keys[r], born_has_keys,
                           weights, power(x, gamma), state, step, born_room)
            if x < floor or 1.0 - x < floor:
                break
        took_over[r] = 1.0 - x < floor or (x >= floor and x > 0.5)
    return took_over


# Compiled last, so that the functions above stay readable (and testable) as plain Python
# under NUMBA_DISABLE_JIT=1, where njit returns them unchanged.
next_bits = njit(cache=True, inline="always")(next_bits)
fill_normal = njit(cache=True, inline="always")(fill_normal)
evaluate_one = njit(cache=True, inline="always")(evaluate_one)
learn_one = njit(cache=True, inline="always")(learn_one)
_workspace = njit(cache=True)(_workspace)
evaluate_in_place = njit(cache=True, inline="always")(evaluate_in_place)
learn_in_place = njit(cache=True, inline="always")(learn_in_place)
advance_alone = njit(cache=True)(advance_alone)
contest = njit(cache=True)(contest)
