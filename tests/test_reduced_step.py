"""The reduced model of the step (analysis.reduced_step) is the model's step: on the same
population of one-level circuits, the same phase and the same noise, it gives the per-circuit
reference's fitness, shares, parameters, quarantine and keys to 1e-12."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_scenario

from circuits_abm.analysis import reduced_kernels
from circuits_abm.analysis.candidates import learning_rule
from circuits_abm.analysis.reduced_step import Circuits, StepModel, replicate
from circuits_abm.engine.model import CircuitsModel
from circuits_abm.engine.reference import reference_select_and_learn

MOTIVATED = {
    "motivations": [{"name": "hack", "gains": [1.0, 0.6, 0.3]}],
    "environments": [{"name": "e0", "motivations": {"hack": 0.6}}, {"name": "e1"},
                     {"name": "e2", "motivations": {"hack": -0.3}}, {"name": "e3"}],
}


def _model(shape: str, rule: str, gamma: float, seed: int) -> CircuitsModel:
    """Five circuits of one shape (``shape``: a structure string) with varied, partly
    trained parameters and keys; no variation, so the shapes stay.  Plain learning runs
    without motivations (every metric the identity), the monitor's rules with them."""
    extra = {} if rule == "plain" else {**MOTIVATED, "monitor": {
        "rule": rule, "angle": 25.0, "capacity": 0.05}}
    scenario = make_scenario(
        **extra,
        geometry={"sharing": 0.2, "distinguishability": 0.7},
        learning={"gamma": gamma}, selection={"strength": 2.0, "extinction_floor": 0.0},
        variation={"rate": 0.0},
        schedule={"sequence": ["e0", "mix", "e2"], "mixtures": {"mix": {"e1": 1, "e3": 2}},
                  "phase_length": 5},
        population={"initial": [shape] * 5})
    model = CircuitsModel(scenario, seed=seed)
    rng = np.random.default_rng(seed)
    model.layout.theta[:] = rng.normal(0.0, 0.5, model.layout.theta.shape)
    for _ in range(12):
        model.step()
    return model


def _batch(model: CircuitsModel, parts: int, router: bool) -> Circuits:
    """The population's arrays as one batch: circuit i holds mechanisms i*parts ... ."""
    layout, n = model.layout, len(model.circuits)
    theta = layout.theta.reshape(n, parts, -1).copy()
    quarantine = layout.quarantine.reshape(n, parts, -1).copy()
    keys = None
    if router:
        keys = np.array([[child.key for child in c.root.children] for c in model.circuits])
    return Circuits(theta, quarantine, keys)


@pytest.mark.parametrize(("shape", "parts", "rule", "gamma", "seed"), [
    ("n", 1, "plain", 0.0, 1), ("w", 1, "block", 0.5, 2), ("g", 1, "route", 1.0, 3),
    ("R[n,n]", 2, "plain", 0.3, 4), ("R[n,n,n]", 3, "route", 0.5, 5),
    ("R[g,g]", 2, "watch", 0.0, 6), ("R[w,w]", 2, "block", 1.0, 7),
])
def test_the_reduced_step_is_the_reference_step(shape, parts, rule, gamma, seed):
    model = _model(shape, rule, gamma, seed)
    router = parts > 1 or shape.startswith("R")
    steps = StepModel.of(model.spec, model.environments)
    leaf = learning_rule(model.spec, model.environments,
                         model.circuits[0].root.children[0].rule if router
                         else model.circuits[0].root.rule)
    for phase in model.phases[:3]:  # a single environment, a mixture, another single one
        noise = model.rng.normal(size=model.layout.theta.shape)
        before, shares = _batch(model, parts, router), model.shares.copy()
        fitness = reference_select_and_learn(model, phase, noise)
        after = _batch(model, parts, router)

        weights = np.broadcast_to(phase.weights, (len(shares), len(phase.weights)))
        found, routed, values = steps.evaluate(before, weights)
        new_shares = replicate(shares, found, steps.strength)
        learned = steps.learn(leaf, before, weights, routed, values,
                              new_shares ** steps.gamma,
                              noise.reshape(len(shares), parts, -1))
        np.testing.assert_allclose(found, fitness, rtol=0, atol=1e-12)
        np.testing.assert_allclose(new_shares, model.shares, rtol=0, atol=1e-12)
        np.testing.assert_allclose(learned.theta, after.theta, rtol=0, atol=1e-12)
        np.testing.assert_allclose(learned.quarantine, after.quarantine, rtol=0, atol=1e-12)
        if router:
            np.testing.assert_allclose(learned.keys, after.keys, rtol=0, atol=1e-12)
    assert steps.euclidean == (rule == "plain")  # both ways of computing the metric ran
    if rule == "route":
        assert np.abs(model.layout.quarantine).max() > 0  # the monitor's branch ran


