"""Neural runs: the tasks carry the scenario's geometry, the read-outs mean what they say
on networks whose answer is known by construction, REINFORCE follows the regression
gradient in expectation, and a run goes through the same classifier and files as any."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import ROOT, make_scenario
from typer.testing import CliRunner

import circuits_abm as ca
from circuits_abm.analysis.classification import classify
from circuits_abm.cli import app
from circuits_abm.networks import networks, readouts, training
from circuits_abm.networks.settings import NeuralSettings
from circuits_abm.networks.tasks import build_tasks

STANDARD = str(ROOT / "scenarios" / "standard.toml")


@pytest.mark.parametrize(("sharing", "disting"), [(0.1, 0.9), (0.5, 0.3), (-0.2, 1.0)])
def test_teachers_overlap_as_the_sharing_says_and_cues_as_the_distinguishability(sharing,
                                                                                 disting):
    """``E[y_e y_f] = <d_e, d_f>`` for ``z ~ N(0, I)``: the teachers' Gram matrix is the
    demand overlap ``s J + (1 - s) I``; the cues' is ``(1 - d) J + d I``."""
    spec = make_scenario(4, geometry={"sharing": sharing, "distinguishability": disting})
    tasks = build_tasks(spec, 100, np.random.default_rng(0))
    ones, eye = np.ones((4, 4)), np.eye(4)
    teachers, cues = tasks.teachers[0], tasks.cues[0]
    np.testing.assert_allclose(teachers @ teachers.T, sharing * ones + (1 - sharing) * eye,
                               atol=1e-12)
    np.testing.assert_allclose(cues @ cues.T, (1 - disting) * ones + disting * eye, atol=1e-12)


def test_the_schedule_trains_held_out_environments_never_and_marks_each_phase_end():
    spec = make_scenario(3, environments=[{"name": "a"}, {"name": "b"},
                                          {"name": "c", "held_out": True}])
    tasks = build_tasks(spec, 95, np.random.default_rng(1))
    assert (tasks.step_mix[:, 2] == 0).all() and np.allclose(tasks.step_mix.sum(axis=1), 1)
    assert tasks.phase_end.sum() == len(tasks.phases) == 10  # phase length 10, last cut to 5
    assert [i for i in np.flatnonzero(tasks.phase_end)] == [p.end - 1 for p in tasks.phases]


def test_an_intervention_changes_the_teachers_from_its_step():
    spec = make_scenario(2, steps=100, geometry={"sharing": 0.0}, interventions=[
        {"step": 40, "nodes": ["e1"], "sharing": 0.8}])
    tasks = build_tasks(spec, 100, np.random.default_rng(0))
    assert tasks.step_version[39] == 0 and tasks.step_version[40] == 1
    after = tasks.teachers[1]
    assert after[0] @ after[1] == pytest.approx(0.8)


def test_a_network_that_outputs_nothing_scores_zero_and_each_expert_is_scored_alone():
    """``R_e = E[y^2]/2 - E[(f - y)^2]/2`` is 0 for ``f = 0``, whatever the teacher; an
    expert's own score uses its own output."""
    settings = NeuralSettings(arch="moe", experts=2)
    params = networks.init(settings, jax.random.key(0), 3, 3)
    params["experts"]["w2"] = params["experts"]["w2"].at[0].set(0.0)  # expert 0 outputs 0
    params["experts"]["b2"] = jnp.zeros(2)
    teachers, cues = jnp.eye(3), jnp.eye(3)
    z = jax.random.normal(jax.random.key(1), (256, 3))
    whole, routing, each, _, _ = training.score(settings, params, teachers, cues, z)
    np.testing.assert_allclose(each[:, 0], 0.0, atol=1e-7)
    np.testing.assert_allclose(routing, 0.5, atol=1e-7)  # a zero gate routes uniformly
    assert not np.allclose(each[:, 1], 0.0)


def test_a_hand_set_gate_that_routes_perfectly_reads_as_a_conditional_policy():
    """Orthogonal cues and a gate ``W = 40 Q^T``: environment e reaches expert e with
    probability ``e^40 / (e^40 + 3)``, one to nine digits; the classifier, given the
    scores at every phase end, reads a router over four specialists."""
    spec = make_scenario(4, steps=400, geometry={"sharing": 0.1, "distinguishability": 1.0})
    tasks = build_tasks(spec, 400, np.random.default_rng(0))
    settings = NeuralSettings(arch="moe", experts=4)
    params = networks.init(settings, jax.random.key(0), 4, 4)
    cues = jnp.asarray(tasks.cues[0])
    params["gate"]["w"] = jnp.concatenate([jnp.zeros((4, 4)), 40.0 * cues.T])
    z = jax.random.normal(jax.random.key(2), (64, 4))
    whole, routing, each, capability, motivation = training.score(
        settings, params, jnp.asarray(tasks.teachers[0]), cues, z)
    expected = np.exp(40.0) / (np.exp(40.0) + 3.0)
    np.testing.assert_allclose(np.diag(np.asarray(routing)), expected, rtol=1e-9)
    rows = len(tasks.phases)
    scores = training.Scores(np.tile(np.asarray(whole), (rows, 1)),
                             np.tile(np.asarray(routing), (rows, 1, 1)),
                             np.tile(np.asarray(each), (rows, 1, 1)),
                             np.tile(np.asarray(capability), (rows, 1)),
                             np.tile(np.asarray(motivation), (rows, 1, 1)))
    result = classify(readouts.phase_rows(settings, tasks, scores))
    assert result.regime == "conditional_policy"
    assert result.canonical.count("specialist") == 4


