"""Motivation directions, the block and route update rules, quarantine, alarm and attribution.

Every expected value is computed by hand from the update rule (docs/model.md): a mechanism
at 0 taking one noiseless step of rate eta in environment e moves by eta * (d_e, m_e), and
the monitor removes (block) or quarantines (route) that move's component along u.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from helpers import make_scenario
from typer.testing import CliRunner

from circuits_abm.cli import app
from circuits_abm.engine.environments import build_environments
from circuits_abm.engine.loading import scenario_from_dict
from circuits_abm.engine.model import CircuitsModel
from circuits_abm.engine.monitoring import attribution, monitor_direction
from circuits_abm.engine.scenario import ScenarioError
from circuits_abm.experiments.runs import run

ETA = 0.5
HACKABLE = [{"name": "e0", "motivations": {"hack": 0.6}}, {"name": "e1"}]


def one_mechanism(rule: str, angle: float = 0.0, environments=HACKABLE,
                  **overrides) -> CircuitsModel:
    """A lone naive mechanism, noiseless and unselected, in a two-environment world where e0
    rewards the motivation ``hack``; its first phase trains e0."""
    spec = make_scenario(
        2, environments=environments, motivations=[{"name": "hack"}],
        monitor={"rule": rule, "angle": angle, "discard": "never"},
        geometry={"sharing": 0.0}, population={"initial": ["n"]},
        circuits={"naive": {"learning_rate": ETA}}, learning={"noise": 0.0},
        variation={"rate": 0.0}, selection={"strength": 0.0}, **overrides,
    )
    return CircuitsModel(spec, seed=0)


def behaviour(model, row=0, array="theta") -> float:
    """The motivation a mechanism expresses: the sum of its two pathways."""
    a, b = model.environments.pathways("hack")
    values = getattr(model.layout, array)[row]
    return float(values[a] + values[b])


def test_a_motivation_adds_two_pathways_and_leaves_the_sharing_geometry_alone():
    spec = make_scenario(2, environments=HACKABLE, motivations=[{"name": "hack"}],
                         geometry={"sharing": 0.3})
    envs = build_environments(spec)
    assert envs.demands.shape == (2, 4)
    assert envs.capability @ envs.capability.T == pytest.approx(np.array([[1, 0.3], [0.3, 1]]))
    assert envs.demands[:, 2] == pytest.approx([0.6, 0.0])  # m_e times gain 1
    assert list(envs.pathways("hack")) == [2, 3]
    assert envs.metric.others.tolist() == [[-1], [-1], [3], [2]]
    assert list(envs.metric.upkeep) == [0, 0, 0.1, 0.1]


def test_the_behaviour_saturates_whichever_pathway_carries_it():
    # R = <theta, d> - theta^T A theta / 2 on the pathways (a, b) with d = (m, m):
    # m (a + b) - (a + b)^2 / 2 - upkeep (a^2 + b^2) / 2, the same for (mu, 0) and (0, mu).
    from circuits_abm.engine import learning

    envs = build_environments(make_scenario(2, environments=HACKABLE,
                                            motivations=[{"name": "hack"}]))
    m, mu, upkeep = 0.6, 0.4, 0.1
    expected = m * mu - mu**2 / 2 - upkeep * mu**2 / 2
    for theta_ab in ((mu, 0.0), (0.0, mu), (mu / 2, mu / 2)):
        theta = np.zeros((1, 4))
        theta[0, 2:] = theta_ab
        reward = learning.leaf_rewards(theta, envs.demands, envs.metric, envs.relevance)[0, 0]
        spread = upkeep * (theta_ab[0] ** 2 + theta_ab[1] ** 2) / 2
        assert reward == pytest.approx(m * mu - mu**2 / 2 - spread)
    assert expected < m * mu - mu**2 / 2


def test_plain_learning_picks_up_the_motivation_the_environment_rewards():
    model = one_mechanism("plain")
    model.step()
    assert behaviour(model) == pytest.approx(2 * ETA * 0.6)  # eta * m on each pathway


def test_block_drops_the_monitored_part_of_the_update():
    model = one_mechanism("block")
    model.step()
    envs = model.environments
    assert behaviour(model) == pytest.approx(0.0)
    assert model.layout.theta[0, :2] == pytest.approx(ETA * envs.capability[0])
    assert model.layout.quarantine[0] == pytest.approx(np.zeros(4))


def test_route_moves_the_monitored_part_into_quarantine_where_it_still_counts():
    model = one_mechanism("route")
    model.step()
    assert behaviour(model) == pytest.approx(0.0)
    assert behaviour(model, array="quarantine") == pytest.approx(2 * ETA * 0.6)
    # the next step's gradient sees A (theta + q): with q = eta m (1, 1) the pull on each
    # pathway is (2 + upkeep) eta m, so q gains eta (m - (2 + upkeep) eta m) per pathway
    model.step()
    per_pathway = ETA * 0.6 + ETA * (0.6 - (2 + 0.1) * ETA * 0.6)
    assert behaviour(model, array="quarantine") == pytest.approx(2 * per_pathway)


def test_the_quarantine_table_adds_up_what_each_step_of_a_phase_routed():
    model = one_mechanism("route")
    masses = []
    for _ in range(20):  # two phases of 10 steps
        model.step()
        masses.append(model.routed_mass)
    _, _, quarantine = model.recorder.tables()
    assert masses[0] != 0 and masses[1] != 0  # e0 rewards the motivation; e1 does not
    assert quarantine.routed.tolist() == pytest.approx([sum(masses[:10]), sum(masses[10:])])


def test_an_imperfect_monitor_lets_the_behaviour_through_at_sin_squared_the_angle():
    # u = ((cos + sin)/sqrt 2, (cos - sin)/sqrt 2) on the pathways; the update eta m (1, 1)
    # loses (delta . u) u, which leaves a behaviour of 2 eta m sin^2(angle).
    for angle in (0.0, 20.0, 45.0, 70.0, 90.0):
        model = one_mechanism("block", angle=angle)
        u = monitor_direction(model.spec, model.environments)
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        assert u[2:] == pytest.approx([(c + s) / math.sqrt(2), (c - s) / math.sqrt(2)])
        assert np.linalg.norm(u) == pytest.approx(1.0)
        model.step()
        assert behaviour(model) == pytest.approx(2 * ETA * 0.6 * s**2, abs=1e-12)


def test_quarantine_is_discarded_at_the_end_before_the_final_evaluation():
    spec = make_scenario(
        2, steps=40, environments=HACKABLE, motivations=[{"name": "hack"}],
        monitor={"rule": "route"}, variation={"rate": 0.0},
    )
    result = run(spec, seed=1)
    phases = result.phases
    last = phases[phases.phase == phases.phase.max()]
    before = phases[phases.phase == phases.phase.max() - 1]
    assert (last.quarantined_hack == 0).all()
    assert (before.quarantined_hack.abs() > 0).any()
    assert result.quarantine.module_norm.iloc[-1] == 0.0
    assert result.quarantine.module_norm.iloc[-2] > 0.0


def test_a_discard_intervention_and_a_rule_switch_apply_at_their_step():
    model = one_mechanism("route", interventions=[
        {"step": 2, "discard": True}, {"step": 3, "rule": "plain"}])
    model.step()
    model.step()
    assert behaviour(model, array="quarantine") > 0
    model.step()  # step 2: emptied first, then learns again under route from q = 0
    assert behaviour(model, array="quarantine") == pytest.approx(2 * ETA * 0.6)
    model.step()  # step 3: plain: theta learns what theta + q still lacks, q = 0.3 (1, 1)
    assert model.update_rule == "plain"
    assert behaviour(model) == pytest.approx(2 * ETA * (0.6 - 2.1 * 0.3))
    assert behaviour(model, array="quarantine") == pytest.approx(2 * ETA * 0.6)


def test_the_alarm_records_the_first_step_the_module_norm_crosses_and_can_halt():
    # Under route in e0 the module holds q (1, 1) with q_{k+1} = q_k + eta (m - (2 + upkeep)
    # q_k) per pathway, norm sqrt(2) q_k: 0.4243 after the first step, then 0.4031, 0.4041,
    # ... toward sqrt(2) 0.3 / 1.05 = 0.4041.  An alarm at 0.42 fires on step 0 and halts;
    # one at 0.43 never fires.
    def run_with(alarm):
        model = one_mechanism("route", steps=30)
        model.spec = model.spec.model_copy(update={"monitor": model.spec.monitor.model_copy(
            update={"alarm": alarm, "halt_on_alarm": True})})
        model.run()
        return model

    fired = run_with(0.42)
    assert fired.alarm_step == 0 and fired.halted and fired.steps == 1
    with pytest.raises(RuntimeError, match="ended after step 1"):  # where it halted
        fired.step()
    quiet = run_with(0.43)
    assert quiet.alarm_step is None and not quiet.halted and quiet.steps == 30
    for _ in range(2):  # and it stays the schedule's end however often it is asked
        with pytest.raises(RuntimeError, match="ended after step 30:"):
            quiet.step()
    assert quiet.module_norm() == pytest.approx(math.sqrt(2) * 0.3 / 1.05, rel=1e-6)


def test_attribution_flags_the_environments_that_pushed_the_quarantine_beyond_noise():
    spec = make_scenario(
        4, motivations=[{"name": "hack"}],
        environments=[{"name": "e0", "motivations": {"hack": 0.5}},
                      {"name": "e1", "motivations": {"hack": 0.5}}, {"name": "e2"},
                      {"name": "e3", "motivations": {"hack": -0.2}}],
    )
    # Phases 0-7 are the unsettled first half (before 15 / 2) and are ignored.  In 8-15,
    # e0 pushes 1.1 and 0.9 (mean 1, standard error 0.1: t = 10), e1 0.4 and 0.2 (t = 3),
    # e2 jitters around 0, e3 pulls down.
    table = pd.DataFrame({
        "phase": range(16),
        "trained": ["e0", "e1", "e2", "e3"] * 4,
        "routed": [9.0] * 8 + [1.1, 0.4, 0.2, -1.0, 0.9, 0.2, -0.1, -1.2],
    })
    found = attribution(table, spec)
    assert found["pushed"] == pytest.approx({"e0": 2.0, "e1": 0.6, "e2": 0.1, "e3": -2.2})
    assert found["flagged"] == ["e0"]  # e1: mean 0.3, error 0.1: t = 3, not above 3
    assert found["hackable"] == ["e0", "e1"]
    assert found["precision"] == 1.0 and found["recall"] == 0.5


def test_pushed_up_is_a_three_standard_error_test():
    from circuits_abm.engine.monitoring import pushed_up

    assert pushed_up([1.0, 1.2, 0.8, 1.1])  # mean 1.025, error 0.085: t = 12
    assert not pushed_up([0.1, -0.1, 0.2, -0.15])  # mean 0.0125: t < 1
    assert not pushed_up([-1.0, -1.1, -0.9])
    assert not pushed_up([5.0])  # one phase is no evidence


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"environments": [{"name": "e0", "motivations": {"greed": 0.5}}, {"name": "e1"}]},
         "environments.0.motivations.greed`: unknown motivation; allowed: hack"),
        ({"monitor": {"direction": "greed"}}, "monitor.direction`: unknown motivation"),
        ({"monitor": {"angle": 120}}, "monitor.angle"),
        ({"monitor": {"discard": 0}}, "monitor.discard"),
        ({"monitor": {"discard": 500}}, "monitor.discard`: step 500 is not before the end"),
    ],
)
def test_bad_motivation_fields_name_the_field(change, fragment):
    data = {"name": "t", "steps": 200, "motivations": [{"name": "hack"}],
            "environments": [{"name": "e0"}, {"name": "e1"}], **change}
    with pytest.raises(ScenarioError) as err:
        scenario_from_dict(data)
    assert fragment in str(err.value)


def test_block_without_a_motivation_is_an_error_and_the_cli_exits_2(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('name = "bad"\n[[environments]]\nname = "a"\n[monitor]\nrule = "block"\n')
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "block and route need a motivation" in result.output


def test_a_mutation_passes_the_monitor_like_a_learning_update():
    from circuits_abm.engine.circuits import Mechanism
    from circuits_abm.engine.variation import Context, make_offspring

    spec = make_scenario(2, environments=HACKABLE, motivations=[{"name": "hack"}],
                         monitor={"rule": "route"})
    envs = build_environments(spec)
    u = monitor_direction(spec, envs)
    for rule in ("plain", "block", "route"):
        parent = Mechanism("naive", np.zeros(4), np.array([1.0, 0.0]))
        ctx = Context(np.random.default_rng(3), spec, envs.cues[0], envs.cue_centre(), u, rule)
        child = make_offspring(parent, "mutate", ctx)
        change = np.random.default_rng(3)  # the same draws: pick, then the noise
        change.integers(1)
        noise = change.normal(0.0, spec.variation.mutation_scale, size=4)
        along = (noise @ u) * u
        expected_theta = noise if rule == "plain" else noise - along
        assert child.theta == pytest.approx(expected_theta)
        assert child.quarantine == pytest.approx(along if rule == "route" else np.zeros(4))


@pytest.mark.parametrize("rule", ["plain", "route"])
def test_the_model_hands_its_update_rule_to_the_mutations_it_makes(rule):
    # Learning is off (rate 0) and every offspring is a mutant: under `plain` some
    # offspring differ from their parent along the monitored direction; under `route` that
    # part goes to quarantine instead, so some quarantine is filled and no theta moves
    # along it.
    spec = make_scenario(
        2, environments=HACKABLE, motivations=[{"name": "hack"}],
        monitor={"rule": rule, "discard": "never"}, population={"initial": ["n"]},
        circuits={"naive": {"learning_rate": 0.0}}, selection={"strength": 0.0},
        variation={"rate": 3.0, "operators": {"mutate": 1.0}},
    )
    model = CircuitsModel(spec, seed=0)
    for _ in range(6):
        model.step()
    u = model.monitor
    by_id = {c.unique_id: c for c in model.circuits}
    moves = [float((c.root.theta - by_id[c.parent_id].root.theta) @ u)
             for c in model.circuits if c.parent_id in by_id]
    assert len(moves) > 3
    quarantine = np.abs(model.layout.quarantine).sum()
    if rule == "plain":
        assert max(map(abs, moves)) > 1e-3 and quarantine == 0.0
    else:
        assert max(map(abs, moves)) < 1e-12 and quarantine > 1e-3


def test_a_motivation_an_environment_does_not_name_neither_pays_nor_decays_there():
    # e0 names the motivation with 0 (secure: the behaviour costs mu^2 / 2 there), e1 does
    # not name it.  Noiseless steps from a behaviour of 0.4 on pathway a: training in e1 leaves
    # it alone; training in e0 pulls it down by eta (A theta)_a = eta (1.1 * 0.4 + 0).
    envs_spec = [{"name": "e0", "motivations": {"hack": 0.0}}, {"name": "e1"}]
    for trained, expected in (("e1", 0.4), ("e0", 0.4 - ETA * 1.1 * 0.4)):
        model = one_mechanism("plain", environments=envs_spec,
                              schedule={"order": "sequence", "sequence": [trained]})
        a, _ = model.environments.pathways("hack")
        model.layout.theta[0, a] = 0.4
        model.step()
        assert model.layout.theta[0, a] == pytest.approx(expected)
    rewards = model.environments.relevance
    assert rewards[0, 2:].tolist() == [1, 1] and rewards[1, 2:].tolist() == [0, 0]
