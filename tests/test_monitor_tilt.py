"""A monitor that errs toward the shared capability (``monitor.tilt = "capability"``): the
direction it watches, and "capability kept" as an outcome that can fail, against a hand
derivation, as rates over 20 derived seeds of ``sweeps/monitor_tilt.toml``.

The hand derivation (docs/motivations.md). A learner whose every update has its part along
the monitored direction ``u`` moved into a quarantine module reaches the same target ``t``
as plain learning (module included), and after the discard keeps ``t - (t.u) u``. Here ``t``
is the generalist's: the mean training demand ``d`` on the capability dimensions and the
motivation ``mu`` of plain learning on its pathways (``mu / 2`` on each). With ``u`` the
behaviour direction turned by ``x`` toward the unit ``d``, ``t.u = cos(x) mu / sqrt 2 +
sin(x) |d|``, the capability lost is ``(t.u)^2 sin^2(x) / 2`` and the motivation left is
``mu - sqrt(2) (t.u) cos(x)``: negative once the module took more behaviour than was
learned.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers import ROOT

from circuits_abm.engine.environments import build_environments
from circuits_abm.engine.loading import load_scenario, override
from circuits_abm.engine.monitoring import monitor_direction
from circuits_abm.experiments.catalogue import rate_of
from circuits_abm.experiments.sweep.runner import run_sweep
from circuits_abm.experiments.sweep.spec import AxisSpec, Sweep, load_sweep

ANGLES = (0.0, 30.0, 45.0)


@pytest.mark.parametrize("angle", [0.0, 20.0, 45.0, 90.0])
def test_a_capability_tilted_monitor_turns_from_the_behaviour_toward_the_mean_demand(angle):
    spec = override(load_scenario("quarantine"), {"monitor.tilt": "capability",
                                                  "monitor.angle": angle})
    envs = build_environments(spec)
    u = monitor_direction(spec, envs)
    a, b = envs.pathways("reward_seeking")
    shared = envs.capability[envs.training].mean(axis=0)
    radians = np.radians(angle)
    expected = np.zeros_like(u)
    expected[a] = expected[b] = np.cos(radians) / np.sqrt(2)
    expected[: envs.width] = np.sin(radians) * shared / np.linalg.norm(shared)
    np.testing.assert_allclose(u, expected, atol=1e-12)


def test_the_default_monitor_still_errs_toward_the_inert_combination():
    spec = override(load_scenario("quarantine"), {"monitor.angle": 90.0})
    u = monitor_direction(spec, build_environments(spec))
    a, b = build_environments(spec).pathways("reward_seeking")
    assert u[a] == pytest.approx(np.sqrt(0.5)) and u[b] == pytest.approx(-np.sqrt(0.5))
    assert np.count_nonzero(u) == 2


@pytest.fixture(scope="module")
def tilt(tmp_path_factory):
    """``sweeps/monitor_tilt.toml`` at three of its angles: 180 runs."""
    full = load_sweep(ROOT / "sweeps" / "monitor_tilt.toml")
    axes = {**full.spec.axes, "monitor.angle": AxisSpec(values=list(ANGLES))}
    sweep = Sweep(full.spec.model_copy(update={"axes": axes}), full.base, full.source)
    table = run_sweep(sweep, tmp_path_factory.mktemp("tilt"), "processes", os.cpu_count())
    assert (table.status == "ok").all()
    return table


def runs_at(table, angle, rule):
    rows = table[(table["monitor.angle"] == angle) & (table["monitor.rule"] == rule)]
    assert len(rows) >= 20
    return rows


def predicted(plain_motivation: float, angle: float) -> tuple[float, float]:
    """The hand derivation of the module docstring: capability lost and motivation left."""
    spec = load_scenario("quarantine")
    envs = build_environments(spec)
    norm = np.linalg.norm(envs.capability[envs.training].mean(axis=0))
    x = np.radians(angle)
    along = np.cos(x) * plain_motivation / np.sqrt(2) + np.sin(x) * norm
    return 0.5 * along**2 * np.sin(x) ** 2, plain_motivation - np.sqrt(2) * along * np.cos(x)


def test_routing_through_a_capability_tilted_monitor_discards_capability(tilt):
    """Capability kept fails: at 30 and 45 degrees a routed run's capability after the
    discard is more than 0.02 below plain learning's median (each point has its own derived
    seeds), in a share whose Wilson interval lies above 0.7; at 0 degrees the means agree."""
    for angle in (30.0, 45.0):
        route, plain = runs_at(tilt, angle, "route"), runs_at(tilt, angle, "plain")
        short = route.capability_final < plain.capability_final.median() - 0.02
        assert rate_of(list(short)).low > 0.7, (angle, route.capability_final.describe())
    route, plain = runs_at(tilt, 0.0, "route"), runs_at(tilt, 0.0, "plain")
    assert abs(plain.capability_final.mean() - route.capability_final.mean()) < 0.005


@pytest.mark.parametrize("angle", [30.0, 45.0])
def test_what_routing_discards_follows_the_hand_derivation(tilt, angle):
    """Mean over 20 seeds against the derivation, within 0.03 (it ignores selection,
    noise and the pathways' upkeep): capability lost and the motivation left."""
    route, plain = runs_at(tilt, angle, "route"), runs_at(tilt, angle, "plain")
    lost, left = predicted(plain.motivation_training.mean(), angle)
    assert plain.capability_final.mean() - route.capability_final.mean() == pytest.approx(
        lost, abs=0.03)
    assert route.motivation_held_out.mean() == pytest.approx(left, abs=0.03)


def test_blocking_a_capability_tilted_monitor_costs_more_capability_than_routing(tilt):
    """At 45 degrees a blocked run keeps less capability than the routed runs' median, in a
    share whose Wilson interval lies above 0.7 (measured means: 0.22 against 0.28)."""
    block, route = runs_at(tilt, 45.0, "block"), runs_at(tilt, 45.0, "route")
    below = block.capability_final < route.capability_final.median()
    assert rate_of(list(below)).low > 0.7
