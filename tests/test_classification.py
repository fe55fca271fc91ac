"""The classifier on hand-built trajectories: each documented case, with noise, over seeds.

Trajectories are phases tables written here by hand, so each test states exactly what a
regime looks like from the outside and checks the label the classifier reads from it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from circuits_abm.analysis.classification import (
    CHURN,
    GENERALIST,
    MIN_WINDOW_PHASES,
    Node,
    _subtree_reward,
    classify,
    end_window,
    lineage_turnover,
    partition,
    phase_views,
    recency_bias,
    routing_determinism,
    routing_information,
)

FOUR = ["a1", "a2", "b1", "b2"]
SEEDS = (0, 1, 2)


def trajectory(routing, rewards, n_phases=40, envs=FOUR, noise=0.0, seed=0, structure="X"):
    """A phases table: ``routing(k, trained, env)`` and ``rewards(k, trained, env)`` give the
    dominant circuit's per-mechanism tables at the end of phase ``k`` (cycle schedule)."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_phases):
        trained = envs[k % len(envs)]
        for env in envs:
            route = routing(k, trained, env)
            reward = {p: r + noise * rng.normal() for p, r in rewards(k, trained, env).items()}
            value = sum(route[p] * reward[p] for p in route)
            rows.append(
                {
                    "phase": k,
                    "trained": trained,
                    "training_weight": float(env == trained),
                    "environment": env,
                    "held_out": False,
                    "population_reward": value,
                    "dominant_reward": value,
                    "dominant_lineage": 1,
                    "dominant_share": 0.9,
                    "dominant_structure": structure if isinstance(structure, str) else structure(k),
                    "structure_share": 0.9,
                    "routing": route,
                    "mechanism_rewards": reward,
                }
            )
    return pd.DataFrame(rows)


def one_mechanism(k, trained, env):
    return {"root": 1.0}


def router(groups, soft=0.0):
    """Route each environment to the child whose group holds it (``soft`` leaks elsewhere)."""

    def route(k, trained, env):
        paths = list(groups)
        probs = {p: soft / (len(paths) - 1) for p in paths}
        probs[next(p for p, members in groups.items() if env in members)] = 1.0 - soft
        return probs

    return route


def last_trained_in(group, k, envs=FOUR):
    """The environment of ``group`` trained most recently up to phase k (cycle schedule)."""
    for j in range(k, -1, -1):
        if envs[j % len(envs)] in group:
            return envs[j % len(envs)]
    return group[0]


@pytest.mark.parametrize("seed", SEEDS)
def test_a_stable_single_mechanism_is_an_ecological_generalist(seed):
    result = classify(
        trajectory(one_mechanism, lambda k, t, e: {"root": 0.45}, noise=0.02, seed=seed)
    )
    assert result.regime == "ecological_generalist"
    assert result.structure == "ecological_generalist{a1,a2,b1,b2}"
    assert abs(result.to_dict()["tree"]["metrics"]["recency_bias"]) < GENERALIST
    assert result.tree.confidence > 0.5


@pytest.mark.parametrize("seed", SEEDS)
def test_a_mechanism_good_only_on_what_was_trained_last_is_strategy_churn(seed):
    rewards = lambda k, t, e: {"root": 0.5 if e == t else -0.4}  # noqa: E731
    result = classify(trajectory(one_mechanism, rewards, noise=0.05, seed=seed))
    assert result.regime == "strategy_churn"
    assert result.tree.metrics["recency_bias"] > CHURN
    assert result.tree.metrics["switch_drop"] > 0.5


@pytest.mark.parametrize("seed", SEEDS)
def test_an_informative_router_is_a_conditional_policy_of_specialists(seed):
    groups = {"0": ["a1"], "1": ["a2"], "2": ["b1"], "3": ["b2"]}
    rewards = lambda k, t, e: {p: 0.48 if e in groups[p] else -0.4 for p in groups}  # noqa: E731
    result = classify(trajectory(router(groups, soft=0.02), rewards, noise=0.02, seed=seed))
    assert result.structure == (
        "conditional_policy[specialist{a1}, specialist{a2}, specialist{b1}, specialist{b2}]"
    )
    assert result.tree.metrics["routing_information"] > 0.9


