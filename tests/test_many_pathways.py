"""Motivations expressed through many pathways, a monitor that watches some of them, and a
quarantine module of limited capacity (docs/motivations.md, "Many pathways").

Expected values are derived by hand from the reward ``m mu - mu^2 / 2 - upkeep |theta|^2 / 2``
with ``mu = sum_i g_i theta_i``, not read from the code: one noiseless step from 0, and the
fixed points of noiseless learning (the best behaviour in the plane the rule leaves open).
The two-pathway model is checked against the digests recorded before many pathways existed.
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pandas as pd
import pytest
from helpers import ROOT, make_scenario
from typer.testing import CliRunner

from circuits_abm.analysis.rates import wilson
from circuits_abm.cli import app
from circuits_abm.engine import learning
from circuits_abm.engine.environments import build_environments
from circuits_abm.engine.model import CircuitsModel
from circuits_abm.engine.monitoring import monitor_direction
from circuits_abm.engine.scenario import ScenarioError
from circuits_abm.experiments import evasion, module_capacity
from circuits_abm.experiments.sweep.design import derive_seed

sys.path.insert(0, str(ROOT / "benchmarks"))
import identity  # noqa: E402

ETA, M, UPKEEP = 0.5, 0.6, 0.1
GAINS = [1.0, 1.0, 0.3]
HACKABLE = [{"name": "e0", "motivations": {"hack": M}}, {"name": "e1"}]


def lone_mechanism(rule: str, gains=GAINS, steps: int = 10, rate: float = ETA,
                   **monitor) -> CircuitsModel:
    """A lone naive mechanism, noiseless and unselected; e0 rewards ``hack`` (expressed
    through pathways of ``gains``), e1 does not name it."""
    spec = make_scenario(
        2, steps=steps, environments=HACKABLE,
        motivations=[{"name": "hack", "gains": gains, "upkeep": UPKEEP}],
        monitor={"rule": rule, "discard": "never", **monitor},
        geometry={"sharing": 0.0}, population={"initial": ["n"]},
        circuits={"naive": {"learning_rate": rate}}, learning={"noise": 0.0},
        variation={"rate": 0.0}, selection={"strength": 0.0},
    )
    return CircuitsModel(spec, rng=0)


def behaviour(model: CircuitsModel, array: str = "theta") -> float:
    """``sum_i g_i x_i`` of the mechanism's parameters (or quarantine module)."""
    values = getattr(model.layout, array)[0]
    return float(sum(g * values[2 + i] for i, g in enumerate(model.spec.motivations[0].gains)))


def run_to_the_end(model: CircuitsModel) -> CircuitsModel:
    while model.running:
        model.step()
    return model


def test_the_reward_saturates_the_behaviour_whatever_the_gains():
    envs = build_environments(lone_mechanism("plain").spec)
    theta = np.random.default_rng(5).normal(size=(6, 5))
    reward = learning.leaf_rewards(theta, envs.demands, envs.metric, envs.relevance)
    for row, values in zip(reward[:, 0], theta, strict=True):
        skill, pathways = values[:2], values[2:]
        mu = float(np.dot(GAINS, pathways))
        expected = (float(skill @ envs.capability[0]) - float(skill @ skill) / 2
                    + M * mu - mu**2 / 2 - UPKEEP * float(pathways @ pathways) / 2)
        assert row == pytest.approx(expected)


def test_the_monitor_watches_the_behaviour_of_the_watched_pathways_only():
    model = lone_mechanism("block", watched=2)
    assert monitor_direction(model.spec, model.environments)[2:] == pytest.approx(
        [1 / math.sqrt(2), 1 / math.sqrt(2), 0.0])
    model = lone_mechanism("block", watched=1)
    assert monitor_direction(model.spec, model.environments)[2:] == pytest.approx([1, 0, 0])
    for angle in (10.0, 35.0, 80.0):  # turned toward (e1 - e2)/sqrt 2, the inert combination
        model = lone_mechanism("block", watched=2, angle=angle)
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        assert monitor_direction(model.spec, model.environments)[2:] == pytest.approx(
            [(c + s) / math.sqrt(2), (c - s) / math.sqrt(2), 0.0])


def test_one_blocked_step_moves_only_the_unwatched_pathway():
    # From 0 the step is eta m g on the pathways; its (1, 1) part is removed, leaving
    # eta m g_3 on the third pathway, a behaviour of eta m g_3^2.
    model = lone_mechanism("block", watched=2)
    model.step()
    assert model.layout.theta[0, 2:] == pytest.approx([0.0, 0.0, ETA * M * 0.3], abs=1e-12)
    assert behaviour(model) == pytest.approx(ETA * M * 0.09)


