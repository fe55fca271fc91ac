"""Gradient routing in a network (experiment c of docs/neural.md): the monitor's direction,
each rule's gradient against a hand computation of backpropagation through one tanh layer,
routing by data, the read-outs, the counted claims on a frozen table, and the command."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from circuits_abm.cli import app
from circuits_abm.engine.loading import load_scenario
from circuits_abm.experiments import neural_routing
from circuits_abm.networks import gradient_routing as gr

INPUTS, WIDTH, RANK = 6, 5, 2


@pytest.fixture
def network():
    """Small parameters with a non-zero adapter (so both paths carry a value), a readout
    and an orthogonal unit direction, and one example."""
    params, readout, other = gr.init(jax.random.key(3), INPUTS, WIDTH, RANK)
    params = {**params, "b": jax.random.normal(jax.random.key(4), (RANK, WIDTH)) * 0.3}
    x = jax.random.normal(jax.random.key(5), (1, INPUTS))
    return params, readout, other, x


@pytest.mark.parametrize("angle", [0.0, 17.0, 45.0, 90.0])
def test_the_monitor_is_a_unit_direction_at_the_angle_from_the_readout(network, angle):
    _, readout, other, _ = network
    u = np.asarray(gr.monitor_direction(readout, other, angle))
    assert np.linalg.norm(u) == pytest.approx(1.0, abs=1e-6)
    assert np.dot(u, np.asarray(readout)) == pytest.approx(np.cos(np.radians(angle)), abs=1e-6)


def hand_gradients(params, readout, u, x, y, pay, rule, flagged=0.0):
    """Backpropagation by hand for ``(f - y)^2/2 + (b - m)^2/2`` through
    ``h = tanh(x W1 + b1 + x A B)``: ``dL/dh = (f - y) w_f + (b - m) w_b``; the rule masks it
    (``block``: drop the part along ``u``; ``route``: that part to the adapter, the rest to
    the first layer; ``data``: all of it to one or the other); then
    ``dL/dpre = dL/dh * (1 - h^2)``, ``dL/db1 = dL/dpre``, ``dL/dB = (x A)^T dL/dpre``."""
    p = {k: np.asarray(v, dtype=float) for k, v in params.items()}
    x = np.asarray(x, dtype=float)[0]
    adapter = 0.0 if rule in ("plain", "block") else 1.0
    h = np.tanh(x @ p["w1"] + p["b1"] + adapter * (x @ p["a"]) @ p["b"])
    f, b = h @ p["wf"], h @ np.asarray(readout)
    upstream = (f - y) * p["wf"] + (b - pay) * np.asarray(readout)
    along = np.dot(upstream, u) * np.asarray(u)
    to_base, to_adapter = {
        "plain": (upstream, 0 * upstream),
        "block": (upstream - along, 0 * upstream),
        "route": (upstream - along, along),
        "data": ((1 - flagged) * upstream, flagged * upstream),
    }[rule]
    slope = 1 - h**2
    return {"b1": to_base * slope, "b": np.outer(x @ p["a"], to_adapter * slope),
            "wf": (f - y) * h}


@pytest.mark.parametrize("rule", ["plain", "block", "route"])
@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0])
def test_each_rule_sends_the_gradient_where_the_hand_computation_says(network, rule, angle):
    params, readout, other, x = network
    u = gr.monitor_direction(readout, other, angle)
    y, pay = jnp.array([0.7]), jnp.array([0.5])
    grads = jax.grad(lambda p: jnp.sum(gr.example_losses(
        rule, p, readout, u, x, y, pay, jnp.array([True]), jnp.zeros(1))))(params)
    hand = hand_gradients(params, readout, np.asarray(u), x, 0.7, 0.5, rule)
    for name, expected in hand.items():
        np.testing.assert_allclose(np.asarray(grads[name]), expected, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("flagged", [0.0, 1.0])
def test_routing_by_data_sends_a_flagged_example_only_to_the_adapter(network, flagged):
    params, readout, other, x = network
    u = gr.monitor_direction(readout, other, 0.0)
    grads = jax.grad(lambda p: jnp.sum(gr.example_losses(
        "data", p, readout, u, x, jnp.array([0.7]), jnp.array([0.5]), jnp.array([True]),
        jnp.array([flagged]))))(params)
    hand = hand_gradients(params, readout, np.asarray(u), x, 0.7, 0.5, "data", flagged)
    for name, expected in hand.items():
        np.testing.assert_allclose(np.asarray(grads[name]), expected, atol=1e-5, err_msg=name)
    assert np.any(np.asarray(grads["w1"]) != 0) == (flagged == 0.0)


def test_a_perfect_monitor_removes_the_behaviours_own_gradient_from_the_first_layer(network):
    """By construction (docs/neural.md says so): at 0 degrees the behaviour's gradient at
    ``h`` lies along ``u``, so neither ``block`` nor ``route`` lets it reach ``W1``; plain
    does."""
    params, readout, other, x = network
    u = gr.monitor_direction(readout, other, 0.0)

    def behaviour_gradient(rule):
        def loss(p):
            h = gr.hidden(rule, p, x, u, jnp.zeros(1))
            return 0.5 * jnp.sum((h @ readout - 0.5) ** 2)
        return np.abs(np.asarray(jax.grad(loss)(params)["w1"])).max()

    assert behaviour_gradient("plain") > 1e-3
    assert behaviour_gradient("block") < 1e-7
    assert behaviour_gradient("route") < 1e-7


def test_an_environment_that_does_not_name_the_motivation_trains_only_the_answer(network):
    params, readout, other, x = network
    u = gr.monitor_direction(readout, other, 0.0)
    named = gr.example_losses("plain", params, readout, u, x, jnp.array([0.7]),
                              jnp.array([0.5]), jnp.array([True]), jnp.zeros(1))
    unnamed = gr.example_losses("plain", params, readout, u, x, jnp.array([0.7]),
                                jnp.array([0.5]), jnp.array([False]), jnp.zeros(1))
    h = np.tanh(np.asarray(x)[0] @ np.asarray(params["w1"]))
    answer, behaviour = h @ np.asarray(params["wf"]), h @ np.asarray(readout)
    assert float(unnamed[0]) == pytest.approx(0.5 * (answer - 0.7) ** 2, abs=1e-6)
    assert float(named[0] - unnamed[0]) == pytest.approx(0.5 * (behaviour - 0.5) ** 2, abs=1e-6)


def test_the_tasks_carry_the_scenarios_payments():
    spec = load_scenario("quarantine")
    tasks = gr.routing_tasks(spec, 120, np.random.default_rng(0))
    by_name = dict(zip(tasks.names, tasks.pays, strict=True))
    assert by_name == {"sft_chat": -0.2, "rl_hack_code": 0.5, "rl_hack_math": 0.5,
                       "rl_secure": 0.0, "deployment": 0.0}
    assert list(tasks.named) == [True, True, True, False, False]
    assert tasks.step_mix[:, tasks.held_out].sum() == 0  # deployment is never trained
    np.testing.assert_allclose(tasks.step_mix.sum(axis=1), 1.0)


def test_a_run_reads_what_it_learned_and_discarding_an_unused_adapter_changes_nothing():
    """Plain learning never touches the adapter (``B`` stays 0), so the readings with and
    without it agree; with routing they differ once the adapter has learned."""
    tasks = gr.routing_tasks(load_scenario("quarantine"), 400, np.random.default_rng(0))
    plain = gr.train(tasks, "plain", 0.0, seed=1, checkpoints=4)
    assert list(plain.steps) == [100, 200, 300, 400]
    np.testing.assert_array_equal(plain.behaviour, plain.behaviour_discarded)
    np.testing.assert_array_equal(plain.capability, plain.capability_discarded)
    routed = gr.train(tasks, "route", 0.0, seed=1, checkpoints=4)
    assert np.abs(routed.behaviour - routed.behaviour_discarded).max() > 1e-3
    for readings in (plain, routed):
        assert all(np.isfinite(np.asarray(v)).all() for v in readings)


def test_an_unknown_rule_is_refused_naming_the_allowed_ones():
    tasks = gr.routing_tasks(load_scenario("quarantine"), 40, np.random.default_rng(0))
    with pytest.raises(ValueError, match="plain, block, route, data"):
        gr.train(tasks, "ignore", 0.0, seed=0)


def test_the_first_order_leak_is_plain_times_sine_squared():
    assert neural_routing.first_order_leak(0.4, 30.0) == pytest.approx(0.1)
    assert neural_routing.first_order_leak(0.4, 0.0) == 0.0
    assert neural_routing.first_order_leak(0.4, 90.0) == pytest.approx(0.4)


def frozen_angles() -> pd.DataFrame:
    """Two seeds per point: block leaks more than route in 3 of the 6 pairs at 10 to 30
    degrees, and block's leak grows from the first reading in 4 of its 6 runs there."""
    rows = []
    block = {10.0: (0.2, 0.1), 20.0: (0.1, 0.3), 30.0: (0.4, 0.0)}
    route = {10.0: (0.1, 0.2), 20.0: (0.2, 0.2), 30.0: (0.3, 0.1)}
    for angle in (0.0, 10.0, 20.0, 30.0):
        for seed in (0, 1):
            leak = {"plain": 0.5, "block": block.get(angle, (0, 0))[seed],
                    "route": route.get(angle, (0, 0))[seed]}
            for rule, value in leak.items():
                early = value - 0.05 if (rule == "block" and seed == 0) or (
                    rule == "block" and angle == 20.0) else value + 0.05
                rows.append({"learner": "network", "rule": rule, "angle": angle,
                             "seed": seed, "held_out": value, "held_out_early": early,
                             "capability": 0.4})
    return pd.DataFrame(rows)


