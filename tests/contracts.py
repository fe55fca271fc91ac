"""Contracts every registry entry must pass: a learning rule (``engine/rules.py``) and a
variation operator (``engine/variation.py``).

A test module subclasses ``RuleContract`` once per rule (``rule = "<name>"``) and
``OperatorContract`` once per operator (``operator = "<name>"``); pytest collects the
subclasses, and ``test_contracts.py`` checks that every entry of both registries has one.
A new rule or operator is therefore tested the day it is added (after the example of the
Axelrod library's ``TestPlayer``).
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import FROZEN, make_scenario

from circuits_abm.engine.circuits import Mechanism, Router, parse_structure, structure_string, walk
from circuits_abm.engine.environments import build_environments
from circuits_abm.engine.model import CircuitsModel
from circuits_abm.engine.rules import REGISTRY, RULE_LETTERS
from circuits_abm.engine.scenario import ScenarioError
from circuits_abm.engine.variation import OPERATORS, Context, choose_operator, make_offspring

ORTHOGONAL = {"sharing": 0.0, "distinguishability": 1.0}


class RuleContract:
    """What a learning rule promises: a letter in the grammar, a settings table that
    validates, and the step ``theta <- (1 - c) (theta + eta (target - theta))`` toward the
    current objective (or, for a fixed-target rule, toward its weighted mix)."""

    rule: str

    def test_its_letter_parses_to_a_mechanism_of_the_rule_and_prints_back(self):
        letter = RULE_LETTERS[self.rule]
        node = parse_structure(letter, 3, 3, 1.0, np.random.default_rng(0))
        assert isinstance(node, Mechanism) and node.rule == self.rule
        assert structure_string(node) == letter

    def test_its_settings_table_has_defaults_and_refuses_a_rate_above_one(self):
        defaults = REGISTRY[self.rule].settings()
        assert 0.0 < defaults.learning_rate <= 1.0 and 0.0 <= defaults.consolidation < 1.0
        with pytest.raises(ScenarioError, match=rf"circuits\.{self.rule}\.learning_rate"):
            make_scenario(2, circuits={self.rule: {"learning_rate": 2.0}})

    def test_one_noiseless_step_is_the_closed_form_update(self):
        settings = {**FROZEN, "circuits": {},  # the rule's own rates, noise and births off
                    "selection": {"extinction_floor": 0.0, "strength": 0.0}}
        spec = make_scenario(2, geometry=ORTHOGONAL,
                             population={"initial": [RULE_LETTERS[self.rule]]}, **settings)
        model = CircuitsModel(spec, rng=0)
        mechanism = model.circuits[0].root
        start = np.array([0.4, -0.2])
        mechanism.theta[:] = start
        envs = model.environments
        phase_mix = model.phases[0].weights
        rule = getattr(spec.circuits, self.rule)
        if REGISTRY[self.rule].fixed_target:
            weights = np.array([float(not held) for held in envs.held_out])
            target = (weights / weights.sum()) @ envs.demands
        else:
            target = phase_mix @ envs.demands
        eta, c = rule.learning_rate, rule.consolidation
        expected = (1 - c) * (start + eta * (target - start))
        model.step()
        np.testing.assert_allclose(model.circuits[0].root.theta, expected, atol=1e-14)

    def test_a_population_of_only_this_rule_runs_and_is_recorded_as_its_kind(self):
        spec = make_scenario(2, steps=60, population={"initial": [RULE_LETTERS[self.rule]]},
                             variation={"rate": 0.0})
        model = CircuitsModel(spec, rng=1)
        model.run()
        kinds = set(model.recorder.tables()[0].kind)
        assert kinds == {self.rule}


class OperatorContract:
    """What a variation operator promises: a valid offspring, the parent untouched, the
    lineage rule it declares (parameters only, or a new structure), and that it is drawn
    only where it applies."""

    operator: str
    PARENTS = ("R[n,g]", "R[n,R[g,w],n]", "R[R[n,n],R[g,g]]", "n", "w")

    @staticmethod
    def context(seed: int) -> Context:
        scenario = make_scenario(geometry={"sharing": 0.1, "distinguishability": 0.9})
        envs = build_environments(scenario)
        return Context(np.random.default_rng(seed), scenario, envs.cues[1], envs.cue_centre())

    def parents(self):
        """The test parents this operator applies to."""
        needs_router = OPERATORS[self.operator].needs_router
        return [text for text in self.PARENTS if text.startswith("R") or not needs_router]

    def offspring(self, text: str, seed: int):
        parent = parse_structure(text, 4, 4, 5.0, np.random.default_rng(seed))
        before = (structure_string(parent), [n.key.copy() for _, n in walk(parent)],
                  [n.theta.copy() for _, n in walk(parent) if isinstance(n, Mechanism)])
        child = make_offspring(parent, self.operator, self.context(seed))
        return parent, before, child

    def test_the_offspring_is_a_valid_tree_and_the_parent_is_untouched(self):
        for text in self.parents():
            for seed in range(4):
                parent, (structure, keys, thetas), child = self.offspring(text, seed)
                for _, node in walk(child):
                    assert np.linalg.norm(node.key) == pytest.approx(1.0)
                    if isinstance(node, Router):
                        assert len(node.children) >= 2
                    else:
                        assert node.theta.shape == (4,)
                assert structure_string(parent) == structure
                for (_, node), key in zip(walk(parent), keys, strict=True):
                    np.testing.assert_array_equal(node.key, key)
                mechanisms = [n for _, n in walk(parent) if isinstance(n, Mechanism)]
                for node, theta in zip(mechanisms, thetas, strict=True):
                    np.testing.assert_array_equal(node.theta, theta)

    def test_it_keeps_the_structure_exactly_when_it_declares_it_keeps_the_lineage(self):
        keeps = OPERATORS[self.operator].keeps_lineage
        for text in self.parents():
            for seed in range(4):
                parent, (structure, _, _), child = self.offspring(text, seed)
                assert (structure_string(child) == structure) is keeps, (text, seed)

    def test_it_is_drawn_only_where_it_applies(self):
        needs_router = OPERATORS[self.operator].needs_router
        lone = parse_structure("n", 4, 4, 5.0, np.random.default_rng(0))
        drawn = {choose_operator(lone, self.context(seed)) for seed in range(200)}
        assert (self.operator in drawn) is not needs_router