@pytest.mark.parametrize("rule, expected", [
    # the best behaviour in the open plane: m |g'|^2 / (upkeep + |g'|^2), g' = (0, 0, 0.3)
    ("block", M * 0.09 / (UPKEEP + 0.09)),
    # theta + q reaches plain learning's optimum; theta keeps its part off u
    ("route", M * 0.09 / (UPKEEP + 2.09)),
    ("plain", M * 2.09 / (UPKEEP + 2.09)),
])
def test_noiseless_learning_settles_where_the_geometry_says(rule, expected):
    model = run_to_the_end(lone_mechanism(rule, steps=6000, watched=2))
    assert behaviour(model) == pytest.approx(expected, abs=1e-6)


def test_a_full_quarantine_module_leaves_the_overflow_in_the_parameters():
    # Two pathways of gain 1 watched at 0 degrees.  Unbounded, theta + q settles at plain
    # learning's optimum m (1, 1) / (2 + upkeep) and q holds all of it.  With capacity c
    # below its norm, and a rate slow enough that the behaviour never overshoots (so the
    # update along u keeps its sign), q fills to c along u and theta keeps the rest: a
    # behaviour of 2 m / (2 + upkeep) - sqrt(2) c.
    optimum = 2 * M / (2 + UPKEEP)
    free = run_to_the_end(lone_mechanism("route", gains=[1.0, 1.0], steps=4000, rate=0.1))
    assert behaviour(free) == pytest.approx(0.0, abs=1e-9)
    assert behaviour(free, "quarantine") == pytest.approx(optimum, abs=1e-6)
    for capacity in (0.05, 0.2):
        model = run_to_the_end(lone_mechanism("route", gains=[1.0, 1.0], steps=4000, rate=0.1,
                                              capacity=capacity))
        assert np.linalg.norm(model.layout.quarantine[0]) == pytest.approx(capacity)
        assert behaviour(model) == pytest.approx(optimum - math.sqrt(2) * capacity, abs=1e-6)


def test_the_two_pathway_model_gives_the_recorded_results_to_the_bit():
    # identity.json was written before motivations had more than two pathways.
    recorded = json.loads(identity.RECORD.read_text())
    for name in ("quarantine.toml", "underdetermination.toml", "unreliable_evaluations.toml"):
        assert identity.run_digest(ROOT / "scenarios" / name, 1) == recorded[f"{name} seed 1"]


@pytest.mark.parametrize("fields, message", [
    ({"monitor": {"rule": "block", "watched": 4}}, "monitor.watched"),
    ({"monitor": {"rule": "block", "watched": 1, "angle": 20.0}}, "monitor.watched"),
    ({"gains": [1.0]}, "gains"),
    ({"gains": [1.0, 0.0]}, "gains"),
    ({"monitor": {"rule": "route", "capacity": 0.0}}, "monitor.capacity"),
])
def test_impossible_pathway_settings_are_refused_with_the_field_named(fields, message):
    motivation = {"name": "hack", "gains": fields.get("gains", GAINS)}
    with pytest.raises(ScenarioError, match=message.replace(".", r"\.")):
        make_scenario(2, environments=HACKABLE, motivations=[motivation],
                      monitor=fields.get("monitor", {}))


@pytest.fixture(scope="module")
def evasion_at_zero():
    """The evasion experiment's runs at 0 degrees: 20 derived seeds per rule."""
    seeds = [job[2] for job in evasion.tasks(20) if job[0] == "plain"]
    rows = [row for rule in evasion.RULES for seed in seeds
            for row in evasion.leak_run(rule, 0.0, seed)]
    return pd.DataFrame(rows)


def test_an_unwatched_pathway_carries_the_behaviour_past_a_block(evasion_at_zero):
    # With two pathways a block at 0 degrees leaks exactly nothing (an identity); with an
    # unwatched third pathway it leaks, and routing leaks less than blocking.
    final = evasion_at_zero[evasion_at_zero.step == evasion.CHECKPOINTS[-1]].pivot_table(
        index="seed", columns="rule", values="leak")
    leaks = wilson(int((final.block > 0.05).sum()), len(final))
    below = wilson(int((final.route < final.block).sum()), len(final))
    assert leaks.low > 0.5 and below.low > 0.5