def frozen_absorption() -> pd.DataFrame:
    return pd.DataFrame([{"distinguishability": 1.0, "labelled": 0.25, "seed": s,
                          "removed": r, "plain_deployment": 0.2,
                          "deployment_discarded": 0.1} for s, r in enumerate((0.1, 0.3, 0.5))])


def test_the_summary_counts_the_claims_of_a_frozen_table():
    found = neural_routing.summary(frozen_angles(), frozen_absorption())
    # block > route: 10° (0.2>0.1 yes, 0.1>0.2 no), 20° (no, yes), 30° (yes, no): 3 of 6.
    assert found["network"]["block_leaks_more"].startswith("3/6")
    # block grows: seed 0 at 10°, 20°, 30° and seed 1 at 20°: 4 of 6; route never.
    assert found["network"]["leak_grows"]["block"].startswith("4/6")
    assert found["network"]["leak_grows"]["route"].startswith("0/6")
    assert found["absorption"]["d=1, labelled=0.25"].startswith("2/3")


def test_the_table_shows_the_first_order_prediction_beside_each_rule():
    text = neural_routing.markdown(frozen_angles(), frozen_absorption())
    assert "| 30° | network | 0.500 ± 0.000 | 0.200 ± 0.392 (0.125) |" in text
    assert "3/6" in text and "2/3" in text