@pytest.mark.slow
def test_one_shared_map_trained_on_identical_teachers_reads_as_a_generalist():
    """Sharing 1: every environment has the same teacher, so whatever was trained last,
    the network is as good everywhere; it approaches the best score, 1/2."""
    spec = make_scenario(4, steps=3000, geometry={"sharing": 1.0, "distinguishability": 0.9})
    result = ca.neural.run(spec, arch="mlp", seed=1)
    assert result.regime == "ecological_generalist"
    last = result.phases[result.phases.phase == result.phases.phase.max()]
    assert (last.population_reward > 0.45).all()


def test_reinforce_follows_the_regression_gradient_in_expectation():
    """For a Gaussian policy the REINFORCE update ``(r - b) grad log pi`` has the mean
    ``(y - f) grad f``, the negative gradient of the regression loss: averaged over many
    action draws it matches it within the Monte Carlo error."""
    settings = NeuralSettings(arch="mlp", width=4, policy_noise=0.5)
    params = networks.init(settings, jax.random.key(0), 2, 2)
    z = jax.random.normal(jax.random.key(1), (8, 2))
    q = jnp.zeros((8, 2))
    y = z @ jnp.array([1.0, -0.5])
    regression = jax.grad(lambda p: jnp.mean(training.example_losses(
        settings, p, z, q, y, jnp.zeros(8, bool), jnp.zeros(8))))(params)

    def reinforce(key):
        noise = jax.random.normal(key, (8,))
        return jax.grad(lambda p: jnp.mean(training.example_losses(
            settings, p, z, q, y, jnp.ones(8, bool), noise)))(params)

    draws = jax.vmap(reinforce)(jax.random.split(jax.random.key(2), 20000))
    for name in ("w2", "b2"):
        mean = np.asarray(draws["expert"][name]).mean(axis=0)
        error = np.asarray(draws["expert"][name]).std(axis=0) / np.sqrt(20000)
        np.testing.assert_array_less(np.abs(mean - np.asarray(regression["expert"][name])),
                                     5 * error + 1e-6)


def test_a_neural_run_is_classified_stored_and_drawn_like_any_run(tmp_path):
    runner = CliRunner()
    out = tmp_path / "net"
    done = runner.invoke(app, ["neural", "run", STANDARD, "--arch", "moe", "--seed", "1",
                               "--steps", "400", "--setting", "routing=top1", "--out",
                               str(out)])
    assert done.exit_code == 0, done.output
    assert "regime:" in done.output and (out / "phases.parquet").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"]["arch"] == "moe" and summary["model"]["routing"] == "top1"
    again = runner.invoke(app, ["classify", str(out)])
    assert again.exit_code == 0 and summary["regime"] in again.output
    assert runner.invoke(app, ["figures", "run", str(out)]).exit_code == 0
    assert (out / "figures" / "summary.png").stat().st_size > 10_000


def test_the_same_seed_trains_the_same_network():
    spec = make_scenario(2, steps=200)
    first, second = (ca.neural.run(spec, arch="moe", seed=5) for _ in range(2))
    assert first.phases.equals(second.phases)


def test_what_networks_do_not_model_is_refused_and_bad_settings_are_named():
    with pytest.raises(ca.ScenarioError, match="monitor.rule.*route.*neural routing"):
        ca.neural.run("quarantine", steps=10)
    result = CliRunner().invoke(app, ["neural", "run", STANDARD, "--setting", "widht=3"])
    assert result.exit_code == 2 and "widht" in result.output


def aggregate_of(majorities: dict[tuple[float, float], str], p_cp: float = 0.5):
    import pandas as pd  # noqa: PLC0415

    return pd.DataFrame([{"d": d, "s": s, "runs": 20, "majority_regime": regime,
                          "share_conditional_policy": p_cp, "low_conditional_policy": 0.3,
                          "high_conditional_policy": 0.7} for (d, s), regime in
                         majorities.items()])


