"""Bad scenarios fail before running, naming the file, the field and what is allowed."""

from __future__ import annotations

import pytest
from helpers import scenario_dict

from circuits_abm.engine.circuits import parse_tree
from circuits_abm.engine.loading import load_scenario, scenario_from_dict
from circuits_abm.engine.scenario import ScenarioError


def problems_of(data: dict) -> str:
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(data, source="my.toml")
    return str(info.value)


def test_unknown_field_names_file_field_and_allowed_fields():
    message = problems_of(scenario_dict(schedule={"phase_lenght": 5}))
    assert "my.toml" in message
    assert "schedule.phase_lenght" in message
    assert "phase_length" in message and "order" in message  # the allowed fields


def test_unknown_top_level_field_lists_sections():
    message = problems_of(scenario_dict(selction={"strength": 1}))
    assert "`selction`" in message and "selection" in message


def test_out_of_range_value_says_the_bound():
    message = problems_of(scenario_dict(geometry={"distinguishability": 1.5}))
    assert "geometry.distinguishability" in message
    assert "less than or equal to 1" in message


@pytest.mark.parametrize(("overrides", "field", "got"), [
    ({"schedule": {"phase_length": True}}, "schedule.phase_length", "True"),
    ({"steps": True}, "steps", "True"),
    ({"geometry": {"sharing": "0.3"}}, "geometry.sharing", "'0.3'"),
    ({"learning": {"gamma": False}}, "learning.gamma", "False"),
    ({"selection": {"strength": "5"}}, "selection.strength", "'5'"),
])
def test_a_bool_or_a_numeric_string_is_not_a_number(overrides, field, got):
    message = problems_of(scenario_dict(**overrides))
    assert f"`{field}`" in message and f"(got {got})" in message


def test_an_integer_is_still_a_valid_float_and_edges_may_be_lists():
    spec = scenario_from_dict(scenario_dict(geometry={"sharing": 0}, interventions=[
        {"step": 5, "edges": [["e0", "e1"]], "sharing": 0.2}]))
    assert spec.geometry.sharing == 0.0 and spec.interventions[0].edges == [("e0", "e1")]


def test_two_edges_may_not_give_one_pair_two_sharings():
    message = problems_of(scenario_dict(edges=[
        {"source": "e0", "target": "e1", "sharing": 0.9},
        {"source": "e1", "target": "e0", "sharing": -0.9}]))
    assert "`edges.1.sharing`" in message and "edges.0" in message
    # The same pair twice with different walk weights (and no conflicting geometry) is fine.
    scenario_from_dict(scenario_dict(edges=[
        {"source": "e0", "target": "e1", "weight": 2.0, "sharing": 0.3},
        {"source": "e1", "target": "e0", "weight": 1.0}]))


def test_an_empty_sequence_is_an_error():
    message = problems_of(scenario_dict(schedule={"sequence": []}))
    assert "`schedule.sequence`: empty" in message


def test_opposite_interventions_at_one_step_are_an_error():
    message = problems_of(scenario_dict(interventions=[
        {"step": 50, "edges": [["e0", "e1"]], "sharing": 0.8},
        {"step": 50, "nodes": ["e1"], "sharing": 0.1}]))
    assert "`interventions.1.sharing`: step 50 sets the pair e0-e1 to 0.1 and to 0.8" in message
    message = problems_of(scenario_dict(motivations=[{"name": "m"}], interventions=[
        {"step": 50, "rule": "block"}, {"step": 50, "rule": "route"}]))
    assert "step 50 switches the rule to block and route" in message
    # The same change twice, or changes at different steps, are fine.
    scenario_from_dict(scenario_dict(interventions=[
        {"step": 50, "edges": [["e0", "e1"]], "sharing": 0.8},
        {"step": 50, "nodes": ["e1"], "sharing": 0.8},
        {"step": 60, "nodes": ["e1"], "sharing": 0.1}]))


def test_bad_choice_lists_allowed_values():
    message = problems_of(scenario_dict(schedule={"order": "zigzag"}))
    assert "schedule.order" in message
    for allowed in ("cycle", "walk", "sequence", "uniform"):
        assert allowed in message


def test_unknown_environment_in_sequence_lists_known_names():
    message = problems_of(scenario_dict(schedule={"order": "sequence", "sequence": ["e0", "nope"]}))
    assert "schedule.sequence.1" in message and "'nope'" in message
    assert "e0, e1, e2, e3" in message


def test_unknown_environment_in_intervention():
    data = scenario_dict(interventions=[{"step": 5, "nodes": ["ghost"], "sharing": 0.5}])
    message = problems_of(data)
    assert "interventions.0.nodes" in message and "'ghost'" in message


def test_intervention_must_change_something():
    message = problems_of(scenario_dict(interventions=[{"step": 5, "nodes": ["e0"]}]))
    assert "sharing" in message and "distinguishability" in message


def test_walk_without_edges_is_an_error():
    message = problems_of(scenario_dict(schedule={"order": "walk"}))
    assert "`edges`" in message and "walk" in message


