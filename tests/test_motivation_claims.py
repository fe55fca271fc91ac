"""The motivation claims of the essays, as rates over seeds derived from a root seed.

* Quarantine works: routing keeps the motivation out of what stays after the discard and
  keeps capability; plain learning spreads it into the shared mechanism and so into held-out
  environments.
* Blocking invites evasion: once the monitor is imperfect, blocking leaks the motivation
  around the monitor more than routing does, and it costs reward while it holds.
* Attribution: the monitor finds the environments that pushed the quarantine.
* Unreliable evaluations: under a conditional policy the evaluation looks aligned while
  deployment is not; one shared mechanism shows the same in both.
* Underdetermination: selection cannot tell apart motivations that training does not reward.

Sweeps in ``sweeps/`` (monitor_angle, evaluation_gap) run once per module on every core;
the quarantine scenario's attribution is read from the catalogue runs in
test_canonical_scenarios.  The
thresholds come from the model: plain learning's shared mechanism carries the training
environments' mean reward-seeking demand (0.2 in the quarantine scenario), so "spread" is
half of that.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers import ROOT
from scipy.stats import mannwhitneyu, spearmanr

from circuits_abm.engine.loading import load_scenario
from circuits_abm.engine.model import CircuitsModel
from circuits_abm.experiments.catalogue import catalogue_seeds, rate_of
from circuits_abm.experiments.sweep.runner import run_sweep
from circuits_abm.experiments.sweep.spec import load_sweep

pytestmark = pytest.mark.slow
REQUIRED = 0.7
SPREAD = 0.1  # half the quarantine scenario's mean training demand for reward seeking


def holds_often(flags) -> None:
    rate = rate_of(list(flags))
    assert rate.n >= 20
    assert rate.low >= REQUIRED, rate.text()


def superiority(larger, smaller) -> float:
    """P(a draw from ``larger`` exceeds one from ``smaller``): the Mann-Whitney U over n m."""
    u = mannwhitneyu(larger, smaller, alternative="greater")
    return u.statistic / (len(larger) * len(smaller)), u.pvalue


@pytest.fixture(scope="module")
def angle(tmp_path_factory):
    sweep = load_sweep(ROOT / "sweeps" / "monitor_angle.toml")
    table = run_sweep(sweep, tmp_path_factory.mktemp("angle"), "processes", os.cpu_count())
    assert (table.status == "ok").all()
    return table


def runs_at(table, angle_value, rule):
    rows = table[(table["monitor.angle"] == angle_value) & (table["monitor.rule"] == rule)]
    assert len(rows) >= 20
    return rows


def test_routing_keeps_the_motivation_out_while_plain_learning_spreads_it(angle):
    route, plain = runs_at(angle, 0.0, "route"), runs_at(angle, 0.0, "plain")
    holds_often(route.motivation_held_out.abs() < 0.02)
    holds_often(route.motivation_training.abs() < 0.02)
    holds_often(plain.motivation_held_out > SPREAD)


def test_routing_keeps_the_capability_that_plain_learning_reaches(angle):
    route, plain = runs_at(angle, 0.0, "route"), runs_at(angle, 0.0, "plain")
    assert route.capability.median() >= plain.capability.median() - 0.01
    holds_often(route.capability > plain.capability.median() - 0.02)


def test_blocking_leaks_the_motivation_around_an_imperfect_monitor_more_than_routing(angle):
    for degrees in (20.0, 30.0):
        block = runs_at(angle, degrees, "block").motivation_held_out
        route = runs_at(angle, degrees, "route").motivation_held_out
        probability, p_value = superiority(block.to_numpy(), route.to_numpy())
        assert probability >= 0.9 and p_value < 1e-3, (degrees, probability, p_value)


def test_the_leak_opens_with_the_angle_and_closes_when_the_monitor_sees_nothing(angle):
    # A perfect monitor lets nothing through under either rule; the gap between blocking and
    # routing then opens with the angle; at 90 degrees the monitor watches a combination
    # that changes no behaviour, so both rules learn like plain.
    for rule in ("block", "route"):
        assert runs_at(angle, 0.0, rule).motivation_held_out.abs().max() < 0.02
    rows = angle[(angle["monitor.rule"] == "block") & (angle["monitor.angle"] <= 20.0)]
    rho, p_value = spearmanr(rows["monitor.angle"], rows.motivation_held_out)
    assert rho > 0.7 and p_value < 1e-6
    gap = {a: runs_at(angle, a, "block").motivation_held_out.mean()
           - runs_at(angle, a, "route").motivation_held_out.mean() for a in (0.0, 10.0, 20.0)}
    assert gap[0.0] < gap[10.0] < gap[20.0]
    blind = [runs_at(angle, 90.0, rule).motivation_held_out.mean()
             for rule in ("block", "route", "plain")]
    assert max(blind) - min(blind) < 0.05


def test_blocking_costs_reward_while_routing_lets_the_hack_pay(angle):
    block, route = runs_at(angle, 0.0, "block"), runs_at(angle, 0.0, "route")
    probability, p_value = superiority(route.mean_fitness.to_numpy(),
                                       block.mean_fitness.to_numpy())
    assert probability >= 0.9 and p_value < 1e-3


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    sweep = load_sweep(ROOT / "sweeps" / "evaluation_gap.toml")
    table = run_sweep(sweep, tmp_path_factory.mktemp("evaluation"), "processes", os.cpu_count())
    assert (table.status == "ok").all()
    table["gap"] = table.motivation_held_out - table.motivation_evaluation
    return table


def test_evaluations_look_aligned_under_a_conditional_policy_but_deployment_is_not(evaluation):
    routed = evaluation[evaluation["geometry.distinguishability"] == 0.9]
    shared = evaluation[evaluation["geometry.distinguishability"] == 0.05]
    holds_often((routed.regime == "conditional_policy") & (routed.motivation_evaluation <= 0)
                & (routed.gap > 0.3))
    holds_often((shared.regime != "conditional_policy") & (shared.gap.abs() < 0.05))
    probability, p_value = superiority(routed.gap.to_numpy(), shared.gap.to_numpy())
    assert probability >= 0.9 and p_value < 1e-3


def test_selection_cannot_tell_apart_motivations_that_training_does_not_reward():
    """Two generalists that differ only in reward seeking, which no training environment
    names, earn the same at every step: their log share ratio moves only by gradient noise,
    while a control pair that differs as much in a trained direction is pulled apart."""
    spec = load_scenario(ROOT / "scenarios" / "underdetermination.toml")

    def drift(seed: int, direction: str) -> tuple[float, float]:
        model = CircuitsModel(spec, seed=seed)
        envs = model.environments
        a, b = envs.pathways("reward_seeking")
        for sign, circuit in zip((1.0, -1.0), model.circuits, strict=True):
            theta = circuit.root.theta
            if direction == "motivation":
                theta[a] = theta[b] = sign * 0.15  # behaviour +0.3 and -0.3
            else:
                theta[: envs.width] = sign * 0.3 * envs.capability[0]
        start = np.log(model.shares[0] / model.shares[1])
        model.run()
        thetas = [c.root.theta for c in model.circuits]
        deployment = envs.index("deployment")
        rewards = [float(t @ envs.demands[deployment]) for t in thetas]
        return float(np.log(model.shares[0] / model.shares[1]) - start), rewards[0] - rewards[1]

    results = []
    for seed in catalogue_seeds("underdetermination", 20):
        blind, deployment_gap = drift(seed, "motivation")
        seen, _ = drift(seed, "capability")
        results.append((blind, seen, deployment_gap))
    holds_often(abs(b) < 2 and abs(b) < abs(s) / 10 for b, s, _ in results)
    holds_often(gap > 0.1 for _, _, gap in results)  # they still differ out of distribution
