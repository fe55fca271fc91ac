"""Phases follow the requested order; walks visit environments at their stationary rates."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_scenario

from circuits_abm.engine.environments import build_environments
from circuits_abm.engine.schedule import build_schedule, stationary_distribution


def schedule_of(scenario, steps=100, seed=0):
    envs = build_environments(scenario)
    return envs, build_schedule(scenario, envs, steps, np.random.default_rng(seed))


def test_cycle_visits_in_order_with_fixed_lengths():
    _, phases = schedule_of(make_scenario(schedule={"phase_length": 10}), steps=95)
    assert [p.label for p in phases[:5]] == ["e0", "e1", "e2", "e3", "e0"]
    assert [p.length for p in phases[:-1]] == [10] * 9 and phases[-1].length == 5
    assert sum(p.length for p in phases) == 95


def test_sequence_plays_once_then_holds_its_last_phase():
    scenario = make_scenario(
        schedule={"order": "sequence", "sequence": ["e2", "e0"], "phase_length": 5}
    )
    _, phases = schedule_of(scenario, steps=30)
    assert [p.label for p in phases] == ["e2", "e0", "e0", "e0", "e0", "e0"]


def test_held_out_environments_are_never_trained():
    scenario = make_scenario(
        environments=[{"name": "a"}, {"name": "b"}, {"name": "probe", "held_out": True}],
        schedule={"order": "uniform"},
    )
    envs, phases = schedule_of(scenario, steps=2000)
    probe = envs.index("probe")
    assert all(p.weights[probe] == 0 for p in phases)


def test_mixture_phase_weights_are_normalised():
    scenario = make_scenario(
        schedule={"sequence": ["mix", "e0"], "mixtures": {"mix": {"e1": 1.0, "e3": 3.0}}}
    )
    envs, phases = schedule_of(scenario)
    np.testing.assert_allclose(phases[0].weights, [0, 0.25, 0, 0.75])
    assert list(phases[0].active) == [1, 3]


def test_geometric_phase_lengths_have_the_requested_mean():
    scenario = make_scenario(schedule={"phase_length": 8, "phase_length_distribution": "geometric"})
    _, phases = schedule_of(scenario, steps=80_000)
    lengths = np.array([p.length for p in phases[:-1]])
    assert lengths.min() >= 1 and len(set(lengths)) > 5
    assert lengths.mean() == pytest.approx(8, rel=0.05)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_walk_visit_frequencies_converge_to_degree_over_twice_edges(seed):
    # A star plus one extra edge: degrees 3, 2, 2, 1 over |E| = 4.
    edges = [("e0", "e1"), ("e0", "e2"), ("e0", "e3"), ("e1", "e2")]
    scenario = make_scenario(
        schedule={"order": "walk", "phase_length": 1},
        edges=[{"source": a, "target": b} for a, b in edges],
    )
    envs, phases = schedule_of(scenario, steps=60_000, seed=seed)
    visits = np.bincount([envs.index(p.label) for p in phases], minlength=4) / len(phases)
    expected = stationary_distribution(envs)
    assert expected == pytest.approx({"e0": 3 / 8, "e1": 2 / 8, "e2": 2 / 8, "e3": 1 / 8})
    np.testing.assert_allclose(visits, [expected[n] for n in envs.names], atol=0.01)


def test_walk_only_moves_along_edges():
    edges = [("e0", "e1"), ("e1", "e2"), ("e2", "e3")]
    scenario = make_scenario(
        schedule={"order": "walk", "start": "e3"},
        edges=[{"source": a, "target": b, "weight": 2.0} for a, b in edges],
    )
    envs, phases = schedule_of(scenario, steps=2000)
    assert phases[0].label == "e3"
    for prev, nxt in zip(phases, phases[1:], strict=False):
        assert envs.graph.has_edge(prev.label, nxt.label)


def test_a_walk_never_visits_a_held_out_environment():
    # A path e0 - e1 - e2 where e2 is held out: the walk stays on e0 - e1, each visited
    # half the time, as a walk on that one edge must.
    scenario = make_scenario(3, schedule={"order": "walk"},
                             edges=[{"source": "e0", "target": "e1"},
                                    {"source": "e1", "target": "e2"}])
    data = scenario.model_dump(mode="json")
    data["environments"][2]["held_out"] = True
    from circuits_abm.engine.loading import scenario_from_dict  # noqa: PLC0415

    envs = build_environments(scenario_from_dict(data))
    assert stationary_distribution(envs) == pytest.approx({"e0": 0.5, "e1": 0.5})
