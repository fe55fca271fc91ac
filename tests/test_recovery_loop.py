"""The monitor-only rule, payoffs that change mid-run, the probe, and the recovery loop
(docs/motivations.md, "The recovery loop" and "Attribution that survives specialisation").

Expected values are derived by hand: a payoff set to 0 turns the pull on the behaviour into
pure decay, the probe is ``(g.u)(m_e - mu_ablated)`` (reward gradient of the ablated
parameters read along ``u``), and the alarm's signal under ``watch`` is the share-weighted
largest ``theta.u`` of each circuit, computed here from a frozen population.  The loop's
claim is a rate over 20 derived seeds.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from helpers import FROZEN, make_scenario
from typer.testing import CliRunner

from circuits_abm.analysis.rates import wilson
from circuits_abm.cli import app
from circuits_abm.engine.loading import load_scenario, override
from circuits_abm.engine.model import CircuitsModel
from circuits_abm.engine.monitoring import probe, probe_attribution
from circuits_abm.engine.scenario import ScenarioError
from circuits_abm.experiments import attribution, monitor_noise, recovery
from circuits_abm.experiments.runs import fixed_interventions, run
from circuits_abm.experiments.sweep.design import derive_seed

ETA, M, UPKEEP = 0.5, 0.6, 0.1
HACKABLE = [{"name": "e0", "motivations": {"hack": M}},
            {"name": "e1", "motivations": {"hack": -0.2}}]


def lone_mechanism(rule: str = "plain", steps: int = 40, **fields) -> CircuitsModel:
    """A lone naive mechanism, noiseless and unselected; e0 pays ``M`` for ``hack``, e1
    penalises it; phases of 10 steps, e0 first."""
    spec = make_scenario(
        2, steps=steps, environments=HACKABLE, motivations=[{"name": "hack"}],
        monitor={"rule": rule, "discard": "never", **fields.pop("monitor", {})},
        geometry={"sharing": 0.0}, population={"initial": ["n"]},
        circuits={"naive": {"learning_rate": ETA}}, learning={"noise": 0.0},
        variation={"rate": 0.0}, selection={"strength": 0.0}, **fields,
    )
    return CircuitsModel(spec, rng=0)


def behaviour(model: CircuitsModel) -> float:
    a, b = model.environments.pathways("hack")
    return float(model.layout.theta[0, a] + model.layout.theta[0, b])


def test_a_payoff_set_to_zero_turns_the_pull_into_decay():
    # After the fix e0 demands 0 on both pathways and still names the motivation, so one
    # step in e0 scales the behaviour by 1 - eta (2 + upkeep).
    model = lone_mechanism(interventions=[{"step": 5, "pays": {"e0": {"hack": 0.0}}}])
    for _ in range(5):
        model.step()
    before = behaviour(model)
    model.step()
    e0 = model.environments.index("e0")
    assert model.environments.motive[e0, 0] == 0.0
    assert model.environments.demands[e0, 2:].tolist() == [0.0, 0.0]
    assert behaviour(model) == pytest.approx(before * (1 - ETA * (2 + UPKEEP)))


def test_watching_learns_exactly_like_plain_and_records_what_it_sees():
    spec = load_scenario("quarantine")
    plain = run(override(spec, {"monitor.rule": "plain"}), seed=3, steps=600, progress=False)
    watched = run(override(spec, {"monitor.rule": "watch"}), seed=3, steps=600, progress=False)
    assert plain.phases.equals(watched.phases)
    assert (plain.quarantine.routed == 0).all()
    assert (watched.quarantine.routed != 0).mean() > 0.9


def test_the_watch_alarm_reads_the_strongest_expression_of_each_circuit():
    spec = make_scenario(2, environments=HACKABLE, motivations=[{"name": "hack"}],
                         monitor={"rule": "watch"}, population={"initial": ["R[n,n]", "n"]},
                         **FROZEN)
    model = CircuitsModel(spec, rng=0)
    u = model.monitor
    model.layout.theta[:] = 0.0
    model.layout.theta[:, 2:] = [[0.1, 0.3], [-0.4, 0.0], [0.2, 0.2]]  # router's two, then n
    model.shares[:] = [0.25, 0.75]
    seen = model.layout.theta @ u
    assert model.monitor_signal() == pytest.approx(0.25 * max(seen[0], seen[1]) + 0.75 * seen[2])
    assert seen[0] == pytest.approx(0.4 / math.sqrt(2))


@pytest.mark.parametrize("armed, fires", [(0, 0), (5, 5), (12, 20)])
def test_the_alarm_waits_until_it_is_armed(armed, fires):
    # e0 (steps 0-9) raises the behaviour from the first step; e1 (10-19) overshoots it
    # below 0 at once (eta (2 + upkeep) > 1), so an alarm armed at 12 waits for e0 at 20.
    model = lone_mechanism("watch", monitor={"alarm": 0.01, "alarm_from": armed})
    while model.running:
        model.step()
    assert model.alarm_step == fires


@pytest.mark.parametrize("angle", [0.0, 30.0])
def test_the_probe_is_the_payoff_less_what_the_ablated_parameters_express(angle):
    # (d_e - A_e theta_abl) . u = (g.u) m_e - (g.u) mu_abl (the upkeep term is upkeep
    # theta_abl.u = 0); g = (1, 1), g.u = sqrt(2) cos(angle) for the inert tilt.
    model = lone_mechanism(monitor={"angle": angle})
    model.layout.theta[0] = [0.3, -0.2, 0.25, 0.05]
    u = model.monitor
    theta = model.layout.theta[0]
    ablated = theta - (theta @ u) * u
    mu = ablated[2] + ablated[3]
    gu = u[2] + u[3]
    assert gu == pytest.approx(math.sqrt(2) * math.cos(math.radians(angle)))
    found = probe(model)
    assert found["e0"] == pytest.approx(gu * (M - mu))
    assert found["e1"] == pytest.approx(gu * (-0.2 - mu))
    if angle == 0.0:  # the identity: nothing is left to express along the behaviour
        assert mu == pytest.approx(0.0, abs=1e-12)
    assert probe_attribution(model)["flagged"] == ["e0"]


def test_a_fixed_grader_stays_fixed_and_the_other_changes_stay():
    spec = load_scenario("recovery_loop")
    interventions = fixed_interventions(spec, ["rl_hack_code"], 1200)
    later = next(iv for iv in interventions if iv["step"] == 1500)
    assert later["pays"] == {"rl_hack_math": {"reward_seeking": 0.5}}
    fix = interventions[-1]
    assert fix["step"] == 1200 and fix["pays"] == {"rl_hack_code": {"reward_seeking": 0.0}}
    both = fixed_interventions(spec, ["rl_hack_code", "rl_hack_math"], 1200)
    assert [iv["step"] for iv in both] == [1200]  # nothing left of the step-1500 change


def test_the_restart_is_the_same_run_up_to_the_checkpoint():
    spec = load_scenario("recovery_loop")
    result = run(spec, seed=5, progress=False)
    restart = result.summary["monitoring"]["recovery"]["restart_step"]
    assert restart is not None
    halted = CircuitsModel(spec, rng=5)
    halted.run()
    _, before, _ = halted.recorder.tables()
    early = before[before.end <= restart].reset_index(drop=True)
    assert len(early) > 100
    assert early.equals(result.phases[result.phases.end <= restart].reset_index(drop=True))


@pytest.mark.parametrize("fields, message", [
    ({"monitor": {"rule": "watch", "restart_lag": 100}}, "monitor.restart_lag"),
    ({"interventions": [{"step": 3, "pays": {"nowhere": {"hack": 0.0}}}]},
     "interventions.0.pays"),
    ({"interventions": [{"step": 3, "pays": {"e0": {"greed": 0.0}}}]},
     "interventions.0.pays.e0.greed"),
])
def test_a_loop_without_an_alarm_and_unknown_payoffs_are_refused(fields, message):
    with pytest.raises(ScenarioError, match=message.replace(".", r"\.")):
        make_scenario(2, environments=HACKABLE, motivations=[{"name": "hack"}], **fields)


def test_the_recovery_loop_keeps_the_hack_out_of_deployment():
    """20 derived seeds, paired: with the loop (watch, restart 300 steps before the alarm)
    deployment's reward seeking ends below plain learning's without it, and the probe names
    exactly the two environments that pay.  Measured: 20/20 and 20/20."""
    seeds = [derive_seed(2026, {"experiment": "recovery"}, r) for r in range(20)]
    looped = [recovery.arm_run("watch", 300, s) for s in seeds]
    plain = [recovery.arm_run("plain", None, s) for s in seeds]
    below = sum(a["held_out"] < b["held_out"] - 0.1 for a, b in zip(looped, plain, strict=True))
    exact = sum(a["flagged"] == recovery.EXACT for a in looped)
    assert wilson(below, 20).low > 0.5 and wilson(exact, 20).low > 0.5
    assert np.mean([a["held_out"] for a in looped]) < 0.0 < np.mean([b["held_out"] for b in plain])


def test_the_probe_finds_the_paying_environments_where_the_flows_do_not():
    """At 20 degrees (where the probe is not an identity) under route, 20 derived seeds per
    variant: in the specialised population and with a weakly hackable environment the probe
    reaches precision and recall of 0.9 in a share of runs whose Wilson interval lies above
    one half, and the flows do not (measured: 20/20 against 1/20 and 0/20)."""
    seeds = [derive_seed(2026, {"experiment": "attribution"}, r) for r in range(20)]
    for variant in list(attribution.VARIANTS)[1:]:
        rows = pd.DataFrame([row for s in seeds
                             for row in attribution.attribution_run(variant, "20°", "route", s)])
        found = attribution.table(rows).set_index("method")
        assert wilson(int(found.loc["probe", "good"]), 20).low > 0.5, variant
        assert wilson(int(found.loc["flows", "good"]), 20).high < 0.5, variant


def test_the_recovery_attribution_and_noise_commands_write_their_tables(tmp_path, monkeypatch):
    monkeypatch.setattr(recovery, "LAGS", (300,))
    monkeypatch.setattr(recovery, "LOOPS", ("watch",))
    monkeypatch.setattr(recovery, "BASELINES", ("plain",))
    monkeypatch.setattr(attribution, "VARIANTS", {"canonical": {}})
    monkeypatch.setattr(attribution, "MONITORS", {"0°": {}})
    monkeypatch.setattr(attribution, "RULES", ("watch",))
    monkeypatch.setattr(monitor_noise, "NOISES", (0.5,))
    monkeypatch.setattr(monitor_noise, "RULES", ("route",))
    doc = tmp_path / "page.md"
    doc.write_text("<!-- recovery:start -->\n<!-- recovery:end -->\n"
                   "<!-- attribution:start -->\n<!-- attribution:end -->\n"
                   "<!-- monitor-noise:start -->\n<!-- monitor-noise:end -->\n")
    for command in ("recovery", "attribution", "noise"):
        result = CliRunner().invoke(app, ["motivations", command, "--seeds", "2",
                                          "--workers", "1", "--doc", str(doc)])
        assert result.exit_code == 0, result.output
    page = doc.read_text()
    assert "| plain, no loop |" in page and "| watch + recovery, restart 300 steps" in page
    assert "| canonical | 0° | watch | probe |" in page
    assert "| route | 0.5 |" in page