@pytest.mark.parametrize("seed", SEEDS)
def test_a_router_over_two_clusters_whose_children_churn(seed):
    groups = {"0": ["a1", "a2"], "1": ["b1", "b2"]}

    def rewards(k, trained, env):
        return {
            p: (0.5 if env == last_trained_in(members, k) else -0.3) if env in members else -0.4
            for p, members in groups.items()
        }

    result = classify(trajectory(router(groups), rewards, noise=0.03, seed=seed))
    assert result.structure == "conditional_policy[strategy_churn{a1,a2}, strategy_churn{b1,b2}]"


@pytest.mark.parametrize("seed", SEEDS)
def test_a_router_over_two_clusters_of_generalists(seed):
    groups = {"0": ["a1", "a2"], "1": ["b1", "b2"]}
    rewards = lambda k, t, e: {p: 0.45 if e in m else -0.2 for p, m in groups.items()}  # noqa: E731
    result = classify(trajectory(router(groups), rewards, noise=0.02, seed=seed))
    assert result.structure == (
        "conditional_policy[ecological_generalist{a1,a2}, ecological_generalist{b1,b2}]"
    )


def test_a_nested_router_is_read_through_a_pass_through_root():
    # Root sends everything to child 1, which routes informatively: the split is child 1's.
    def route(k, trained, env):
        return {"0": 0.0, "1.0": float(env in ("a1", "a2")), "1.1": float(env in ("b1", "b2"))}

    rewards = lambda k, t, e: {"0": 0.0, "1.0": 0.45, "1.1": 0.45}  # noqa: E731
    result = classify(trajectory(route, rewards))
    assert result.structure == (
        "conditional_policy[ecological_generalist{a1,a2}, ecological_generalist{b1,b2}]"
    )
    assert result.tree.path == "1"


def test_an_uneven_but_certain_split_counts_as_informative():
    groups = {"0": ["a1"], "1": ["a2", "b1", "b2"]}
    rewards = lambda k, t, e: {"0": 0.48, "1": 0.4}  # noqa: E731
    result = classify(trajectory(router(groups), rewards))
    assert result.structure == "conditional_policy[specialist{a1}, ecological_generalist{a2,b1,b2}]"
    table = np.array([[1, 0], [0, 1], [0, 1], [0, 1]], dtype=float)
    assert routing_determinism(table) == pytest.approx(1.0)
    assert routing_information([{"0": 1.0}, {"1": 1.0}, {"1": 1.0}, {"1": 1.0}]) < 0.5


def test_an_uninformative_router_acts_as_one_mechanism():
    route = lambda k, t, e: {"0": 0.5, "1": 0.5}  # noqa: E731
    result = classify(trajectory(route, lambda k, t, e: {"0": 0.45, "1": 0.44}))
    assert result.regime == "ecological_generalist"


def test_a_middling_recency_bias_is_undetermined_not_forced():
    middling = (GENERALIST + CHURN) / 2
    rewards = lambda k, t, e: {"root": 0.3 + (middling if e == t else 0.0)}  # noqa: E731
    result = classify(trajectory(one_mechanism, rewards))
    assert result.regime == "undetermined"
    assert result.tree.confidence == 0.0 and result.tree.path == "root"
    # unlabelled, but it still reports what it read (the trained env is 1 of 4)
    assert result.tree.metrics["recency_bias"] == pytest.approx(middling)
    assert result.tree.metrics["mean_reward"] == pytest.approx(0.3 + middling / 4)


def test_recency_bias_skips_phases_that_train_every_environment():
    """A phase that trains every environment (a mixture) has no untrained one to compare
    with, so only the ordinary phases count: here (0.5 - 0.2) and (0.4 - 0.3), mean 0.2."""
    rows = [(0, "a", 1.0, 0.5), (0, "b", 0.0, 0.2),
            (1, "a", 0.5, 0.9), (1, "b", 0.5, 0.1),  # the mixture
            (2, "a", 0.0, 0.3), (2, "b", 1.0, 0.4)]
    phases = pd.DataFrame(rows, columns=["phase", "env", "training_weight", "dominant_reward"])
    phases["held_out"] = False
    assert recency_bias(phases) == pytest.approx(0.2)