def test_walk_on_disconnected_graph_names_components():
    data = scenario_dict(
        schedule={"order": "walk"},
        edges=[{"source": "e0", "target": "e1"}, {"source": "e2", "target": "e3"}],
    )
    message = problems_of(data)
    assert "connected" in message and "['e0', 'e1']" in message


def test_impossible_geometry_names_the_pairs():
    data = scenario_dict(
        n_envs=3,
        geometry={"sharing": 0.9},
        edges=[{"source": "e0", "target": "e1", "sharing": -0.9}],
    )
    message = problems_of(data)
    assert "impossible" in message and "e0~e1 = -0.9; e0~e2 = +0.9; e1~e2 = +0.9." in message


def test_intervention_that_makes_geometry_impossible_is_caught_before_running():
    data = scenario_dict(
        n_envs=3,
        geometry={"sharing": 0.9},
        interventions=[{"step": 10, "edges": [["e0", "e1"]], "sharing": -0.9}],
    )
    assert "interventions.0" in problems_of(data)


def test_bad_structure_string():
    message = problems_of(scenario_dict(population={"initial": ["R[n]"]}))
    assert "population.initial.0" in message and "two children" in message


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "structure is empty; use n, w, g and R[child,child,...]"),
    ("R[n;g]", "cannot read ';g]'"),
    ("R[n R[g,w]]", "expected ',' or ']' but found 'R['"),
    ("R[n,g", "missing ']'"),
    ("R[", "missing ']'"),
    ("]", "expected n, w, g or R[ but found ']'"),
    ("n,n", "unexpected ',n' after a complete circuit"),
    ("R[" * 3000 + "n" + ",n]" * 3000, "routers nest more than 32 deep"),
])
def test_each_malformed_structure_says_what_is_wrong(text, fragment):
    message = problems_of(scenario_dict(population={"initial": [text]}))
    assert "population.initial.0" in message and fragment in message
    assert len(message) < 1000  # a long structure is quoted by its start


def test_the_deepest_structure_allowed_parses():
    deepest = "R[" * 32 + "n" + ",g]" * 32
    tree = parse_tree(deepest)
    for _ in range(32):
        assert tree[1] == "g"
        tree = tree[0]
    assert tree == "n"


def test_a_toml_file_nested_past_the_reader_s_stack_is_refused(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ScenarioError, match="nest too deeply to read"):
        load_scenario(path)


def test_a_cycle_cannot_start_outside_its_own_phases():
    # e3 exists and trains, but the sequence cycles a and b only: starting there is an error
    # naming what is allowed, not a start that would be silently ignored.
    data = scenario_dict(schedule={"order": "cycle", "sequence": ["e0", "e1"], "start": "e3"})
    message = problems_of(data)
    assert "`schedule.start`: 'e3' is not one of the cycle's phases; allowed: e0, e1" in message
    mixture = scenario_dict(schedule={"order": "cycle", "start": "both",
                                      "mixtures": {"both": {"e0": 1, "e1": 1}}})
    assert "allowed: e0, e1, e2, e3" in problems_of(mixture)
    held_out = scenario_dict(schedule={"start": "e3"})
    held_out["environments"][3]["held_out"] = True
    assert problems_of(held_out).count("schedule.start") == 1  # held out, said once


def test_all_held_out_is_an_error():
    data = scenario_dict(n_envs=2)
    data["environments"] = [{"name": "a", "held_out": True}, {"name": "b", "held_out": True}]
    assert "held_out" in problems_of(data)


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ScenarioError, match="file not found"):
        load_scenario(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [unclosed")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(bad)


def test_every_shipped_scenario_is_valid(scenarios_dir):
    """Each file loads, is named after itself, builds its geometry and schedule, and states
    expectations only about environments it trains, in the classifier's canonical form."""
    import re

    import numpy as np

    from circuits_abm.engine.environments import build_environments
    from circuits_abm.engine.schedule import build_schedule

    files = sorted(scenarios_dir.glob("*.toml"))
    assert len(files) >= 12
    for path in files:
        spec = load_scenario(path)
        assert spec.name == path.stem
        envs = build_environments(spec)
        phases = build_schedule(spec, envs, 100, np.random.default_rng(0))
        assert sum(p.length for p in phases) == 100
        for expected in (spec.expected, spec.expected_before_interventions):
            if expected is None:
                continue
            named = set(re.findall(r"[{,]([A-Za-z_][A-Za-z0-9_\-]*)", expected))
            assert named <= set(spec.training_names), (path.name, named)
            assert expected.startswith(
                ("conditional_policy[", "ecological_generalist{", "strategy_churn{")
            ), path.name


@pytest.mark.parametrize(("line", "fragment"), [
    ("strategy_churn{e0", "unclosed {"),
    ("nonsense", "expected a regime"),
    ("generalist{e0}", "a regime is one of ecological_generalist"),
])
def test_an_expected_regime_that_no_classification_could_write_is_refused(line, fragment):
    for field in ("expected", "expected_before_interventions"):
        message = problems_of(scenario_dict(**{field: line}))
        assert f"`{field}`" in message and fragment in message
    # naming an environment the scenario lacks is the catalogue's to refuse: an override
    # or a sweep may rename the environments a claim names
    scenario_from_dict(scenario_dict(expected="specialist{renamed}"))
