"""Variation operators make valid offspring and keep lineages honest."""

from __future__ import annotations

import numpy as np
from helpers import make_scenario

from circuits_abm.engine.circuits import (
    Mechanism,
    parse_structure,
    structure_string,
)
from circuits_abm.engine.environments import build_environments
from circuits_abm.engine.model import CircuitsModel
from circuits_abm.engine.variation import PARAMETER_ONLY, Context, make_offspring


def context(seed=0):
    scenario = make_scenario(geometry={"sharing": 0.1, "distinguishability": 0.9})
    envs = build_environments(scenario)
    return Context(np.random.default_rng(seed), scenario, envs.cues[1], envs.cue_centre())


def tree(text: str, seed=0):
    return parse_structure(text, 4, 4, 5.0, np.random.default_rng(seed))


def test_split_makes_a_router_keyed_on_the_current_context():
    ctx = context()
    child = make_offspring(tree("n"), "split", ctx)
    assert structure_string(child) == "R[n,n]"
    q = ctx.cue
    first, second = child.children
    assert first.key @ q > second.key @ q


def test_collapse_keeps_the_mechanism_the_context_is_routed_to():
    ctx = context()
    parent = tree("R[n,g]")
    parent.children[1].key = ctx.contrast_key()
    parent.children[0].key = -ctx.contrast_key()
    collapsed = make_offspring(parent, "collapse", ctx)
    assert isinstance(collapsed, Mechanism) and collapsed.rule == "generalist"


def test_parameter_changes_keep_the_lineage_structural_changes_found_a_new_one():
    scenario = make_scenario(variation={"rate": 3.0}, selection={"strength": 0.0})
    model = CircuitsModel(scenario, seed=5, steps=100)
    founders = {c.unique_id: c for c in model.circuits}
    model.run()
    by_id = {c.unique_id: c for c in model.circuits} | founders
    checked = 0
    for circuit in model.circuits:
        parent = by_id.get(circuit.parent_id)
        if parent is None:
            continue
        if circuit.lineage == parent.lineage:
            assert circuit.structure == parent.structure
        else:
            assert circuit.parent_lineage == parent.lineage
        checked += 1
    assert checked > 10
    assert {"mutate", "perturb_sharpness"} == PARAMETER_ONLY


def test_routers_lists_every_router_of_a_tree_outermost_first():
    from circuits_abm.engine.circuits import routers  # noqa: PLC0415

    root = tree("R[n,R[g,w],R[n,n]]")
    assert [len(r.children) for r in routers(root)] == [3, 2, 2]
    assert routers(root)[0] is root and routers(tree("n")) == []