def test_router_confidence_is_stability_times_how_far_determinism_clears_the_threshold():
    # Each group goes to its child with probability 0.95: H(child) = ln 2 and
    # H(child | env) = h(0.95), so determinism = 1 - h(0.95) / ln 2 = 0.7136; the structure
    # holds in every phase, so confidence = (0.7136 - 0.5) / (1 - 0.5).
    groups = {"0": ["a1", "a2"], "1": ["b1", "b2"]}
    rewards = lambda k, t, e: {"0": 0.45, "1": 0.45}  # noqa: E731
    result = classify(trajectory(router(groups, soft=0.05), rewards))
    h = -(0.95 * np.log(0.95) + 0.05 * np.log(0.05))
    determinism = 1 - h / np.log(2)
    assert result.regime == "conditional_policy"
    assert result.tree.metrics["routing_determinism"] == pytest.approx(determinism)
    assert result.tree.confidence == pytest.approx((determinism - 0.5) / 0.5)
    stored = result.to_dict()  # what summary.json keeps
    assert stored["tree"]["confidence"] == round(result.tree.confidence, 4)
    assert stored["dominant_structure"] == result.dominant_structure == "X"


def test_routing_determinism_normalises_rows_and_ignores_unused_children():
    # A third child no environment reaches changes nothing; counts read as frequencies.
    assert routing_determinism(np.array([[1.0, 0, 0], [0, 1.0, 0]])) == pytest.approx(1.0)
    h = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    expected = 1 - h / np.log(2)
    assert routing_determinism(np.array([[3.0, 1.0], [1.0, 3.0]])) == pytest.approx(expected)


def test_two_environments_routed_apart_are_two_specialists():
    result = classify(trajectory(router({"0": ["a"], "1": ["b"]}),
                                 lambda k, t, e: {"0": 0.45, "1": 0.45}, envs=["a", "b"]))
    assert result.structure == "conditional_policy[specialist{a}, specialist{b}]"


def test_routing_information_groups_mechanisms_by_the_first_steps_of_their_paths():
    # a goes to leaf 0.0, b to leaf 0.1: through the whole tree routing tells them apart,
    # but at depth 1 both go into subtree 0, which carries no information.
    routing = [{"0.0": 1.0, "0.1": 0.0, "1": 0.0}, {"0.0": 0.0, "0.1": 1.0, "1": 0.0}]
    assert routing_information(routing) == pytest.approx(1.0)
    assert routing_information(routing, depth=1) == pytest.approx(0.0)


def test_the_canonical_form_sorts_children_and_merges_nested_conditional_policies():
    def node(label, envs, children=()):
        n = Node(label, "root", list(envs), 1.0, {})
        n.children = list(children)
        return n

    leaf = node("specialist", "c")
    assert leaf.canonical() == "specialist{c}"
    inner = node("conditional_policy", "ba", [node("specialist", "b"), node("specialist", "a")])
    outer = node("conditional_policy", "cba", [leaf, inner])
    assert outer.canonical() == (
        "conditional_policy[specialist{a}, specialist{b}, specialist{c}]")


def test_run_metrics_report_how_much_of_the_population_the_structure_holds():
    result = classify(trajectory(one_mechanism, lambda k, t, e: {"root": 0.45}))
    assert result.tree.metrics["structure_share"] == pytest.approx(0.9)  # trajectory's share
    stored = result.to_dict()["tree"]["metrics"]
    assert stored["mean_reward"] == round(result.tree.metrics["mean_reward"], 4) == 0.45


def test_a_structure_that_keeps_changing_is_undetermined():
    shapes = [
        {"0": ["a1"], "1": ["a2", "b1", "b2"]},
        {"0": ["a1", "a2"], "1": ["b1", "b2"]},
        {"0": ["a1", "b1"], "1": ["a2", "b2"]},
    ]

    def route(k, trained, env):
        return router(shapes[k % 3])(k, trained, env)

    result = classify(trajectory(route, lambda k, t, e: {"0": 0.45, "1": 0.45}))
    assert result.regime == "undetermined"
    assert result.tree.metrics["stability"] < 0.5


def test_the_classification_reads_only_the_end_window():
    # Churn for the first half, a generalist afterwards: the end decides.
    rewards = lambda k, t, e: {"root": (0.5 if e == t else -0.4) if k < 20 else 0.45}  # noqa: E731
    assert classify(trajectory(one_mechanism, rewards)).regime == "ecological_generalist"


