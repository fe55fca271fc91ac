"""Reward, routing, learning and selection maths: hand-computed values and exact oracles."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import FROZEN, make_scenario

from circuits_abm.engine import learning
from circuits_abm.engine.environments import PathwayMetric
from circuits_abm.engine.model import CircuitsModel
from circuits_abm.engine.reference import reference_select_and_learn
from circuits_abm.engine.schedule import stationary_distribution


def test_mechanism_reward_matches_hand_computation():
    theta = np.array([[0.5, 0.2], [1.0, 0.0]])
    demands = np.array([[1.0, 0.0], [0.0, 1.0]])
    no_motivation = PathwayMetric(np.full(2, -1), np.ones(2), np.zeros(2), np.full((2, 1), -1))
    rewards = learning.leaf_rewards(theta, demands, no_motivation, np.ones((2, 2)))
    # R = <theta, d> - |theta|^2 / 2
    assert rewards[0, 0] == pytest.approx(0.5 - 0.5 * 0.29)
    assert rewards[0, 1] == pytest.approx(0.2 - 0.5 * 0.29)
    assert rewards[1, 0] == pytest.approx(0.5)  # the best possible: theta = d_e


def test_router_routes_by_softmax_and_earns_the_routed_expectation():
    scenario = make_scenario(
        n_envs=2,
        geometry={"sharing": 0.0, "distinguishability": 1.0},
        population={"initial": ["R[n,n]"]},
        **FROZEN,
    )
    model = CircuitsModel(scenario, seed=0)
    router = model.circuits[0].root
    envs = model.environments
    a, b = router.children
    a.key[:] = envs.cues[0]
    b.key[:] = envs.cues[1]
    a.theta[:] = envs.demands[0]
    b.theta[:] = 0.0
    prob, path = learning.routing(model.layout, envs.cues)
    beta = router.sharpness
    p_a_in_e0 = math.exp(beta) / (math.exp(beta) + 1.0)  # <k_a, q_0> = 1, <k_b, q_0> = 0
    assert path[model.layout.leaf_rows[0], 0] == pytest.approx(p_a_in_e0)
    assert path[model.layout.leaf_rows[1], 1] == pytest.approx(p_a_in_e0)
    rewards = learning.leaf_rewards(model.layout.theta, envs.demands, envs.metric, envs.relevance)
    values = learning.subtree_values(model.layout, prob, rewards)
    assert values[0, 0] == pytest.approx(p_a_in_e0 * 0.5)
    assert values[0, 1] == pytest.approx((1 - p_a_in_e0) * (0.0 - 0.5))


def test_routed_learning_step_matches_hand_computation():
    """theta += eta * p * (d_e + noise - theta): the misrouted child learns too, less."""
    scenario = make_scenario(
        n_envs=2,
        geometry={"sharing": 0.0, "distinguishability": 1.0},
        population={"initial": ["R[n,g]"]},
        variation={"rate": 0.0},
        learning={"noise": 0.0},
        circuits={
            "generalist": {"learning_rate": 0.1, "consolidation": 0.0},
            "router": {"key_learning_rate": 0.0},
        },
    )
    model = CircuitsModel(scenario, seed=0)
    a, b = model.circuits[0].root.children
    envs = model.environments
    a.key[:], b.key[:] = envs.cues[0], envs.cues[1]
    p = math.exp(5.0) / (math.exp(5.0) + 1.0)
    model.select_and_learn(model.phases[0], np.zeros_like(model.layout.theta))  # trains e0
    np.testing.assert_allclose(a.theta, 0.3 * p * envs.demands[0])
    np.testing.assert_allclose(b.theta, 0.1 * (1 - p) * envs.demands[0])


def _nested_model(seed: int, gamma: float, rule: str = "plain") -> CircuitsModel:
    motivations = {} if rule == "plain" else {
        "motivations": [{"name": "hack"}],
        "monitor": {"rule": rule, "angle": 30.0},
        "environments": [{"name": "e0", "motivations": {"hack": 0.6}}, {"name": "e1"},
                         {"name": "e2", "motivations": {"hack": -0.3}}, {"name": "e3"}],
    }
    scenario = make_scenario(
        **motivations,
        geometry={"sharing": 0.2, "distinguishability": 0.7},
        learning={"gamma": gamma},
        selection={"strength": 0.2},
        variation={"rate": 0.5},
        schedule={
            "sequence": ["e0", "mix", "e2"],
            "mixtures": {"mix": {"e1": 1, "e3": 2}},
            "phase_length": 5,
        },
        population={"initial": ["R[n,R[g,w],g]", "R[R[n,n],R[g,g,w]]", "n", "w", "g"]},
    )
    model = CircuitsModel(scenario, seed=seed)
    for _ in range(30):  # grow varied, partly trained, nested circuits
        model.step()
    return model


@pytest.mark.parametrize(("seed", "gamma", "rule"),
                         [(1, 0.0, "plain"), (2, 0.5, "plain"), (3, 1.0, "plain"),
                          (4, 0.0, "block"), (5, 0.5, "route")])
def test_compiled_step_equals_per_circuit_reference(seed, gamma, rule):
    model = _nested_model(seed, gamma, rule)
    assert any("R[" in c.structure[1:] for c in model.circuits)  # nested routers present
    for phase in model.phases[:4]:  # ordinary and mixture phases
        noise = model.rng.normal(size=model.layout.theta.shape)
        layout = model.layout
        saved = (layout.theta.copy(), layout.keys.copy(), model.shares.copy(),
                 layout.quarantine.copy())
        fast_fitness = model.select_and_learn(phase, noise)
        fast = (layout.theta.copy(), layout.keys.copy(), model.shares.copy(),
                layout.quarantine.copy())
        layout.theta[:], layout.keys[:], model.shares, layout.quarantine[:] = saved
        ref_fitness = reference_select_and_learn(model, phase, noise)
        np.testing.assert_allclose(fast_fitness, ref_fitness, atol=1e-12)
        np.testing.assert_allclose(fast[0], layout.theta, atol=1e-12)
        np.testing.assert_allclose(fast[1], layout.keys, atol=1e-12)
        np.testing.assert_allclose(fast[2], model.shares, atol=1e-12)
        np.testing.assert_allclose(fast[3], layout.quarantine, atol=1e-12)
    if rule == "route":
        assert np.abs(layout.quarantine).max() > 0  # something was routed


def test_key_learning_moves_keys_toward_contexts_where_their_child_is_better():
    scenario = make_scenario(
        n_envs=2,
        geometry={"sharing": 0.0, "distinguishability": 1.0},
        population={"initial": ["R[n,n]"]},
        variation={"rate": 0.0},
        learning={"noise": 0.0},
        circuits={"naive": {"learning_rate": 0.0}},
    )
    model = CircuitsModel(scenario, seed=4)
    a, b = model.circuits[0].root.children
    envs = model.environments
    a.theta[:] = envs.demands[0]  # a is the e0 specialist
    before = float(a.key @ envs.cues[0])
    model.select_and_learn(model.phases[0], np.zeros_like(model.layout.theta))  # phase 0 is e0
    assert float(a.key @ envs.cues[0]) > before
    assert np.linalg.norm(a.key) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_selection_log_ratio_identity_is_exact_for_any_environment_sequence(seed):
    scenario = make_scenario(
        schedule={"order": "uniform", "phase_length": 1},
        population={"initial": ["n", "g", "w", "R[n,g]", "R[n,n,R[g,g]]"]},
        selection={"strength": 3.0, "extinction_floor": 0.0},
        **{k: v for k, v in FROZEN.items() if k != "selection"},
    )
    model = CircuitsModel(scenario, seed=seed)
    rng = np.random.default_rng(seed)
    for leaf in model.layout.theta:
        leaf[:] = rng.normal(scale=0.5, size=leaf.shape)
    for _ in range(50):
        before = np.log(model.shares)
        model.step()
        change = np.log(model.shares) - before
        fit = model.fitness
        expected = 3.0 * (fit[:, None] - fit[None, :])
        np.testing.assert_allclose(change[:, None] - change[None, :], expected, atol=1e-9)


def test_frozen_circuits_are_won_by_the_best_stationary_average_fitness():
    edges = [("e0", "e1"), ("e0", "e2"), ("e0", "e3"), ("e1", "e2")]
    scenario = make_scenario(
        geometry={"sharing": 0.0, "distinguishability": 1.0},
        schedule={"order": "walk", "phase_length": 1},
        edges=[{"source": a, "target": b} for a, b in edges],
        population={"initial": ["n", "n", "n", "n"]},
        selection={"strength": 0.5, "extinction_floor": 0.0},
        **{k: v for k, v in FROZEN.items() if k != "selection"},
    )
    for seed in (0, 1, 2):
        model = CircuitsModel(scenario, seed=seed, steps=3_000)
        envs = model.environments
        # Each circuit is perfect in one environment: the best on average is the one
        # tuned to the most-visited (highest-degree) environment, e0.
        for i, leaf in enumerate(model.layout.theta):
            leaf[:] = envs.demands[i]
        pi = stationary_distribution(envs)
        stationary = [
            sum(pi[n] * (envs.demands[i] @ envs.demands[e] - 0.5) for e, n in enumerate(envs.names))
            for i in range(4)
        ]
        model.run()
        assert int(np.argmax(model.shares)) == int(np.argmax(stationary)) == 0
        assert model.shares[0] > 0.99