def test_two_maps_agree_point_by_point_and_the_rate_counts_the_agreeing_points():
    from circuits_abm.experiments.agreement import map_agreement, map_agreement_table  # noqa: PLC0415

    left = aggregate_of({(0.1, 0.1): "strategy_churn", (0.9, 0.1): "conditional_policy",
                         (0.1, 0.9): "ecological_generalist", (0.9, 0.9): "ecological_generalist"})
    right = aggregate_of({(0.1, 0.1): "ecological_generalist", (0.9, 0.1): "conditional_policy",
                          (0.1, 0.9): "ecological_generalist",
                          (0.9, 0.9): "ecological_generalist"})
    compared = map_agreement(left, right, ["d", "s"])
    assert compared.agrees.tolist() == [False, True, True, True]  # sorted by d, then s
    table = map_agreement_table(compared, ["d", "s"], "A", "B")
    assert "3/4 = 0.75" in table and table.count("**no**") == 1
    with pytest.raises(ValueError, match="same points"):
        map_agreement(left, right.iloc[:3], ["d", "s"])


def test_stage_rates_count_each_stage_separately():
    from circuits_abm.experiments.catalogue import Outcome  # noqa: PLC0415

    outcomes = [Outcome("x", seed, "B", observed, 1.0, "A", before)
                for seed, (before, observed) in enumerate([("A", "B"), ("A", "C"), ("Z", "B")])]
    rates = ca.neural.stage_rates(outcomes, "net").set_index("stage")
    assert (rates.loc["before", "k"], rates.loc["end", "k"]) == (2, 2)
    assert rates.loc["end", "n"] == 3 and rates.loc["end", "low"] < 2 / 3 < rates.loc["end", "high"]


TWO_POINTS = """
seeds = 2
root_seed = 3
steps = 200
[axes."geometry.distinguishability"]
values = [0.2, 0.9]
[axes."geometry.sharing"]
values = [0.1]
"""


def test_a_neural_sweep_runs_networks_and_compares_with_the_agent_based_sweep(tmp_path):
    base = f'base = "{STANDARD}"\n'
    (tmp_path / "agents.toml").write_text('name = "a"\n' + base + TWO_POINTS)
    (tmp_path / "net.toml").write_text('name = "n"\n' + base + 'model = "neural"\n'
                                       + TWO_POINTS + '[neural]\nrouting = "top1"\n')
    agents, nets = ca.load_sweep(tmp_path / "agents.toml"), ca.load_sweep(tmp_path / "net.toml")
    assert agents.tasks[0]["seed"] == nets.tasks[0]["seed"]  # the same derived seeds
    assert agents.tasks[0]["run_id"] != nets.tasks[0]["run_id"]
    runner = CliRunner()
    for name in ("agents", "net"):
        done = runner.invoke(app, ["sweep", str(tmp_path / f"{name}.toml"), "--out",
                                   str(tmp_path / name), "--executor", "serial", "--quiet"])
        assert done.exit_code == 0, done.output
    results, _, _ = ca.load_results(tmp_path / "net")
    assert (results.status == "ok").all() and results.regime.ne("").all()
    compared = runner.invoke(app, ["figures", "compare", str(tmp_path / "agents"),
                                   str(tmp_path / "net"), "--out", str(tmp_path / "c.png")])
    assert compared.exit_code == 0, compared.output
    assert "of the points" in compared.output and (tmp_path / "c.png").stat().st_size > 10_000
    (tmp_path / "wrong.toml").write_text('name = "w"\n' + base + TWO_POINTS
                                         + '[neural]\narch = "mlp"\n')
    with pytest.raises(ca.ScenarioError, match="model"):
        ca.load_sweep(tmp_path / "wrong.toml")


def behaviour_network(value: float) -> tuple[NeuralSettings, dict]:
    """A two-expert mixture whose every expert's behaviour is the constant ``value`` (its
    behaviour readout is 0 and its bias ``value``), for one motivation."""
    settings = NeuralSettings(arch="moe", experts=2)
    params = networks.init(settings, jax.random.key(0), 3, 3, motivations=1)
    params["experts"]["bm"] = jnp.full((2, 1), value)
    return settings, params


def test_a_constant_behaviour_earns_the_motivation_reward_only_where_it_is_named():
    """Behaviour ``c`` everywhere: the score's motivation is ``c``, and ``R_e`` adds
    ``m c - c^2 / 2`` in an environment that names the motivation with payment ``m``,
    nothing where it is not named (by hand: ``0.5 * 0.3 - 0.09 / 2 = 0.105``)."""
    settings, params = behaviour_network(0.3)
    teachers, cues = jnp.eye(3), jnp.eye(3)
    motive = jnp.array([[0.5], [0.0], [-0.2]])
    named = jnp.array([[True], [False], [True]])
    z = jax.random.normal(jax.random.key(1), (256, 3))
    whole, _, _, capability, motivation = training.score(settings, params, teachers, cues, z,
                                                         motive, named)
    np.testing.assert_allclose(motivation, 0.3, atol=1e-6)
    np.testing.assert_allclose(np.asarray(whole) - np.asarray(capability),
                               [0.105, 0.0, -0.2 * 0.3 - 0.045], atol=1e-6)


