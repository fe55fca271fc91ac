"""Every canonical claim, as a rate over seeds derived from a root seed (never hand-picked).

Each scenario file states the essay claim it illustrates and its expected regime; the
classifier reads only the run's trajectory.  A claim holds when the lower end of the Wilson
95% interval of its rate over the session's catalogue runs (``conftest.CATALOGUE_RUNS``
seeds per scenario) reaches the scenario's ``expected_rate`` (0.7 by default).  The
claim-specific checks below are rates over the same runs, and so are the classifier-free
checks of the three taxonomy corners, which read raw metrics instead of labels.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers import CATALOGUE_RUNS, ROOT
from scipy.stats import spearmanr

from circuits_abm.analysis.assembly import path_prediction
from circuits_abm.analysis.classification import (
    classify,
    end_window,
    final_routing_information,
    recency_bias,
)
from circuits_abm.analysis.rates import wilson
from circuits_abm.engine.loading import load_scenario, override
from circuits_abm.experiments.catalogue import (
    canonical_scenarios,
    claim_holds,
    claim_rate,
    markdown_table,
    rate_of,
)
from circuits_abm.experiments.storage import between_markers
from circuits_abm.experiments.sweep.runner import run_sweep
from circuits_abm.experiments.sweep.spec import load_sweep

pytestmark = pytest.mark.slow
NAMES = sorted(spec.name for _, spec in canonical_scenarios(ROOT / "scenarios"))
REQUIRED = 0.7  # lower bound of the 95% interval for the claim-specific rates


def test_the_library_covers_every_claim_of_the_essays():
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
    } <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_canonical_claim_holds_as_a_rate_over_derived_seeds(catalogue, name):
    rate = claim_rate(catalogue.outcomes, name)
    assert rate.n == CATALOGUE_RUNS >= 20
    spec = catalogue.specs[name]
    assert claim_holds(rate, spec), f"{name}: {rate.text()}, needs >= {spec.expected_rate}"


def test_the_published_catalogue_table_is_the_one_the_code_computes(catalogue):
    """Rate for rate: the committed table must be what these very runs give (results are the
    same on every x86-64 machine, docs/reproducibility.md).  `make catalogue` rewrites it."""
    computed = markdown_table(catalogue.outcomes, catalogue.specs)
    committed = between_markers(ROOT / "docs" / "catalogue.md", "catalogue")
    assert committed == computed, "docs/catalogue.md's table is stale: run `make catalogue`"


def holds_often(flags: list[bool]) -> None:
    rate = rate_of(flags)
    assert rate.n >= 20
    assert rate.low >= REQUIRED, rate.text()


def end_naive_share(run) -> float:
    series = run.timeseries
    window = series[series.step > series.step.max() * 0.75]
    per_step = window.groupby(["step", "kind"]).share.sum().unstack(fill_value=0.0)
    return float(np.mean(per_step.get("naive", 0.0)))


def test_fast_switching_culls_naive_optimisers(catalogue):
    holds_often([end_naive_share(run) < 0.05 for run in catalogue.runs("switching_fast")])


def test_slow_switching_lets_naive_optimisers_win(catalogue):
    holds_often([end_naive_share(run) > 0.8 for run in catalogue.runs("switching_slow")])


def test_weighted_optimiser_looks_fine_on_its_mix_and_fails_on_the_held_out_environment(
    catalogue,
):
    def fragile(run) -> bool:
        phases = run.phases
        last = phases[phases.phase == phases.phase.max()].iloc[0]
        window = end_window(phases)
        training = window[~window.held_out].population_reward.mean()
        held_out = window[window.held_out].population_reward.mean()
        return last.dominant_kind == "weighted" and training > 0.2 and held_out < training - 0.15

    holds_often([fragile(run) for run in catalogue.runs("weighted_optimiser_held_out")])


def test_inoculation_moves_the_population_from_routers_to_one_mechanism(catalogue):
    def moved(run) -> bool:
        phases = run.phases
        before = phases[phases.end <= 4000]
        return (
            classify(before).regime == "conditional_policy"
            and classify(phases).regime == "ecological_generalist"
            and before.router_share.iloc[-1] > 0.9
            and phases.router_share.iloc[-1] < 0.1
        )

    holds_often([moved(run) for run in catalogue.runs("inoculation")])


# The three corners of the taxonomy, read from raw metrics rather than labels.


def test_low_sharing_high_distinguishability_selects_an_informative_router(catalogue):
    def informative_router(run) -> bool:
        phases = run.phases
        window = end_window(phases)
        last = phases[phases.phase == phases.phase.max()].iloc[0]
        return (
            last.dominant_kind == "router"
            and window.router_share.mean() > 0.9
            and final_routing_information(phases) > 0.8
            and abs(recency_bias(window)) < 0.15
        )

    holds_often([informative_router(run) for run in catalogue.runs("standard")])


@pytest.mark.parametrize("name", ["cell_generalist_distinct", "cell_generalist_similar"])
def test_high_sharing_selects_one_mechanism_whatever_the_distinguishability(catalogue, name):
    def one_mechanism(run) -> bool:
        phases = run.phases
        window = end_window(phases)
        last = phases[phases.phase == phases.phase.max()].iloc[0]
        return (
            last.dominant_kind != "router"
            and window.structure_share.mean() > 0.8
            and window.router_share.mean() < 0.05
            and abs(recency_bias(window)) < 0.15
        )

    holds_often([one_mechanism(run) for run in catalogue.runs(name)])


def test_low_sharing_low_distinguishability_gives_no_router_and_a_fit_only_to_now(catalogue):
    def churns(run) -> bool:
        window = end_window(run.phases)
        return window.router_share.mean() < 0.05 and recency_bias(window) > 0.5

    holds_often([churns(run) for run in catalogue.runs("cell_strategy_churn")])


def test_routers_hold_less_often_as_learning_becomes_on_policy(tmp_path):
    sweep = load_sweep(ROOT / "sweeps" / "on_policy_gamma.toml")
    table = run_sweep(sweep, tmp_path, "processes", os.cpu_count())
    assert (table.status == "ok").all()
    router = (table.regime == "conditional_policy").to_numpy()
    gamma = table["learning.gamma"].to_numpy()
    correlation, p_value = spearmanr(gamma, router)
    assert correlation < -0.5 and p_value < 1e-3
    rates = {g: rate_of(list(router[gamma == g])) for g in np.unique(gamma)}
    assert rates[0.0].low >= REQUIRED, rates[0.0].text()
    for g in (0.5, 0.75, 1.0):  # from gamma = 0.5 on, the intervals no longer overlap
        assert rates[g].high < rates[0.0].low, (g, rates[g].text(), rates[0.0].text())
    # The path model predicts each rate from the scenario alone (docs/theory.md, section 7).
    # The rule fixed before the first comparison: the path's probability of a router lies in
    # the 99.9% Wilson interval of the simulated rate, and where that rate's 95% interval
    # excludes one half, the path's verdict is the simulated majority.  It failed at gamma
    # 0.5 (4/20 routers against 0.00): there the chain's verdict from the initial router
    # differs from its verdict from one mechanism, which the path names as left out.  At
    # such a point the rule is weaker: the simulated rate lies between the chain's
    # probabilities from one mechanism and from the router.
    for g, rate in rates.items():
        path = path_prediction(override(load_scenario("on_policy"), {"learning.gamma": g}))
        strict = wilson(rate.k, rate.n, confidence=0.999)
        if "initial router" in path.uncovered:
            from_router = 1.0 - path.occupation_from(len(path.states) - 1)[0]
            low, high = sorted((path.router_probability, from_router))
            assert strict.high >= low and strict.low <= high, (g, rate.text(), path)
            continue
        assert strict.low <= path.router_probability <= strict.high, (g, rate.text(), path)
        if rate.low > 0.5 or rate.high < 0.5:
            assert path.ends_with_router == (rate.low > 0.5), (g, rate.text())


def test_the_monitor_attributes_the_quarantine_to_the_hackable_environments(catalogue):
    runs = catalogue.runs("quarantine")
    found = [run.summary["monitoring"]["attribution"] for run in runs]
    holds_often([a["precision"] is not None and a["precision"] >= 0.9
                 and a["recall"] >= 0.9 for a in found])
