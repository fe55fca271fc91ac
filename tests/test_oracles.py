"""One independent oracle per mechanism of the engine, each computed by hand (the
classifier's are in test_classification.py, the reward-seeking model's in
test_reward_seeking.py).

Every expected value below comes from the model's equations applied to a frozen or tiny
population (docs/model.md), never from the code under test.  Each test names the mechanism
it pins down, so a bug in that mechanism fails a test with its name.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import FROZEN, make_scenario

from circuits_abm.engine.circuits import (
    Circuit,
    Mechanism,
    Router,
    copy_tree,
    parse_structure,
    structure_string,
)
from circuits_abm.engine.environments import align, build_environments
from circuits_abm.engine.model import CircuitsModel, fixed_targets
from circuits_abm.engine.records import lineage_table
from circuits_abm.engine.schedule import build_schedule
from circuits_abm.engine.selection import replicator
from circuits_abm.engine.variation import Context, make_offspring

# Frozen, and selection off too: shares move only when a test moves them.
STILL = {**FROZEN, "selection": {"extinction_floor": 0.0, "strength": 0.0}}
ORTHOGONAL = {"sharing": 0.0, "distinguishability": 1.0}


def frozen(initial, n_envs=2, **overrides):
    settings = {**STILL, **overrides}
    return CircuitsModel(
        make_scenario(n_envs, geometry=ORTHOGONAL, population={"initial": initial}, **settings),
        seed=0,
    )


# ------------------------------------------------------------------ fitness and costs


def test_fitness_of_a_frozen_router_is_routed_reward_minus_both_costs():
    # R[n,n]: child a sits on d_0, child b at 0; keys q_0 and q_1, so in e0 the router sends
    # p = e^beta / (e^beta + 1) to a.  Fitness = p * 1/2 + (1-p) * 0 - 2 lambda - kappa beta.
    model = frozen(["R[n,n]"], costs={"per_mechanism": 0.03, "per_sharpness": 0.004})
    envs = model.environments
    router = model.circuits[0].root
    a, b = router.children
    a.key[:], b.key[:] = envs.cues[0], envs.cues[1]
    a.theta[:] = envs.demands[0]
    model.step()
    p = math.exp(5.0) / (math.exp(5.0) + 1.0)
    assert model.fitness[0] == pytest.approx(p / 2 - 2 * 0.03 - 0.004 * 5.0)


def test_each_step_is_scored_in_the_environment_of_its_own_phase():
    # A mechanism on d_0 earns 1/2 - lambda while e0 is trained (steps 0-9) and
    # <d_0, d_1> - 1/2 - lambda = -1/2 - lambda from the first step of the e1 phase (step 10).
    model = frozen(["n"])
    model.circuits[0].root.theta[:] = model.environments.demands[0]
    fitness = []
    for _ in range(12):
        model.step()
        fitness.append(float(model.fitness[0]))
    assert fitness[:10] == pytest.approx([0.5 - 0.01] * 10)
    assert fitness[10:] == pytest.approx([-0.5 - 0.01] * 2)


def test_records_hold_the_hand_computed_rewards_and_per_phase_mean_fitness():
    # The same frozen mechanism on d_0, recorded every step: it earns 1/2 in e0 and -1/2 in
    # e1 (its reward, before the cost), so its fitness averages 1/2 - lambda over the e0
    # phase and -1/2 - lambda over the e1 phase.
    model = frozen(["n"], records={"every": 1})
    model.circuits[0].root.theta[:] = model.environments.demands[0]
    for _ in range(20):
        model.step()
    series, phases, _ = model.recorder.tables()
    per_phase = phases.groupby("phase").phase_mean_fitness.first()
    assert per_phase.tolist() == pytest.approx([0.5 - 0.01, -0.5 - 0.01])
    rewards = phases.groupby("environment").mechanism_rewards.first()
    assert rewards["e0"] == pytest.approx({"root": 0.5})
    assert rewards["e1"] == pytest.approx({"root": -0.5})
    assert len(series) == 20 and set(series.structure) == {"n"}
    assert series.mean_fitness.tolist() == pytest.approx([0.49] * 10 + [-0.51] * 10)


def test_selection_changes_log_ratios_by_strength_times_hand_computed_fitness():
    # Two frozen mechanisms on d_0 and d_1 in e0: fitness 1/2 - lambda and -1/2 - lambda,
    # so each step the log ratio of their shares grows by strength * 1.
    model = frozen(["n", "n"], selection={"strength": 2.0, "extinction_floor": 0.0})
    for i, leaf in enumerate(model.layout.theta):
        leaf[:] = model.environments.demands[i]
    ratios = []
    for _ in range(4):
        model.step()
        ratios.append(math.log(model.shares[0] / model.shares[1]))
    assert np.diff(ratios) == pytest.approx([2.0] * 3)


def test_selection_of_shares_too_small_to_multiply_is_done_in_log_space():
    # Shares of 1e-310 (below the smallest normal float) grow by factors that underflow
    # to a sum below it; the step is redone in log space and gives what the replicator
    # says: x_i proportional to x_i exp(s f_i), here (1, e^-1) / (1 + e^-1) at s = 1.
    shares = np.array([1e-310, 1e-310])
    found = replicator(shares, np.array([0.0, -1.0]), 1.0)
    assert found == pytest.approx([1 / (1 + math.exp(-1)), math.exp(-1) / (1 + math.exp(-1))])
    zero = replicator(np.array([0.0, 1e-320]), np.array([0.0, 0.0]), 1.0)
    assert zero.sum() == pytest.approx(1.0) and np.isfinite(zero).all()


# ------------------------------------------------------------------ extinction and shares


def test_circuits_below_the_extinction_floor_die_and_the_rest_renormalise():
    model = frozen(["n", "n", "g"], selection={"extinction_floor": 0.01, "strength": 0.0})
    model.shares = np.array([0.695, 0.3, 0.005])
    assert model.cull().tolist() == [True, True, False]
    assert [c.structure for c in model.circuits] == ["n", "n"]
    assert model.shares == pytest.approx([0.695 / 0.995, 0.3 / 0.995])


def test_a_circuit_exactly_at_the_floor_lives_and_the_largest_never_dies():
    model = frozen(["n", "n"], selection={"extinction_floor": 0.3, "strength": 0.0})
    model.shares = np.array([0.7, 0.3])
    assert model.cull() is None
    many = frozen(["n"] * 5, selection={"extinction_floor": 0.4, "strength": 0.0})
    many.shares = np.array([0.1, 0.3, 0.2, 0.2, 0.2])
    many.cull()
    assert len(many.circuits) == 1 and many.shares == pytest.approx([1.0])


def test_an_offspring_takes_the_stated_share_from_its_parent():
    scenario = make_scenario(2, population={"initial": ["n", "g"]},
                             variation={"rate": 1.0, "offspring_share": 0.02,
                                        "operators": {"mutate": 1.0}})
    model = CircuitsModel(scenario, seed=1)
    model.births[:] = 0
    model.births[0] = 1
    shares_before = None

    def spy(phase, t):  # the shares after selection, before the births
        nonlocal shares_before
        shares_before = model.shares.copy()
        return CircuitsModel.vary(model, phase, t)

    model.vary = spy
    model.step()
    parent = model.circuits[-1].parent_id
    i = [c.unique_id for c in model.circuits].index(parent)
    assert model.shares[-1] == pytest.approx(0.02)
    assert model.shares[i] == pytest.approx(shares_before[i] - 0.02)


def test_an_offspring_takes_at_most_half_of_a_small_parent():
    # offspring_share 0.4 from a lone circuit: the first child takes 0.4 (parent 0.6); the
    # second's parent has less than 0.8, so it gives half of what it holds: shares end as
    # (0.3, 0.4, 0.3) or (0.6, 0.2, 0.2), whichever parent the second birth drew.
    model = frozen(["n"], variation={"rate": 1.0, "offspring_share": 0.4,
                                     "operators": {"mutate": 1.0}})
    model.births[:] = 0
    model.births[0] = 2
    model.step()
    assert sorted(model.shares) in (pytest.approx([0.3, 0.3, 0.4]),
                                    pytest.approx([0.2, 0.2, 0.6]))


def test_survivors_is_a_boolean_mask_even_when_everyone_lives():
    from circuits_abm.engine.selection import survivors  # noqa: PLC0415

    assert survivors(np.array([0.5, 0.5]), 0.1).dtype == bool
    assert survivors(np.array([0.95, 0.05]), 0.1).tolist() == [True, False]


def test_the_time_series_is_stamped_with_the_step_and_what_was_trained():
    # Phases of 10 steps: the first row is written after step 10, in phase 0, training e0.
    model = frozen(["n"])
    for _ in range(10):
        model.step()
    row = model.recorder.series_rows[0]
    assert (row["step"], row["phase"], row["environment"]) == (10, 0, "e0")


# ------------------------------------------------------------------ learning


def test_consolidation_decays_a_generalist_geometrically():
    # eta = 0, consolidation c: theta_k = (1 - c)^k theta_0 exactly.
    model = frozen(["g"], circuits={"generalist": {"learning_rate": 0.0, "consolidation": 0.05}})
    theta0 = np.array([0.6, -0.4])
    model.circuits[0].root.theta[:] = theta0
    for _ in range(7):
        model.step()
    assert model.circuits[0].root.theta == pytest.approx(0.95**7 * theta0)


def test_learning_is_weighted_by_share_to_the_power_gamma():
    # Two naive mechanisms at 0, eta = 0.5, gamma = 0.5, no selection: after one step in e0
    # each is eta * share**0.5 * d_0.
    model = frozen(["n", "n"], circuits={"naive": {"learning_rate": 0.5}},
                   learning={"gamma": 0.5, "noise": 0.0})
    model.shares = np.array([0.64, 0.36])
    model.step()
    d0 = model.environments.demands[0]
    assert model.layout.theta[0] == pytest.approx(0.5 * 0.8 * d0)
    assert model.layout.theta[1] == pytest.approx(0.5 * 0.6 * d0)


def test_gradient_noise_is_scaled_by_the_routing_probability():
    # theta += eta * (p d + p * sigma * z - p theta): feed z by hand, theta = 0, eta = 1.
    model = frozen(["R[n,n]"], circuits={"naive": {"learning_rate": 1.0},
                                         "router": {"key_learning_rate": 0.0}},
                   learning={"noise": 0.2})
    envs = model.environments
    a, b = model.circuits[0].root.children
    a.key[:], b.key[:] = envs.cues[0], envs.cues[1]
    z = np.array([[1.0, -2.0], [0.5, 3.0]])
    model.select_and_learn(model.phases[0], z)
    p = math.exp(5.0) / (math.exp(5.0) + 1.0)
    assert a.theta == pytest.approx(p * envs.demands[0] + p * 0.2 * z[0])
    assert b.theta == pytest.approx((1 - p) * envs.demands[0] + (1 - p) * 0.2 * z[1])


def test_the_weighted_target_ignores_held_out_environments():
    scenario = make_scenario(3, environments=[{"name": "e0"}, {"name": "e1"},
                                              {"name": "e2", "held_out": True}])
    envs = build_environments(scenario)
    (target,) = fixed_targets(scenario, envs)  # the weighted optimiser's row
    assert target == pytest.approx((envs.demands[0] + envs.demands[1]) / 2)


def test_keys_move_by_the_policy_gradient_of_hand_computed_size():
    # R[n,n] in e0 with orthogonal cues, keys k_a = q_0, k_b = q_1, child a on d_0 (value
    # 1/2), b at 0 (value 0).  pi_a = p, V_r = p/2, so
    # dk_a = rate * beta * pi_a (V_a - V_r) q_0 = rate * beta * p (1/2 - p/2) q_0, then k_a is
    # renormalised (it stays q_0); dk_b = rate * beta * (1-p)(0 - p/2) q_0 tilts b away.
    model = frozen(["R[n,n]"], circuits={"router": {"key_learning_rate": 0.1}})
    envs = model.environments
    a, b = model.circuits[0].root.children
    a.key[:], b.key[:] = envs.cues[0], envs.cues[1]
    a.theta[:] = envs.demands[0]
    model.step()
    p = math.exp(5.0) / (math.exp(5.0) + 1.0)
    step_b = 0.1 * 5.0 * (1 - p) * (0.0 - p / 2)
    expected_b = envs.cues[1] + step_b * envs.cues[0]
    assert a.key == pytest.approx(envs.cues[0])
    assert b.key == pytest.approx(expected_b / np.linalg.norm(expected_b))


# ------------------------------------------------------------------ schedule and interventions


def test_a_cycle_starts_where_it_is_told():
    scenario = make_scenario(4, schedule={"order": "cycle", "start": "e2", "phase_length": 3})
    envs = build_environments(scenario)
    phases = build_schedule(scenario, envs, 15, np.random.default_rng(0))
    assert [p.label for p in phases] == ["e2", "e3", "e0", "e1", "e2"]
    assert [p.start for p in phases] == [0, 3, 6, 9, 12]


def test_an_intervention_applies_exactly_at_its_step():
    # A mechanism on d_0 in e0; from step 5 the sharing of e0 with e1 is 0.6, which rotates
    # nothing it is scored on (e0 stays e0): scoring e1 instead shows the change.  Train e1
    # only and put theta on d_0: fitness <d_0, d_1> - 1/2 - lambda is -0.51 before step 5
    # and 0.6 - 0.51 = 0.09 from step 5 on.
    model = frozen(["n"], schedule={"order": "sequence", "sequence": ["e1"]},
                   interventions=[{"step": 5, "edges": [["e0", "e1"]], "sharing": 0.6}])
    model.circuits[0].root.theta[:] = model.environments.demands[0]
    theta = model.circuits[0].root.theta.copy()
    fitness = []
    for _ in range(8):
        model.step()
        fitness.append(float(model.fitness[0]))
    demands = model.environments.demands
    assert fitness[:5] == pytest.approx([-0.51] * 5)
    # after the intervention theta is unchanged but d_1 moved: <theta, d_1> = its new overlap
    assert fitness[5:] == pytest.approx([float(theta @ demands[1]) - 0.5 - 0.01] * 3)
    assert float(demands[0] @ demands[1]) == pytest.approx(0.6)


def test_procrustes_alignment_undoes_a_known_rotation():
    rng = np.random.default_rng(3)
    old = rng.normal(size=(4, 4))
    angle = 0.7
    rotation = np.eye(4)
    rotation[:2, :2] = [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    new = old @ rotation
    assert not np.allclose(new, old)
    assert align(new, old) == pytest.approx(old)


# ------------------------------------------------------------------ variation operators


def context(seed=0, **variation):
    scenario = make_scenario(4, geometry={"sharing": 0.1, "distinguishability": 0.9},
                             variation=variation,
                             circuits={"router": {"max_sharpness": 8.0}})
    envs = build_environments(scenario)
    return Context(np.random.default_rng(seed), scenario, envs.cues[1], envs.cue_centre())


def test_mutate_moves_theta_by_gaussian_noise_of_the_stated_scale():
    theta = np.array([0.3, -0.2, 0.1, 0.0])
    changes = []
    for seed in range(400):
        parent = Mechanism("naive", theta.copy(), np.array([1.0, 0, 0, 0]))
        child = make_offspring(parent, "mutate", context(seed, mutation_scale=0.25))
        changes.append(child.theta - theta)
    changes = np.array(changes).ravel()  # 1600 draws of N(0, 0.25^2)
    assert abs(changes.mean()) < 4 * 0.25 / 40
    assert changes.std() == pytest.approx(0.25, rel=0.08)


def test_perturbed_sharpness_never_exceeds_the_cap():
    values = []
    for seed in range(200):
        parent = parse_structure("R[n,n]", 4, 4, 7.5, np.random.default_rng(seed))
        child = make_offspring(parent, "perturb_sharpness", context(seed, sharpness_scale=1.0))
        values.append(child.sharpness)
    assert max(values) == pytest.approx(8.0)  # capped at max_sharpness, and reached
    assert min(values) < 7.5


def test_removing_a_child_that_leaves_one_hands_the_router_key_to_the_survivor():
    parent = parse_structure("R[n,n]", 4, 4, 5.0, np.random.default_rng(0))
    key = parent.key.copy()
    child = make_offspring(parent, "remove_child", context(0))
    assert isinstance(child, Mechanism)
    assert child.key == pytest.approx(key)


def test_split_keys_the_current_context_against_the_usual_one():
    # Hand-built context: current cue (1, 1, 0, 0), mean cue (0, 1, 0, 0).  The two copies
    # get the unit keys +-(1, 0, 0, 0), and the new router keeps the parent's key.
    ctx = context(0, operators={"split": 1.0})
    ctx = Context(ctx.rng, ctx.scenario, np.array([1.0, 1.0, 0, 0]), np.array([0, 1.0, 0, 0]))
    parent = Mechanism("naive", np.array([0.3, 0.1, 0, 0]), np.array([0, 0, 1.0, 0]))
    child = make_offspring(parent, "split", ctx)
    assert isinstance(child, Router) and len(child.children) == 2
    assert child.children[0].key == pytest.approx([1, 0, 0, 0])
    assert child.children[1].key == pytest.approx([-1, 0, 0, 0])
    assert child.key == pytest.approx([0, 0, 1, 0])
    assert child.sharpness == ctx.scenario.circuits.router.initial_sharpness
    for copy in child.children:
        assert copy.theta == pytest.approx(parent.theta)


def test_a_duplicated_child_gets_its_twin_key_nudged_by_the_mutation_scale():
    # The twin's key is the copied child's key plus N(0, s^2) noise per coordinate, back to
    # unit length: for small s, 1 - cos(angle) averages (d - 1) s^2 / 2 in d dimensions
    # (the noise across the key, squared and halved); a fresh random key would be far off.
    scale, dim, gaps = 0.05, 4, []
    for seed in range(300):
        parent = parse_structure("R[n,n]", 4, dim, 5.0, np.random.default_rng(seed))
        child = make_offspring(parent, "duplicate_child", context(seed, mutation_scale=scale))
        twin = child.children[2].key
        assert np.linalg.norm(twin) == pytest.approx(1.0)
        gaps.append(1 - max(twin @ c.key for c in parent.children))
    assert np.mean(gaps) == pytest.approx((dim - 1) * scale**2 / 2, rel=0.2)


def test_every_operator_changes_something():
    for operator in ("split", "add_child", "duplicate_child", "remove_child", "mutate",
                     "collapse", "switch_rule", "perturb_sharpness"):
        parent = parse_structure("R[n,R[g,w]]", 4, 4, 5.0, np.random.default_rng(1))
        child = make_offspring(parent, operator, context(1))
        assert _signature(child) != _signature(parent), operator


def _signature(node):
    if isinstance(node, Mechanism):
        return (node.rule, tuple(np.round(node.theta, 12)), tuple(np.round(node.key, 12)))
    assert isinstance(node, Router)
    return (round(node.sharpness, 12), tuple(np.round(node.key, 12)),
            tuple(_signature(c) for c in node.children))


def test_removing_a_child_of_a_nested_router_keeps_the_rest_of_the_circuit():
    # R[R[n,n],g,g]: dropping a child of the inner router collapses it into its survivor
    # in place (R[n,g,g]); dropping one of the outer router's three children leaves two.
    # The circuit is never cut down to the inner router's survivor alone.
    outcomes = set()
    for seed in range(20):
        parent = parse_structure("R[R[n,n],g,g]", 4, 4, 5.0, np.random.default_rng(seed))
        outcomes.add(structure_string(make_offspring(parent, "remove_child", context(seed))))
    assert outcomes == {"R[n,g,g]", "R[R[n,n],g]", "R[g,g]"}


def test_a_duplicated_child_is_nudged_in_a_random_direction():
    # The nudge is N(0, s^2) noise in every coordinate, so the direction it turns the key
    # (the twin's part across the copied key) is uniform on the 3-sphere across the key in
    # four dimensions, where |cos| between two independent directions is uniform on [0, 1]:
    # mean 1/2.  A nudge along one fixed direction would give |cos| = 1.
    directions = {0: [], 1: []}
    for seed in range(300):
        parent = parse_structure("R[n,n]", 4, 4, 5.0, np.random.default_rng(0))
        child = make_offspring(parent, "duplicate_child", context(seed, mutation_scale=0.05))
        twin = child.children[2].key
        source = max((0, 1), key=lambda j: twin @ parent.children[j].key)
        key = parent.children[source].key
        across = twin - (twin @ key) * key
        directions[source].append(across / np.linalg.norm(across))
    cosines = [abs(a @ b) for group in directions.values()
               for a, b in zip(group, group[1:], strict=False)]
    assert np.mean(cosines) == pytest.approx(0.5, abs=0.06)


def test_offspring_copy_their_parents_quarantine_module_into_fresh_memory():
    parent = Mechanism("naive", np.array([0.3, 0.1, 0, 0]), np.array([1.0, 0, 0, 0]),
                       np.array([0.0, 0.2, -0.1, 0]))
    child = make_offspring(parent, "switch_rule", context(0))
    assert child.quarantine == pytest.approx([0.0, 0.2, -0.1, 0])
    child.quarantine[1] = 9.0
    assert parent.quarantine[1] == 0.2


def test_a_birth_with_no_operator_that_applies_is_skipped():
    # Only remove_child may fire, and it needs a router: births happen (rate 5 per step) but
    # no offspring can be made of a lone mechanism, so the population never changes.
    model = frozen(["n"], variation={"rate": 5.0, "operators": {"remove_child": 1.0}})
    for _ in range(5):
        model.step()
    assert model.births[:5].sum() > 0
    assert len(model.circuits) == 1 and model.shares == pytest.approx([1.0])


def test_the_lineage_table_counts_the_variants_of_each_lineage():
    # Two circuits of the naive lineage (shares 0.35 and 0.2) and one generalist (0.45): the
    # naive lineage leads with 0.55 over 2 variants, represented by its larger circuit; the
    # phase records carry the same count for the dominant lineage.
    model = frozen(["n", "g"])
    model.step()
    first = model.circuits[0]
    model.circuits.append(Circuit(model, copy_tree(first.root), lineage=first.lineage))
    model.shares = np.array([0.35, 0.45, 0.2])
    model.fitness = np.zeros(3)
    model.recompile()
    table = lineage_table(model)
    assert [(e["lineage"], e["variants"], e["representative"]) for e in table] == [
        (first.lineage, 2, 0), (model.circuits[1].lineage, 1, 1)]
    assert table[0]["share"] == pytest.approx(0.55)
    model.recorder.record_phase(model.current_phase)
    assert model.recorder.phase_rows[-1]["dominant_variants"] == 2
