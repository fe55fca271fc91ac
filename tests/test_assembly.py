"""The path model (analysis.assembly, experiments.paths): each piece against a hand
calculation or a closed form, the reduced contest on cases whose outcome is certain, and
one trend the model must show."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

import circuits_abm as ca
from circuits_abm.analysis.assembly import (
    PathPrediction,
    Transition,
    operator_probability,
    path_leaves_out,
    path_prediction,
)
from circuits_abm.analysis.candidates import Problem
from circuits_abm.analysis.moments import Rule
from circuits_abm.analysis.rates import wilson
from circuits_abm.analysis.reduced_step import Circuits, StepModel, key_step
from circuits_abm.analysis.theory import geometry_at, split_path_blocks
from circuits_abm.experiments.path_model import (
    PATH_TABLE,
    majority_confidence,
    path_agreement,
    path_table,
)
from circuits_abm.experiments.sweep.runner import sweep


def _problem(**overrides) -> Problem:
    spec = ca.override(ca.load_scenario("standard"), overrides)
    return Problem(spec, geometry_at(spec, "end"))


def _step(problem, rule, theta, keys, weights):
    """One step of the reduced model at full learning weight: new parameters, fitness."""
    model = StepModel.of(problem.spec, problem.envs)
    circuits = Circuits(theta, np.zeros_like(theta), keys)
    fitness, routed, values = model.evaluate(circuits, weights)
    learned = model.learn(rule, circuits, weights, routed, values, np.ones(len(theta)),
                          np.zeros_like(theta))
    return learned.theta, fitness


def test_operator_probabilities_are_the_weights_among_the_operators_that_apply():
    spec = ca.load_scenario("standard")
    # a lone mechanism: split 1, mutate 2, switch_rule 0.5; a router: all eight, 6.5 in all
    assert operator_probability(spec, "split", router=False) == pytest.approx(1 / 3.5)
    assert operator_probability(spec, "collapse", router=False) == 0.0
    assert operator_probability(spec, "split", router=True) == pytest.approx(1 / 6.5)
    assert operator_probability(spec, "collapse", router=True) == pytest.approx(0.5 / 6.5)


@pytest.mark.parametrize("rule_name", ["naive", "generalist"])
def test_a_lone_mechanism_steps_as_the_model_says(rule_name):
    problem = _problem(**{"learning.noise": 0.0})
    rule = next(r for r in problem.rules if r.name == rule_name)
    d = problem.envs.capability
    theta = np.array([[[0.3, -0.2, 0.5, 0.1]]])[:, :, : d.shape[1]]
    weights = np.zeros((1, len(d)))
    weights[0, 2] = 1.0
    new, fitness = _step(problem, rule, theta, None, weights)
    t, demand = theta[0, 0], d[2]
    expected_fitness = t @ demand - 0.5 * t @ t - problem.spec.costs.per_mechanism
    eta, c = rule.learning_rate, rule.consolidation
    assert fitness[0] == pytest.approx(expected_fitness)
    assert new[0, 0] == pytest.approx((1 - c) * (t + eta * (demand - t)))


def test_a_router_routes_by_softmax_pays_its_costs_and_teaches_each_child_its_share():
    problem = _problem(**{"learning.noise": 0.0})
    rule = problem.rules[0]
    spec = problem.spec
    d, q = problem.envs.capability, problem.envs.cues
    rng = np.random.default_rng(3)
    theta = rng.normal(size=(1, 2, d.shape[1]))
    keys = rng.normal(size=(1, 2, q.shape[1]))
    keys /= np.linalg.norm(keys, axis=-1, keepdims=True)
    weights = np.array([[0.0, 0.5, 0.5, 0.0]])
    new, fitness = _step(problem, rule, theta, keys, weights)
    beta = spec.circuits.router.initial_sharpness
    expected, children = 0.0, []
    for j in range(2):
        t = theta[0, j]
        share = {e: softmax(beta * keys[0] @ q[e])[j] for e in (1, 2)}
        expected += sum(0.5 * share[e] * (t @ d[e] - 0.5 * t @ t) for e in (1, 2))
        exposure = 0.5 * (share[1] + share[2])
        target = 0.5 * (share[1] * d[1] + share[2] * d[2])
        children.append((1 - rule.consolidation)
                        * (t + rule.learning_rate * (target - exposure * t)))
    expected -= 2 * spec.costs.per_mechanism + spec.costs.per_sharpness * beta
    assert fitness[0] == pytest.approx(expected)
    assert new[0] == pytest.approx(np.array(children))


def test_keys_move_toward_contexts_where_their_child_beats_the_router():
    # Two orthogonal cues, only A trained; child 1 earns 1 in A, child 2 earns 0.  With
    # p1 = e^b / (e^b + 1), key 1 moves along q_A (and stays (1, 0) once normalised), key
    # 2 moves by -step * p1 * p2 along q_A: (-step p1 p2, 1) normalised.
    beta, step = 2.0, 0.7
    cues = np.eye(2)
    keys = np.array([[[1.0, 0.0], [0.0, 1.0]]])
    p1 = math.exp(beta) / (math.exp(beta) + 1)
    p2 = 1 - p1
    routed = np.array([[[p1, 0.5], [p2, 0.5]]])
    values = np.array([[[1.0, 0.0], [0.0, 0.0]]])
    moved = key_step(keys, routed, values, np.array([[1.0, 0.0]]), cues, step)
    shift = step * p1 * p2
    assert moved[0, 0] == pytest.approx([1.0, 0.0])
    assert moved[0, 1] == pytest.approx(np.array([-shift, 1.0]) / math.hypot(shift, 1.0))


def test_the_split_path_peels_one_environment_at_a_time_and_keeps_the_rest_last():
    problem = _problem()
    target = tuple((e,) for e in problem.training)
    chain = split_path_blocks(problem, target)
    assert [sorted(len(b) for b in blocks) for blocks in chain] == [
        [4], [1, 3], [1, 1, 2], [1, 1, 1, 1]]
    for before, after in zip(chain, chain[1:], strict=False):
        assert set(after[:-2]) == set(before[:-1])  # the parts already split off stay
        assert set(after[-2]) | set(after[-1]) == set(before[-1])  # the rest is divided


def test_without_noise_a_costlier_twin_never_takes_over():
    # Identical demands and cues: the split's children earn exactly what the resident does,
    # and pay one more mechanism and the sharpness.  Without noise it can only shrink.
    spec = ca.override(ca.load_scenario("standard"), {
        "geometry.sharing": 1.0, "geometry.distinguishability": 0.0, "learning.noise": 0.0,
        "costs.per_mechanism": 0.0})
    path = _forced_path(spec)
    split = path.transitions[0]
    assert split.operator == "split" and split.takeover.k == 0


def test_without_noise_a_router_over_orthogonal_tasks_always_takes_over():
    # Two orthogonal environments, long phases, sharp routing, no costs and no noise: after
    # every switch the resident starts from the wrong task while the router's children do
    # not, so every newborn router takes over.
    spec = ca.Scenario(
        name="two", steps=6000, environments=[{"name": "a"}, {"name": "b"}],
        geometry={"sharing": 0.0, "distinguishability": 1.0},
        schedule={"phase_length": 50}, learning={"noise": 0.0},
        costs={"per_mechanism": 0.0, "per_sharpness": 0.0},
        circuits={"router": {"initial_sharpness": 20.0}})
    path = path_prediction(spec, replicates=40)
    split = path.transitions[0]
    assert (split.source, split.target, split.operator) == (0, 1, "split")
    assert split.takeover.k == split.takeover.n == 40
    back = [t for t in path.transitions if t.target == 0]
    assert back and all(t.takeover.k == 0 for t in back)
    assert path.router_probability > 0.99


def _forced_path(spec) -> PathPrediction:
    """The chain toward one specialist per environment even where the theory prefers one
    mechanism (for contests whose outcome is known)."""
    from circuits_abm.analysis import assembly  # noqa: PLC0415

    problem = Problem(spec, geometry_at(spec, "end"))
    chain = split_path_blocks(problem, tuple((e,) for e in problem.training))
    rule = problem.rules[0]
    arena = assembly.Arena(problem, rule, 40, np.random.default_rng(0))
    transitions = assembly._transitions_from(arena, chain, 0)
    return PathPrediction(("one", "two"), tuple(transitions), spec.steps)


def test_the_chain_occupation_is_the_two_state_closed_form():
    # forward q = 0.01 x 1/2, back r = 0.004 x 1/2: P(router at T) = q/(q+r) (1 - e^-(q+r)T)
    half = wilson(1, 2)
    path = PathPrediction(("one", "router"), (
        Transition(0, 1, "split", 0.01, half), Transition(1, 0, "collapse", 0.004, half)), 300)
    q, r = 0.005, 0.002
    expected = q / (q + r) * (1 - math.exp(-(q + r) * 300))
    assert path.router_probability == pytest.approx(expected)
    assert path.occupation.sum() == pytest.approx(1.0)
    assert path.generator.sum(axis=1) == pytest.approx([0.0, 0.0])


def test_the_path_model_loses_routers_as_sharing_rises():
    # The trend the path adds to the end-point theory (which predicts a router at both):
    # with overlapping demands the first split is rarely worth it and easily undone.
    low = path_prediction(ca.override(ca.load_scenario("standard"), {
        "geometry.sharing": 0.0, "geometry.distinguishability": 0.857}), replicates=200)
    high = path_prediction(ca.override(ca.load_scenario("standard"), {
        "geometry.sharing": 0.7, "geometry.distinguishability": 0.857}), replicates=200)
    assert low.router_probability > 0.9
    assert high.router_probability < 0.5


def test_the_same_seed_gives_the_same_path():
    spec = ca.override(ca.load_scenario("standard"), {"geometry.sharing": 0.56})
    one, two = (path_prediction(spec, replicates=60, seed=5) for _ in range(2))
    assert one.to_dict() == two.to_dict()


@pytest.mark.parametrize("p", [0.77, 0.23, 0.5, 1.0])
def test_majority_confidence_is_the_binomial_tail(p):
    favoured = max(p, 1 - p)
    expected = sum(math.comb(5, k) * favoured**k * (1 - favoured) ** (5 - k)
                   for k in range(3, 6))
    assert majority_confidence(p, 5) == pytest.approx(expected)


def test_path_agreement_counts_by_hand():
    aggregate = pd.DataFrame({
        "point": [0, 1, 2, 3],
        "runs": [5, 5, 5, 5],
        "majority_regime": ["conditional_policy", "strategy_churn", "strategy_churn",
                            "conditional_policy"],
        "predicted_regime": ["conditional_policy"] * 3 + ["strategy_churn"],
        "away_from_boundary": [True, True, True, False],
    })
    aggregate = pd.concat([aggregate, pd.DataFrame({
        "point": [4], "runs": [5], "majority_regime": ["conditional_policy"],
        "predicted_regime": ["conditional_policy"], "away_from_boundary": [True]})],
        ignore_index=True)
    paths = pd.DataFrame({
        "point": [0, 1, 2, 3, 4],
        "router_probability": [0.95, 0.1, 0.6, np.nan, 0.99],
        "path_regime": ["conditional_policy", "strategy_churn", "conditional_policy", "",
                        "conditional_policy"],
        "path_uncovered": ["", "", "", "", "initial router"],
    })
    # with the path: agrees at 0, 1, 4; not at 2 (router, 0.6) nor 3 (no path: end point
    # says churn).  Away: 0 (0.95 -> 5-seed majority 99.9%), 1 (0.1 -> 99.1%); not 2 (0.6
    # -> 68%), not 3 (the end point is near its boundary), not 4 (the chain leaves out the
    # initial router).
    assert path_agreement(aggregate, paths) == {
        "points": 5, "regime": 0.6, "away_points": 2, "away_regime": 1.0}


def _two_state(forward: float, back: float, steps: int) -> PathPrediction:
    half = wilson(1, 2)  # takeover 0.5: each rate is births / 2
    return PathPrediction(("one", "router"), (
        Transition(0, 1, "split", 2 * forward, half),
        Transition(1, 0, "collapse", 2 * back, half)), steps)


def test_the_start_decides_when_a_router_is_kept_but_rarely_reached():
    # No way back: from the router P = 1; from one mechanism P = 1 - exp(-q T).
    rare = _two_state(forward=1e-4, back=0.0, steps=1000)  # 1 - e^-0.1 = 0.095
    assert rare.router_probability == pytest.approx(1 - math.exp(-0.1))
    assert rare.start_decides
    common = _two_state(forward=1e-2, back=0.0, steps=1000)  # 1 - e^-10
    assert not common.start_decides
    # Both ways fast: the chain forgets its start (q/(q+r) = 0.2 from either end).
    mixing = _two_state(forward=0.01, back=0.04, steps=1000)
    assert 1 - mixing.occupation_from(1)[0] == pytest.approx(0.2)
    assert not mixing.start_decides


def test_the_path_names_what_it_leaves_out():
    spec = ca.load_scenario("standard")
    rare = _two_state(forward=1e-4, back=0.0, steps=1000)
    naive = Rule("naive", 0.3, 0.0)
    weighted = Rule("weighted", 0.1, 0.0, np.full(4, 0.25))
    assert path_leaves_out(spec, naive, rare) == ("initial router",)
    assert path_leaves_out(spec, weighted, rare) == ("fixed-target rule", "initial router")
    no_router = ca.override(spec, {"population.initial": ["n", "g"]})
    assert path_leaves_out(no_router, naive, rare) == ()


def test_the_path_table_is_computed_once_and_kept_beside_the_sweep(tmp_path):
    # Sharing 0.95: the theory predicts one mechanism, so there is no path to compute.
    design = {"name": "paths", "base": "standard", "seeds": 1, "steps": 200,
              "axes": {"geometry.sharing": {"values": [0.95, 0.97]}}}
    sweep(design, tmp_path, executor="serial", progress=False)
    table = path_table(tmp_path, progress=False)
    assert list(table.point) == [0, 1]
    assert table.router_probability.isna().all() and (table.path_regime == "").all()
    written = (tmp_path / PATH_TABLE).stat().st_mtime_ns
    again = path_table(tmp_path, progress=False)
    assert (tmp_path / PATH_TABLE).stat().st_mtime_ns == written
    pd.testing.assert_frame_equal(table, again)


def test_path_rows_follow_the_points_whatever_order_the_axes_come_back_in(tmp_path):
    # The echo stores the axes with sorted keys, so the rebuilt sweep numbers the grid
    # differently from the sweep that ran (sharing first here, costs first once sorted).
    # Only sharing 0.1 predicts a router, so only its rows get a probability.
    design = {"name": "order", "base": "standard", "seeds": 1, "steps": 100,
              "axes": {"geometry.sharing": {"values": [0.1, 0.95]},
                       "costs.per_sharpness": {"values": [0.001, 0.002]}}}
    sweep(design, tmp_path, executor="serial", progress=False)
    table = path_table(tmp_path, progress=False, replicates=20)
    aggregate = pd.read_parquet(tmp_path / "aggregate.parquet").merge(table, on="point")
    routed = aggregate.router_probability.notna()
    assert list(routed) == list(aggregate["geometry.sharing"] == 0.1)
    assert routed.sum() == 2


def test_a_truncated_chain_absorbs_in_its_last_state_and_bounds_the_probability(monkeypatch):
    # Cut the standard chain after two structures: only the first split remains, so the
    # probability of a router is 1 - exp(-rate T), at least what the whole chain gives.
    from circuits_abm.analysis import assembly  # noqa: PLC0415

    spec = ca.load_scenario("standard")
    whole = path_prediction(spec, replicates=60)
    monkeypatch.setattr(assembly, "MAX_ASSEMBLY_PARTS", 2)
    cut = path_prediction(spec, replicates=60)
    assert cut.truncated and not whole.truncated and len(cut.states) == 2
    assert [(t.source, t.target) for t in cut.transitions] == [(0, 1)]
    rate = cut.transitions[0].rate
    assert cut.router_probability == pytest.approx(1 - math.exp(-rate * spec.steps))
    assert cut.transitions[0].takeover == whole.transitions[0].takeover  # same first contest
    assert cut.router_probability >= whole.router_probability
    assert "at most" in cut.describe()


def frozen_chain(forward: float, onward: float, truncated: bool = False) -> PathPrediction:
    """One mechanism -> a router over two parts (``forward`` takeovers per step) -> a
    router over three (``onward``), over 1000 steps."""
    sure = wilson(1, 1)  # every simulated offspring took over: the rate is the births
    return PathPrediction(("n", "R[a,b]", "R[a,R[b,c]]"), (
        Transition(0, 1, "split", forward, sure),
        Transition(1, 2, "split", onward, sure)), 1000, truncated)


def test_the_nested_prediction_is_the_chains_most_probable_router_state_not_its_last():
    """Pure births at rate a then b: ``P(state 2) = 1 - (b e^{-aT} - a e^{-bT}) / (b - a)``
    and ``P(state 0) = e^{-aT}``. With a = 0.01 and b = 0.0002 over T = 1000: state 0 has
    4.5e-5, state 2 about 0.16, so the middle router (0.84) is the prediction."""
    path = frozen_chain(0.01, 0.0002)
    a, b, t = 0.01, 0.0002, 1000
    last = 1 - (b * np.exp(-a * t) - a * np.exp(-b * t)) / (b - a)
    np.testing.assert_allclose(path.occupation, [np.exp(-a * t), 1 - np.exp(-a * t) - last,
                                                 last], atol=1e-9)
    assert path.ends_with_router and path.decided
    assert path.predicted_state == "R[a,b]"
    assert path.to_dict()["predicted_structure"] == "R[a,b]"
    assert "verdict: a router" in path.describe() and "R[a,b] (probability 0.84)" in path.describe()


def test_a_chain_that_rarely_leaves_one_mechanism_predicts_it_and_a_cut_chain_is_undecided():
    rare = frozen_chain(0.0001, 0.0001)
    assert not rare.ends_with_router and rare.predicted_state == "n"
    assert "verdict: no router" in rare.describe()
    cut = frozen_chain(0.01, 0.0, truncated=True)
    assert not cut.decided and cut.to_dict()["ends_with_router"] is None
    assert "undecided" in cut.describe()


def test_a_newborn_learning_at_its_share_to_the_gamma_reaches_the_router_less_often():
    # With gamma > 0 a newborn router at share 0.05 learns at 0.05**gamma of the rate the
    # resident does, so it trails further behind while it is small: the path model must
    # give fewer routers than at gamma = 0 (which it ignored before).
    spec = ca.load_scenario("standard")
    full = path_prediction(spec, replicates=100)
    slowed = path_prediction(ca.override(spec, {"learning.gamma": 0.5}), replicates=100)
    assert slowed.router_probability < full.router_probability - 0.2