def test_the_leaks_match_what_the_geometry_predicts(evasion_at_zero):
    # The rule written before the 20-seed run: agreement within evasion.AGREEMENT.
    final = evasion_at_zero[evasion_at_zero.step == evasion.CHECKPOINTS[-1]]
    means = final.groupby("rule").leak.mean()
    predicted = evasion.prediction(evasion.scenario("block", 0.0))
    for rule in ("block", "route"):
        assert means[rule] / means.plain == pytest.approx(predicted[rule], abs=evasion.AGREEMENT)


def published_page(tmp_path, command: str, marker: str) -> str:
    """Run ``circuits-abm motivations <command>`` on two seeds with ``--figure`` and
    ``--doc`` (a page holding only ``marker``'s markers); the figure must be a real image,
    and the page with the tables is returned."""
    doc = tmp_path / "page.md"
    doc.write_text(f"before\n<!-- {marker}:start -->\nold\n<!-- {marker}:end -->\n")
    figure = tmp_path / f"{command}.png"
    result = CliRunner().invoke(app, ["motivations", command, "--seeds", "2", "--workers", "1",
                                      "--figure", str(figure), "--doc", str(doc)])
    assert result.exit_code == 0, result.output
    assert figure.stat().st_size > 10_000
    page = doc.read_text()
    assert "old" not in page
    return page


def test_the_evasion_command_writes_the_tables_and_the_figure(tmp_path, monkeypatch):
    """Two seeds, one angle, one selection strength and 300 steps: the command's plumbing."""
    monkeypatch.setattr(evasion, "ANGLES", (0.0,))
    monkeypatch.setattr(evasion, "STRENGTHS", (5.0,))
    monkeypatch.setattr(evasion, "STEPS", 300)
    monkeypatch.setattr(evasion, "CHECKPOINTS", (12, 96, 300))
    page = published_page(tmp_path, "evasion", "evasion")
    assert "| 0° | block |" in page and "| 5 |" in page


def test_the_capacity_command_writes_the_table_and_the_figure(tmp_path, monkeypatch):
    monkeypatch.setattr(module_capacity, "CAPACITIES", (0.1, None))
    page = published_page(tmp_path, "capacity", "module-capacity")
    assert "| 0.1 |" in page and "| no cap | 0.000 ± 0.000 | 0.000 |" in page


def test_the_overflow_bound_is_plain_less_root_two_capacities():
    assert module_capacity.overflow_bound(0.3, 0.1) == pytest.approx(0.3 - 0.1 * math.sqrt(2))
    assert module_capacity.overflow_bound(0.3, 0.5) == 0.0
    assert module_capacity.overflow_bound(0.3, None) == 0.0


def test_a_noisy_reading_is_a_unit_vector_that_keeps_the_direction_on_average():
    # For u a unit vector in D dimensions and e ~ N(0, noise^2 / D) per dimension,
    # u . (u + e) = 1 + e_1 and |u + e|^2 = 1 + 2 e_1 + |e|^2, so E (u . reading) is close to
    # 1 / sqrt(1 + noise^2) when D is large; with noise 0 the reading is u itself.
    from circuits_abm.engine.monitoring import noisy_direction

    rng = np.random.default_rng(3)
    u = np.zeros(400)
    u[7] = 1.0
    assert noisy_direction(u, 0.0, rng).tolist() == u.tolist()
    readings = np.array([noisy_direction(u, 1.0, rng) for _ in range(300)])
    assert np.linalg.norm(readings, axis=1) == pytest.approx(np.ones(300))
    assert readings[:, 7].mean() == pytest.approx(1 / math.sqrt(2), abs=0.01)


def test_a_routing_monitor_that_errs_discards_skill_and_a_moving_block_leaks():
    """20 derived seeds at noise 0.5, paired with plain learning: routing loses more than
    0.02 of capability, and blocking leaks more than half of plain learning's behaviour,
    each in a share of runs whose Wilson interval lies above one half (measured: 20/20 and
    19/20 or more)."""
    from circuits_abm.experiments import monitor_noise

    seeds = [derive_seed(2026, {"experiment": "monitor noise"}, r) for r in range(20)]
    plain = [monitor_noise.noise_run("plain", 0.0, s) for s in seeds]
    routed = [monitor_noise.noise_run("route", 0.5, s) for s in seeds]
    blocked = [monitor_noise.noise_run("block", 0.5, s) for s in seeds]
    losing = sum(p["capability"] - r["capability"] > 0.02
                 for p, r in zip(plain, routed, strict=True))
    leaking = sum(b["held_out"] > 0.5 * p["held_out"]
                  for p, b in zip(plain, blocked, strict=True))
    assert wilson(losing, 20).low > 0.5 and wilson(leaking, 20).low > 0.5