def test_the_regression_loss_adds_the_named_motivations_distance_to_its_payment():
    settings, params = behaviour_network(0.3)
    z = jax.random.normal(jax.random.key(1), (2, 3))
    q = jnp.zeros((2, 3))
    y = jnp.array([0.4, -0.1])
    answer = networks.apply(settings, params, z, q).answer
    losses = training.example_losses(settings, params, z, q, y, jnp.zeros(2, bool),
                                     jnp.zeros((2, 2)), jnp.array([[0.5], [0.5]]),
                                     jnp.array([[True], [False]]))
    expected = 0.5 * (np.asarray(answer) - np.asarray(y)) ** 2 + np.array([0.5 * 0.2**2, 0])
    np.testing.assert_allclose(losses, expected, atol=1e-6)


def test_reinforce_on_a_named_motivation_follows_its_regression_gradient_in_expectation():
    """The behaviour's REINFORCE update has the mean ``(m - b) grad b``, as for the answer."""
    settings = NeuralSettings(arch="mlp", width=4, policy_noise=0.5)
    params = networks.init(settings, jax.random.key(0), 2, 2, motivations=1)
    z = jax.random.normal(jax.random.key(1), (8, 2))
    q, y = jnp.zeros((8, 2)), z @ jnp.array([1.0, -0.5])
    pays, named = jnp.full((8, 1), 0.5), jnp.ones((8, 1), bool)
    regression = jax.grad(lambda p: jnp.mean(training.example_losses(
        settings, p, z, q, y, jnp.zeros(8, bool), jnp.zeros((8, 2)), pays, named)))(params)

    def reinforce(key):
        noise = jax.random.normal(key, (8, 2))
        return jax.grad(lambda p: jnp.mean(training.example_losses(
            settings, p, z, q, y, jnp.ones(8, bool), noise, pays, named)))(params)

    draws = jax.vmap(reinforce)(jax.random.split(jax.random.key(2), 20000))
    for name in ("wm", "bm"):
        mean = np.asarray(draws["expert"][name]).mean(axis=0)
        error = np.asarray(draws["expert"][name]).std(axis=0) / np.sqrt(20000)
        np.testing.assert_array_less(np.abs(mean - np.asarray(regression["expert"][name])),
                                     5 * error + 1e-6)


def test_a_scenario_with_motivations_runs_and_writes_the_monitoring_summary(tmp_path):
    result = ca.neural.run("unreliable_evaluations", seed=1, steps=300)
    assert {"motivation_reward_seeking", "quarantined_reward_seeking",
            "population_capability"} <= set(result.phases.columns)
    monitoring = result.summary["monitoring"]
    assert monitoring["rule"] == "plain" and monitoring["monitored"] == "reward_seeking"
    assert set(monitoring["final_motivation"]) == set(result.phases.environment)
    assert ca.load_run(result.save(tmp_path / "run")).summary["monitoring"] == monitoring


@pytest.mark.slow
def test_in_a_network_an_evaluation_that_looks_like_chat_reads_more_aligned_than_deployment():
    """The agent-based catalogue's unreliable-evaluations claim, in a top-1 mixture, as a
    rate over 20 derived seeds of 2000 steps: the evaluation environment's reward seeking
    is below the deployment environment's in a share whose Wilson interval lies above one
    half (measured: 20/20)."""
    from circuits_abm.analysis.rates import rate_of  # noqa: PLC0415
    from circuits_abm.experiments.sweep.design import derive_seed  # noqa: PLC0415

    flags = []
    for r in range(20):
        final = ca.neural.run("unreliable_evaluations", seed=derive_seed(11, {}, r),
                              steps=2000, settings={"routing": "top1"}
                              ).summary["monitoring"]["final_motivation"]
        flags.append(final["evaluation"] < final["deployment"])
    assert rate_of(flags).low > 0.5, flags


def test_the_neural_catalogue_command_writes_its_tables_and_figure(tmp_path):
    doc = tmp_path / "page.md"
    doc.write_text("<!-- neural-catalogue:start -->\nSTALE\n<!-- neural-catalogue:end -->\n")
    figure = tmp_path / "rates.png"
    result = CliRunner().invoke(app, ["neural", "catalogue", "switching_fast", "--runs", "1",
                                      "--workers", "1", "--figure", str(figure),
                                      "--doc", str(doc)])
    assert result.exit_code == 0, result.output
    page = doc.read_text()
    assert "STALE" not in page and "Agent-based model, 1 seeds" in page
    assert "`switching_fast`" in page and figure.stat().st_size > 10_000
