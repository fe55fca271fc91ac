"""The prototype's three corner outcomes (MODEL.md §2) emerge on every one of several seeds.

The assertions read only the run's trajectory (its phases table), never the scenario.
"""

from __future__ import annotations

import pytest
from conftest import ROOT, deep_merge

import circuits_abm as ca
from circuits_abm.classification import end_window, final_routing_information, recency_bias
from circuits_abm.scenario import scenario_from_dict

SEEDS = (1, 2, 3)


def corner(sharing: float, distinguishability: float, seed: int):
    import tomllib

    base = tomllib.loads((ROOT / "scenarios" / "standard.toml").read_text())
    data = deep_merge(
        base, {"geometry": {"sharing": sharing, "distinguishability": distinguishability}}
    )
    return ca.run(scenario_from_dict(data), seed=seed, steps=5000).phases


@pytest.mark.parametrize("seed", SEEDS)
def test_low_sharing_high_distinguishability_selects_an_informative_router(seed):
    phases = corner(0.1, 0.9, seed)
    window = end_window(phases)
    last = phases[phases.phase == phases.phase.max()].iloc[0]
    assert last.dominant_kind == "router"
    assert window.router_share.mean() > 0.9
    assert final_routing_information(phases) > 0.8
    assert abs(recency_bias(end_window(phases))) < 0.15


@pytest.mark.parametrize("seed", SEEDS)
def test_high_sharing_selects_one_mechanism(seed):
    for distinguishability in (0.1, 0.9):
        phases = corner(0.9, distinguishability, seed)
        window = end_window(phases)
        last = phases[phases.phase == phases.phase.max()].iloc[0]
        assert last.dominant_kind != "router"
        assert window.structure_share.mean() > 0.8
        assert window.router_share.mean() < 0.05
        assert abs(recency_bias(window)) < 0.15


@pytest.mark.parametrize("seed", SEEDS)
def test_low_sharing_low_distinguishability_gives_no_router_and_a_dominant_fit_only_to_now(
    seed,
):
    phases = corner(0.1, 0.1, seed)
    window = end_window(phases)
    assert window.router_share.mean() < 0.05
    assert recency_bias(window) > 0.5
