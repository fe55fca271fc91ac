"""The theory of the boundaries against hand-derived closed forms.

Each oracle below is worked out on paper for a case small enough to solve by hand (one
environment, two orthogonal environments in alternation, a two-way router on orthogonal
cues); a Monte Carlo run of the bare learning recursion is a cross-check, not the oracle.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import ROOT, make_scenario

from circuits_abm.analysis.candidates import Problem, routing
from circuits_abm.analysis.critical import critical_environments
from circuits_abm.analysis.moments import Rule, leaf_statistics, recency_bias, schedule_chain
from circuits_abm.analysis.theory import fitness_valley, predict, set_partitions, split_path
from circuits_abm.engine.environments import build_environments
from circuits_abm.engine.model import CircuitsModel
from circuits_abm.engine.schedule import stationary_distribution
from circuits_abm.experiments.catalogue import canonical_scenarios

ETA, NOISE = 0.3, 0.3


def lone(n_envs=2, **schedule):
    spec = make_scenario(n_envs, geometry={"sharing": 0.0, "distinguishability": 1.0},
                         schedule=schedule)
    envs = build_environments(spec)
    return spec, envs, schedule_chain(spec, envs)


def test_one_environment_settles_at_its_demand_with_the_stationary_noise_penalty():
    # theta <- a theta + b d with a = (1-c)(1-eta), b = (1-c) eta: mean b/(1-a) d, and the
    # AR(1) noise variance D b^2 sigma^2 / (1 - a^2) in each of D = 2 dimensions.
    spec, envs, chain = lone(2, order="sequence", sequence=["e0"])
    c = 0.001
    a, b = (1 - c) * (1 - ETA), (1 - c) * ETA
    m = b / (1 - a)
    variance = 2 * b**2 * NOISE**2 / (1 - a**2)
    expected = m - 0.5 * (m**2 + variance)
    stats = leaf_statistics(chain, Rule("x", ETA, c), np.ones(2), envs.demand_overlap, NOISE)
    assert stats.reward == pytest.approx(expected, rel=1e-10)


def test_two_orthogonal_environments_alternating_every_step():
    # Before a step in A the mean is m_A = b (a d_A + d_B) / (1 - a^2) (solve the two-cycle
    # m_A = a m_B + b d_B, m_B = a m_A + b d_A).  Reward in A: <m_A, d_A> - |m_A|^2 / 2
    # minus half the noise variance; B is the mirror image.
    spec, envs, chain = lone(2, order="cycle", phase_length=1)
    a, b = 1 - ETA, ETA
    along_a, along_b = b * a / (1 - a**2), b / (1 - a**2)
    mean_reward = along_a - 0.5 * (along_a**2 + along_b**2)
    expected = mean_reward - 0.5 * 2 * b**2 * NOISE**2 / (1 - a**2)
    stats = leaf_statistics(chain, Rule("n", ETA, 0.0), np.ones(2), envs.demand_overlap, NOISE)
    assert stats.reward == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("tau", [1, 3, 10])
def test_recency_bias_at_the_phase_end_of_a_two_environment_cycle(tau):
    # At the end of a phase of A: m = b S (d_A + a^tau d_B) / (1 - a^(2 tau)) with
    # S = (1 - a^tau) / (1 - a), so the bias <m, d_A - d_B> is b S / (1 + a^tau).
    spec, envs, chain = lone(2, order="cycle", phase_length=tau)
    a, b = 1 - ETA, ETA
    s = (1 - a**tau) / (1 - a)
    stats = leaf_statistics(chain, Rule("n", ETA, 0.0), np.ones(2), envs.demand_overlap, NOISE)
    bias = recency_bias(chain, stats, envs.demand_overlap, (0, 1))
    assert bias == pytest.approx(b * s / (1 + a**tau), rel=1e-10)


def test_a_fixed_target_learner_sits_on_its_target():
    # A weighted optimiser with no consolidation converges to its target w* = (d_A + d_B)/2
    # whatever the schedule: reward <w*, d_e> - |w*|^2/2 = 1/2 - 1/4 on orthogonal demands.
    spec, envs, chain = lone(2, order="uniform", phase_length=4)
    rule = Rule("weighted", 0.1, 0.0, np.array([0.5, 0.5]))
    stats = leaf_statistics(chain, rule, np.ones(2), envs.demand_overlap, 0.0)
    assert stats.reward == pytest.approx(0.25, rel=1e-10)


def test_monte_carlo_of_the_learning_recursion_agrees_with_the_moment_equations():
    # A cross-check (a second implementation): simulate theta on a uniform schedule with
    # geometric phases over three environments at sharing 0.3, and average the reward.
    spec = make_scenario(3, geometry={"sharing": 0.3},
                         schedule={"order": "uniform", "phase_length": 4,
                                   "phase_length_distribution": "geometric"})
    envs = build_environments(spec)
    chain = schedule_chain(spec, envs)
    rule = Rule("n", ETA, 0.01)
    theory = leaf_statistics(chain, rule, np.ones(3), envs.demand_overlap, NOISE).reward
    rng = np.random.default_rng(5)
    d = envs.demands
    theta, env, total, steps = np.zeros(3), 0, 0.0, 400_000
    for _ in range(steps):
        total += theta @ d[env] - 0.5 * theta @ theta
        theta = (1 - 0.01) * (theta + ETA * (d[env] + NOISE * rng.normal(size=3) - theta))
        if rng.random() < 1 / 4:
            env = int(rng.integers(3))
    assert total / steps == pytest.approx(theory, abs=0.005)


def test_walk_chain_visits_environments_by_strength():
    spec = make_scenario(3, schedule={"order": "walk", "phase_length": 2},
                         edges=[{"source": "e0", "target": "e1", "weight": 2.0},
                                {"source": "e1", "target": "e2"}])
    envs = build_environments(spec)
    chain = schedule_chain(spec, envs)
    visits = np.bincount(chain.slot, chain.stationary)
    expected = stationary_distribution(envs)
    assert visits == pytest.approx([expected[n] for n in chain.labels])
    assert visits == pytest.approx([2 / 6, 3 / 6, 1 / 6])  # strengths 2, 3, 1


def test_a_two_way_router_on_orthogonal_cues_routes_by_softmax_of_its_contrast_keys():
    # Cues e_0, e_1; contrast keys (e_0 - e_1)/sqrt(2) and its negative: the logit gap in
    # environment 0 is 2 beta / sqrt(2), so the right child gets 1 / (1 + exp(-sqrt(2) beta)).
    cues = np.eye(2)
    probs = routing(cues, ((0,), (1,)), (0, 1), 3.0)
    right = 1 / (1 + np.exp(-np.sqrt(2) * 3.0))
    assert probs == pytest.approx(np.array([[right, 1 - right], [1 - right, right]]))


def test_learned_keys_reach_the_closed_form_optimum_on_three_orthogonal_cues():
    # Parts {0} and {1, 2}, cues e_0, e_1, e_2 trained equally.  The best unit keys are
    # opposite, k = (a, -b, -b) and -k with a^2 + 2 b^2 = 1 (any gap vector is dominated by
    # one of that form), so the routing gaps are 2 beta a in e_0 and 2 beta b in e_1, e_2,
    # and a = cos t, b = sin t / sqrt(2) maximise log s(2 beta a) + 2 log s(2 beta b) (s the
    # logistic function): a one-dimensional problem, solved here by bounded search.
    from scipy.optimize import minimize_scalar
    from scipy.special import expit, log_expit

    beta, cues, blocks = 3.0, np.eye(3), ((0,), (1, 2))

    def objective(t):
        a, b = np.cos(t), np.sin(t) / np.sqrt(2)
        return -(log_expit(2 * beta * a) + 2 * log_expit(2 * beta * b))

    t = minimize_scalar(objective, bounds=(0, np.pi / 2), method="bounded",
                        options={"xatol": 1e-10}).x
    right_0, right_1 = expit(2 * beta * np.cos(t)), expit(2 * beta * np.sin(t) / np.sqrt(2))
    learned = routing(cues, blocks, (0, 1, 2), beta, trained=np.full(3, 1 / 3))
    assert learned == pytest.approx(np.array([[right_0, 1 - right_1, 1 - right_1],
                                              [1 - right_0, right_1, right_1]]), abs=1e-6)
    born = routing(cues, blocks, (0, 1, 2), beta)  # contrast keys: gaps 2 beta (2, 1) / sqrt(6)
    assert born[1, 1] == pytest.approx(expit(2 * beta / np.sqrt(6)))
    assert learned[1, 1] > born[1, 1] and learned[0, 0] < born[0, 0]


def test_contrast_keys_underrate_a_router_over_a_churning_part_and_learned_keys_do_not():
    # Six interchangeable environments: two specialists beside one mechanism churning over
    # the other four.  Its contrast key separates those four poorly (0.82 of their traffic),
    # so at birth keys the router is worse than one churning mechanism; with the keys that
    # key learning reaches it routes 0.97 and is better by far.
    spec = make_scenario(6, geometry={"sharing": 0.1, "distinguishability": 0.9},
                         costs={"per_mechanism": 0.0025})
    blocks = ((2,), (4,), (0, 1, 3, 5))
    one = tuple(range(6))
    envs = build_environments(spec)
    born, learned = Problem(spec, envs), Problem(spec, envs, keys="learned")
    assert born.candidate(blocks).fitness < born.candidate((one,)).fitness
    assert learned.candidate(blocks).fitness > learned.candidate((one,)).fitness + 0.02
    assert learned.candidate((one,)).fitness == born.candidate((one,)).fitness
    routed = routing(envs.cues, blocks, one, 5.0, trained=np.full(6, 1 / 6))
    assert routed[2, 0] > 0.95 > 0.85 > routing(envs.cues, blocks, one, 5.0)[2, 0]


def test_identical_cues_cannot_be_routed():
    probs = routing(np.ones((3, 2)) / np.sqrt(2), ((0,), (1, 2)), (0, 1, 2), 50.0)
    assert probs == pytest.approx(np.full((2, 3), 0.5))


def test_set_partitions_are_counted_by_the_bell_numbers():
    assert [len(list(set_partitions(tuple(range(n))))) for n in range(7)] == [
        1, 1, 2, 5, 15, 52, 203
    ]


@pytest.mark.parametrize(
    ("sharing", "distinguishability", "regime"),
    [(0.1, 0.9, "conditional_policy"), (0.9, 0.9, "ecological_generalist"),
     (0.9, 0.1, "ecological_generalist"), (0.1, 0.05, "strategy_churn")],
)
def test_the_three_corners_of_the_taxonomy(sharing, distinguishability, regime):
    spec = make_scenario(4, geometry={"sharing": sharing,
                                      "distinguishability": distinguishability})
    assert predict(spec).regime == regime


def test_the_theory_predicts_every_canonical_regime_it_models():
    # The exceptions the theory names itself: gamma > 0 acts on the path (a newborn router
    # learns at share**gamma), not on the steady state it compares; motivations and the
    # monitor are outside it.
    for _, spec in canonical_scenarios(ROOT / "scenarios"):
        prediction = predict(spec)
        if spec.learning.gamma > 0:
            assert any("gamma" in note for note in prediction.notes)
            continue
        if spec.motivations:  # the theory covers the capability demands only, and says so
            assert any("motivations" in note for note in prediction.notes)
            continue
        assert prediction.structure == spec.expected, spec.name
        if spec.expected_before_interventions:
            assert predict(spec, at="start").structure == spec.expected_before_interventions


def test_separation_costs_lower_the_critical_number_of_environments():
    counts = [
        critical_environments(make_scenario(4, geometry={"sharing": 0.1, "distinguishability": 0.9},
                                            costs={"per_mechanism": cost}))
        for cost in (0.005, 0.01, 0.02, 0.04)
    ]
    assert all(n is not None for n in counts)
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]


def test_the_engine_frozen_in_structure_earns_what_the_theory_says():
    # Cross-check against the real model: no selection, no variation, no extinction, so each
    # circuit just learns on the schedule; its mean fitness after a burn-in must match the
    # moment equations (one shared mechanism of each rule, sharing 0.1).  One run's time
    # average scatters by about 0.002 around the theory, so the claim is about the mean over
    # ten seeds derived from a root seed: within four standard errors measured across them.
    spec = make_scenario(
        4, steps=4000, geometry={"sharing": 0.1, "distinguishability": 0.9},
        population={"initial": ["n", "g", "w"]}, variation={"rate": 0.0},
        selection={"strength": 0.0, "extinction_floor": 0.0},
    )
    measured = []
    for seed in np.random.SeedSequence(2026).generate_state(10):
        model = CircuitsModel(spec, seed=int(seed))
        total, steps = np.zeros(3), 0
        while model.steps < spec.steps:
            model.step()
            if model.steps > 1000:
                total += model.fitness
                steps += 1
        measured.append(total / steps)
    problem = Problem(spec, build_environments(spec))
    theory = {
        rule.name: leaf_statistics(problem.chain, rule, np.ones(4), problem.gram, problem.noise)
        .reward - spec.costs.per_mechanism
        for rule in problem.rules
    }
    runs = np.array(measured)
    error = runs.std(axis=0, ddof=1) / np.sqrt(len(runs))
    for k, rule in enumerate(["naive", "generalist", "weighted"]):
        assert runs[:, k].mean() == pytest.approx(theory[rule], abs=4 * error[k] + 2e-4), rule


def test_fitness_valley_is_the_dip_below_the_start_before_the_path_recovers():
    assert fitness_valley([0.30, 0.25, 0.20, 0.35, 0.10]) == pytest.approx(0.10)
    assert fitness_valley([0.30, 0.31, 0.40]) == 0.0
    assert fitness_valley([0.30, 0.29]) == pytest.approx(0.01)


def test_the_split_path_runs_from_one_mechanism_to_the_router_and_deepens_with_more_parts():
    valleys = []
    for n in (4, 6, 8):
        spec = make_scenario(n, geometry={"sharing": 0.1, "distinguishability": 0.9})
        blocks = tuple((e,) for e in range(n))
        path = split_path(spec, blocks)
        problem = Problem(spec, build_environments(spec))
        assert len(path) == n
        assert path[0] == pytest.approx(problem.candidate((tuple(range(n)),)).fitness)
        assert path[-1] == pytest.approx(problem.candidate(blocks).fitness)
        valleys.append(fitness_valley(path))
    assert valleys == sorted(valleys) and valleys[-1] > 10 * valleys[0]


@pytest.mark.parametrize("order", ["cycle", "uniform", "walk"])
def test_the_slot_level_solve_agrees_with_the_step_level_chain(order):
    # A cross-check: the fixed-phase fast path against the general solve on the step chain,
    # for routed (partial) exposure and every rule, including a weighted target.
    from circuits_abm.analysis.moments import phase_statistics, routed_drive, step_statistics

    edges = [{"source": f"e{i}", "target": f"e{(i + 1) % 4}", "weight": 1.0 + i}
             for i in range(4)]
    spec = make_scenario(4, geometry={"sharing": 0.3}, edges=edges,
                         schedule={"order": order, "phase_length": 7})
    envs = build_environments(spec)
    chain = schedule_chain(spec, envs)
    routed = np.array([0.9, 0.2, 0.6, 0.05])
    for rule in (Rule("n", 0.3, 0.0), Rule("g", 0.03, 0.001),
                 Rule("w", 0.1, 0.0, np.full(4, 0.25))):
        drive = routed_drive(chain, routed, envs.demand_overlap).for_rule(rule, envs.demand_overlap)
        fast = phase_statistics(chain, rule, drive, envs.demand_overlap, 0.3)
        slow = step_statistics(chain, rule, drive, envs.demand_overlap, 0.3)
        assert fast.reward == pytest.approx(slow.reward, rel=1e-9, abs=1e-12)
        assert fast.end_mean == pytest.approx(slow.end_mean, rel=1e-9, abs=1e-12)