def test_the_replicator_is_the_closed_form_of_one_step():
    # x' = x e^{s f} / sum x e^{s f}: shares (1/4, 3/4), fitness (1, 0), strength ln 3
    # give (3/4 / (3/4 + 3/4), ...) = (1/2, 1/2).
    out = replicate(np.array([0.25, 0.75]), np.array([1.0, 0.0]), np.log(3.0))
    np.testing.assert_allclose(out, [0.5, 0.5], rtol=0, atol=1e-15)


@pytest.mark.parametrize(("shape", "parts", "rule", "gamma", "seed"), [
    ("n", 1, "plain", 0.0, 1), ("w", 1, "block", 0.5, 2), ("g", 1, "route", 1.0, 3),
    ("R[n,n]", 2, "plain", 0.3, 4), ("R[n,n,n]", 3, "route", 0.5, 5),
    ("R[g,g]", 2, "watch", 0.0, 6), ("R[w,w]", 2, "block", 1.0, 7),
])
def test_the_compiled_step_is_the_reduced_step(shape, parts, rule, gamma, seed):
    """``reduced_kernels`` (one circuit at a time, in machine code) gives the numpy batch
    step's fitness, routing, values, parameters, quarantine and keys to 1e-12, for every
    monitor rule, fixed targets included, at learning weights other than 1."""
    model = _model(shape, rule, gamma, seed)
    router = parts > 1
    steps = StepModel.of(model.spec, model.environments)
    leaf = learning_rule(model.spec, model.environments,
                         model.circuits[0].root.children[0].rule if router
                         else model.circuits[0].root.rule)
    (demands, metrics, euclidean, cues, sharpness, per_mechanism, sharpness_cost, has_target,
     target_demand, learning_rate, consolidation, noise_level, update_rule, monitor, capacity,
     key_step) = steps.compiled(leaf)
    batch = _batch(model, parts, router)
    n, dims = len(model.circuits), batch.theta.shape[2]
    weights = np.broadcast_to(model.phases[1].weights, (n, len(demands)))  # a mixture
    noise = np.random.default_rng(seed).normal(size=batch.theta.shape)
    learning_weight = np.linspace(0.2, 1.0, n)
    found, routed, values = steps.evaluate(batch, weights)
    learned = steps.learn(leaf, batch, weights, routed, values, learning_weight, noise)
    for i in range(n):
        theta, quarantine = batch.theta[i].copy(), batch.quarantine[i].copy()
        keys = batch.keys[i].copy() if router else np.zeros((parts, cues.shape[1]))
        my_routed, my_values = np.empty((parts, len(demands))), np.empty((parts, len(demands)))
        cost = parts * per_mechanism + sharpness_cost if router else per_mechanism
        fitness = reduced_kernels.evaluate_one(
            theta, quarantine, keys, router, weights[i], demands, metrics, euclidean, cues,
            sharpness, cost, my_routed, my_values, np.empty(dims))
        reduced_kernels.learn_one(
            theta, quarantine, keys, router, weights[i], my_routed, my_values,
            learning_weight[i], noise[i], demands, metrics, euclidean, cues, has_target,
            target_demand, learning_rate, consolidation, noise_level, update_rule, monitor,
            capacity, key_step, np.empty(dims), np.empty(dims))
        assert abs(fitness - found[i]) < 1e-12
        np.testing.assert_allclose(my_routed, routed[i], rtol=0, atol=1e-12)
        np.testing.assert_allclose(my_values, values[i], rtol=0, atol=1e-12)
        np.testing.assert_allclose(theta, learned.theta[i], rtol=0, atol=1e-12)
        np.testing.assert_allclose(quarantine, learned.quarantine[i], rtol=0, atol=1e-12)
        if router:
            np.testing.assert_allclose(keys, learned.keys[i], rtol=0, atol=1e-12)
    assert has_target == (shape.strip("R[]")[0] == "w")  # the fixed-target branch ran


def test_the_compiled_noise_is_standard_normal_and_the_same_from_the_same_seed():
    # 200,000 deviates: the mean is within 5 standard errors of 0 (5 / sqrt(2e5) = 0.011),
    # the variance within 5 of 1 (sqrt(2 / 2e5) = 0.0032 each), and 1.96 is the 97.5% point.
    draws, again = np.zeros((1000, 200)), np.zeros((1000, 200))
    reduced_kernels.fill_normal(np.array([2027], dtype=np.uint64), draws)
    reduced_kernels.fill_normal(np.array([2027], dtype=np.uint64), again)
    assert np.array_equal(draws, again)
    assert abs(draws.mean()) < 0.011
    assert abs(draws.var() - 1.0) < 0.016
    assert abs((draws < 1.96).mean() - 0.975) < 5 * np.sqrt(0.975 * 0.025 / draws.size)