def test_churn_confidence_pays_for_an_unstable_structure():
    # Window: the last 10 of 40 phases (a quarter). In phases k % 5 in {0, 1} the dominant
    # circuit is one re-tuned mechanism (reward 0.5 on what was trained, -0.4 elsewhere:
    # recency bias 0.9, margin past CHURN clipped to 1); in the others it is a router with a
    # different split each time.  The single mechanism is the modal structure in 4 of the
    # 10 window phases (30, 31, 35, 36), so the label is churn with confidence 0.4 x 1.
    splits = {2: {"0": ["a1"], "1": ["a2", "b1", "b2"]}, 3: {"0": ["a1", "a2"], "1": ["b1", "b2"]},
              4: {"0": ["a1", "b1"], "1": ["a2", "b2"]}}

    def route(k, trained, env):
        if k % 5 < 2:
            return one_mechanism(k, trained, env)
        return router(splits[k % 5])(k, trained, env)

    def rewards(k, trained, env):
        return {p: (0.5 if env == trained else -0.4) for p in route(k, trained, env)}

    result = classify(trajectory(route, rewards))
    assert result.regime == "strategy_churn"
    assert result.tree.metrics["stability"] == pytest.approx(0.4)
    assert result.tree.confidence == pytest.approx(0.4)


def test_churn_confidence_is_stability_times_margin_past_the_threshold():
    # A stable mechanism with recency bias 0.45: margin (0.45 - 0.3) / 0.3 = 0.5.
    rewards = lambda k, t, e: {"root": 0.45 if e == t else 0.0}  # noqa: E731
    result = classify(trajectory(one_mechanism, rewards))
    assert result.regime == "strategy_churn"
    assert result.tree.confidence == pytest.approx(1.0 * (0.45 - CHURN) / CHURN)


# ------------------------------------------------------------------ metrics counted by hand


def test_lineage_turnover_is_the_share_of_phase_ends_where_the_dominant_lineage_changed():
    table = trajectory(one_mechanism, lambda k, t, e: {"root": 0.3}, n_phases=5)
    lineages = {0: 1, 1: 1, 2: 2, 3: 2, 4: 3}  # changes at 1->2 and 3->4: 2 of 4
    views = phase_views(table.assign(dominant_lineage=table.phase.map(lineages)))
    assert lineage_turnover(views) == 0.5
    assert lineage_turnover(views[:2]) == 0.0
    assert lineage_turnover(views[1:3]) == 1.0
    assert lineage_turnover(views[:1]) == 0.0  # nothing to compare


def test_phase_views_come_in_phase_order_whatever_the_row_order():
    table = trajectory(one_mechanism, lambda k, t, e: {"root": 0.3}, n_phases=12)
    shuffled = table.sample(frac=1.0, random_state=3)
    assert [v.phase for v in phase_views(shuffled)] == list(range(12))


def test_a_router_whose_children_win_different_envs_without_information_is_one_unit():
    # Each env leans 55/45 to a different child: the argmax differs, but the routing
    # explains little of which child serves.  Determinism = I(env; child) / H(child), with
    # I = H(child) - mean over envs of H(child | env), both written out here.
    lean = {"a1": {"0": 0.55, "1": 0.45}, "a2": {"0": 0.45, "1": 0.55},
            "b1": {"0": 0.45, "1": 0.55}, "b2": {"0": 0.45, "1": 0.55}}
    table = trajectory(lambda k, t, e: lean[e], lambda k, t, e: {"0": 0.4, "1": 0.4},
                       n_phases=1)
    split = partition(phase_views(table)[0], tuple(FOUR))

    def entropy(p):
        return -sum(x * np.log(x) for x in p)

    marginal = (0.55 + 3 * 0.45) / 4
    h_child = entropy([marginal, 1 - marginal])
    expected = (h_child - entropy([0.55, 0.45])) / h_child
    assert split.parts == () and split.path == "root"
    assert split.information == pytest.approx(expected)
    assert expected < 0.5


def test_an_unreached_subtree_counts_its_leaves_as_equally_likely():
    # Nothing is routed into child "1" for env a1: its reward there is the plain mean of
    # its two leaves, 0.5 * 0.2 + 0.5 * 0.6.
    route = {"0": 1.0, "1.0": 0.0, "1.1": 0.0}
    rewards = {"0": 0.9, "1.0": 0.2, "1.1": 0.6}
    table = trajectory(lambda k, t, e: route, lambda k, t, e: rewards, n_phases=1)
    view = phase_views(table)[0]
    assert _subtree_reward(view, "1", "a1") == pytest.approx(0.4)
    assert _subtree_reward(view, "0", "a1") == pytest.approx(0.9)


