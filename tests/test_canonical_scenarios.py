"""Every canonical scenario produces its stated regime on each of three seeds.

Each scenario file states the essay claim it illustrates and its expected regime; the
classifier reads only the run's trajectory.  Runs are cached per (scenario, seed) so the
claim-specific tests below reuse them.
"""

from __future__ import annotations

from functools import cache

import pytest
from conftest import ROOT

import circuits_abm as ca
from circuits_abm.catalogue import canonical_scenarios, outcome_of
from circuits_abm.classification import classify, end_window

pytestmark = pytest.mark.slow
SEEDS = (1, 2, 3)
SCENARIOS = {spec.name: spec for _, spec in canonical_scenarios(ROOT / "scenarios")}


@cache
def result(name: str, seed: int) -> ca.RunResult:
    return ca.run(SCENARIOS[name], seed=seed)


def outcome(name: str, seed: int):
    return outcome_of(SCENARIOS[name], seed, result(name, seed).phases)


def test_the_library_covers_every_claim_of_the_issue():
    assert {
        "cell_generalist_distinct",
        "cell_generalist_similar",
        "standard",
        "cell_strategy_churn",
        "nested_generalist_clusters",
        "nested_churn_clusters",
        "switching_fast",
        "switching_slow",
        "weighted_optimiser_held_out",
        "inoculation",
        "skills_training_tag",
        "on_policy",
    } <= set(SCENARIOS)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_canonical_scenario_gives_its_stated_regime(name, seed):
    got = outcome(name, seed)
    assert got.observed == got.expected
    if got.expected_before is not None:
        assert got.observed_before == got.expected_before


@pytest.mark.parametrize("seed", SEEDS)
def test_fast_switching_culls_naive_optimisers_that_win_under_slow_switching(seed):
    def naive_share(name):
        series = result(name, seed).timeseries
        window = series[series.step > series.step.max() * 0.75]
        per_step = window.groupby(["step", "kind"]).share.sum().unstack(fill_value=0.0)
        return per_step.get("naive", 0.0).mean()

    assert naive_share("switching_fast") < 0.05
    assert naive_share("switching_slow") > 0.8


@pytest.mark.parametrize("seed", SEEDS)
def test_weighted_optimiser_looks_fine_on_its_mix_and_fails_on_the_held_out_environment(seed):
    phases = result("weighted_optimiser_held_out", seed).phases
    last = phases[phases.phase == phases.phase.max()].iloc[0]
    assert last.dominant_kind == "weighted"
    window = end_window(phases)
    training = window[~window.held_out].population_reward.mean()
    held_out = window[window.held_out].population_reward.mean()
    assert training > 0.2
    assert held_out < training - 0.15


@pytest.mark.parametrize("seed", SEEDS)
def test_inoculation_moves_the_population_from_routers_to_one_mechanism(seed):
    phases = result("inoculation", seed).phases
    before = classify(phases[phases.end <= 4000])
    after = classify(phases)
    assert before.regime == "conditional_policy" and after.regime == "ecological_generalist"
    last_before = phases[phases.end <= 4000].router_share.iloc[-1]
    assert last_before > 0.9 and phases.router_share.iloc[-1] < 0.1