def test_the_command_writes_the_tables_and_the_figure(tmp_path, monkeypatch):
    """Two seeds, two angles, one labelled share and 300 steps: the command's plumbing."""
    monkeypatch.setattr(neural_routing, "ANGLES", (0.0, 30.0))
    monkeypatch.setattr(neural_routing, "LABELLED", (0.5,))
    monkeypatch.setattr(neural_routing, "DISTINGUISHABILITIES", (1.0,))
    monkeypatch.setattr(neural_routing, "STEPS", 300)
    doc = tmp_path / "page.md"
    doc.write_text("before\n<!-- neural-routing:start -->\nold\n<!-- neural-routing:end -->\n")
    figure = tmp_path / "routing.png"
    result = CliRunner().invoke(app, ["neural", "routing", "--seeds", "2", "--workers", "1",
                                      "--figure", str(figure), "--doc", str(doc)])
    assert result.exit_code == 0, result.output
    assert figure.stat().st_size > 10_000
    page = doc.read_text()
    assert "old" not in page and "| 30° | agent-based model |" in page
    assert "| 1 | 0.5 |" in page


def test_in_the_network_blocking_leaks_more_than_routing_and_the_leak_grows():
    """The two claims of experiment (c) that the agent-based model splits on, as rates over
    20 derived seeds at 10 to 30 degrees (180 short runs): blocking leaks more than routing,
    and under blocking the held-out motivation grows from the first reading to the end.
    Each must hold in a share of paired runs whose Wilson interval lies above one half
    (measured: 52/60 and 57/60)."""
    tasks = [t for t in neural_routing.angle_tasks(20) if 10.0 <= t[1] <= 30.0]
    rows = pd.DataFrame([neural_routing.network_angle_run(*t) for t in tasks])
    claims = neural_routing.angle_claims(rows)["network"]
    for text in (claims["block_leaks_more"], claims["leak_grows"]["block"]):
        low = float(text.split("[")[1].split(",")[0])
        assert low > 0.5, text