def test_a_subtree_reached_part_of_the_time_is_read_given_that_it_is_reached():
    # Child "1" gets half of a1's traffic, split 1:3 between its leaves: given it is
    # reached, its reward there is 0.25 * 0.2 + 0.75 * 0.6.
    route = {"0": 0.5, "1.0": 0.125, "1.1": 0.375}
    rewards = {"0": 0.9, "1.0": 0.2, "1.1": 0.6}
    view = phase_views(trajectory(lambda k, t, e: route, lambda k, t, e: rewards,
                                  n_phases=1))[0]
    assert _subtree_reward(view, "1", "a1") == pytest.approx(0.5)


def test_the_classification_names_the_last_phase_of_the_window_and_reads_its_paths():
    # 40 phases: the end window is the last 10 (30-39).  The router's children swap paths
    # in the last phase without changing the partition, so every phase matches; the tree's
    # paths, the dominant structure and the window's end come from phase 39.
    def route(k, trained, env):
        first, second = ("1", "0") if k >= 39 else ("0", "1")
        return {first: 1.0, second: 0.0} if env.startswith("a") else {first: 0.0, second: 1.0}

    def rewards(k, trained, env):
        return {"0": 0.45, "1": 0.45}

    lineages = {k: 1 if k < 35 else 2 for k in range(40)}  # one change inside the window
    table = trajectory(route, rewards, structure=lambda k: f"R[n,n] at {k}")
    result = classify(table.assign(dominant_lineage=table.phase.map(lineages)))
    assert result.window == (30, 39)
    assert result.dominant_structure == "R[n,n] at 39"
    serving_a = next(c for c in result.tree.children if "a1" in c.environments)
    assert serving_a.path == "1"
    assert result.tree.metrics["lineage_turnover"] == pytest.approx(1 / 9)


# ------------------------------------------------------------------ window and evidence, by hand


def test_the_end_window_is_the_last_quarter_and_at_least_eight_phases():
    import pandas as pd

    for n, first in ((40, 30), (20, 12), (8, 0), (100, 75)):
        phases = pd.DataFrame({"phase": np.repeat(np.arange(n), 2)})
        kept = sorted(set(end_window(phases).phase))
        assert kept == list(range(first, n)), n
    assert MIN_WINDOW_PHASES == 8


def test_a_node_needs_four_training_phases_in_the_window_to_be_labelled():
    # A router sends a and b to child 0 and c to child 1, in a 40-phase schedule that mostly
    # trains c.  The window is the last 10 phases.  Child 0's recency is read on the window
    # phases that train a or b: with 3 of them it is undetermined, with 4 it is labelled.
    def run(trained_ab):
        order = ["c"] * 40
        for k in trained_ab:
            order[k] = "a" if k % 2 else "b"

        def routing(k, trained, env):
            return {"0": 1.0, "1": 0.0} if env in ("a", "b") else {"0": 0.0, "1": 1.0}

        def rewards(k, trained, env):
            return {"0": 0.5 if env == order[k] else -0.4, "1": 0.5}

        table = trajectory(routing, rewards, envs=["a", "b", "c"])
        table["trained"] = [order[k] for k in table.phase]
        table["training_weight"] = (table.environment == table.trained).astype(float)
        return classify(table)

    short = run([31, 34, 37])
    assert short.structure == "conditional_policy[undetermined{a,b}, specialist{c}]"
    assert run([31, 34, 37, 39]).structure == (
        "conditional_policy[strategy_churn{a,b}, specialist{c}]")
    # Too little evidence to label, but the node still reports what it read: a recency bias
    # of 0.5 - (-0.4) on the 3 phases that trained a or b, and a mean reward over the 10
    # window phases of (3 * (0.5 - 0.4) / 2 + 7 * (-0.4)) / 10.
    unlabelled = short.tree.children[0]
    assert unlabelled.metrics["recency_bias"] == pytest.approx(0.9)
    assert unlabelled.metrics["mean_reward"] == pytest.approx((3 * 0.05 - 7 * 0.4) / 10)
