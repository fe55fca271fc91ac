"""The model follows Mesa's conventions, checked with Mesa's own tools (``batch_run``,
``DataCollector``, ``AgentSet``), not imitations of them."""

from __future__ import annotations

import mesa
import numpy as np
import pandas as pd
import pytest

import circuits_abm as ca
from circuits_abm.engine import linalg
from circuits_abm.engine.model import CircuitsModel
from circuits_abm.engine.records import evaluate_all

STEPS = 300


@pytest.fixture(scope="module")
def batch() -> pd.DataFrame:
    rows = mesa.batch_run(CircuitsModel, {"geometry.sharing": [0.1, 0.9]}, rng=[1, 2],
                          max_steps=STEPS, data_collection_period=1, display_progress=False)
    return pd.DataFrame(rows)


def test_batch_run_takes_flat_dotted_parameters_and_returns_the_reporters(batch):
    runs = batch.drop_duplicates("RunId")
    assert sorted(zip(runs["geometry.sharing"], runs["seed"], strict=True)) == [
        (0.1, 1), (0.1, 2), (0.9, 1), (0.9, 2)]
    expected = {"router_share", "dominant_structure", "mean_fitness", "seed", "share", "kind",
                "lineage", "structure", *(f"reward_{e}" for e in
                                          ("sft_chat", "sft_code", "rl_code", "rl_math"))}
    assert expected <= set(batch.columns)


def test_batch_run_rows_are_the_runs_the_package_records(batch):
    """The last collection of a batch_run row equals the phases table of ``ca.run`` with the
    same scenario and seed at the same step: the same model, seen through Mesa's tools and
    through ours.  (batch_run stops the scenario's 6000-step schedule at ``max_steps``; a
    run built with ``steps=300`` would draw a different schedule.)"""
    scenario = ca.override(ca.load_scenario("standard"), {"geometry.sharing": 0.9})
    result = ca.run(scenario, seed=2, progress=False)
    last = result.phases[result.phases.end == STEPS].set_index("environment")
    row = batch[(batch["geometry.sharing"] == 0.9) & (batch.seed == 2)
                & (batch.Step == batch.Step.max())].iloc[0]
    assert row.router_share == pytest.approx(last.router_share.iloc[0], abs=1e-12)
    for env, reward in last.population_reward.items():
        assert row[f"reward_{env}"] == pytest.approx(reward, abs=1e-12)


def test_collected_agent_shares_are_on_the_simplex_at_every_collection(batch):
    one_run = batch[batch.RunId == batch.RunId.min()]
    totals = one_run.groupby("Step").share.sum()
    assert len(totals) == STEPS // 10 + 1  # the start and every phase end (phase length 10)
    np.testing.assert_allclose(totals, 1.0, atol=1e-12)
    assert set(one_run.kind) <= {"naive", "weighted", "generalist", "router"}


def test_running_turns_false_at_the_end_of_the_schedule_and_run_model_stops():
    model = CircuitsModel("standard", rng=3, steps=120)
    model.run_model()  # Mesa's own loop: `while self.running: self.step()`
    assert model.steps == 120 and not model.running
    with pytest.raises(RuntimeError, match="running"):
        model.step()


def test_agents_expose_share_and_fitness_as_views_on_the_arrays():
    model = CircuitsModel("standard", rng=4, steps=200)
    while model.running:
        model.step()
    assert model.agents.agg("share", sum) == pytest.approx(1.0, abs=1e-12)
    assert [c.share for c in model.circuits] == model.shares.tolist()
    assert [c.fitness for c in model.circuits] == model.fitness.tolist()
    routers = model.agents.select(lambda agent: agent.kind == "router")
    assert routers.agg("share", sum) == pytest.approx(model.router_share, abs=1e-12)
    assert len(model.agents) == len(model.circuits)  # the dead left the AgentSet


def test_the_datacollector_is_mesas_and_tables_come_out_of_it():
    model = CircuitsModel("standard", rng=5, steps=100)
    while model.running:
        model.step()
    assert isinstance(model.datacollector, mesa.DataCollector)
    model_vars = model.datacollector.get_model_vars_dataframe()
    agent_vars = model.datacollector.get_agent_vars_dataframe()
    assert len(model_vars) == 11  # the start and ten phase ends
    assert model_vars.seed.eq(5).all()
    np.testing.assert_allclose(agent_vars.groupby(level="Step").share.sum(), 1.0, atol=1e-12)


def test_seeds_follow_mesa_rng_and_every_run_records_the_seed_it_used():
    assert CircuitsModel("standard").seed == ca.load_scenario("standard").seed
    assert CircuitsModel("standard", rng=7).seed == 7
    assert CircuitsModel("standard", rng=0).seed == 0  # the whole range 0..2**63-1 is allowed
    for bad in (-1, True):  # a bool is not a seed, though Python counts it as an int
        with pytest.raises(ValueError, match="rng"):
            CircuitsModel("standard", rng=bad)
    assert CircuitsModel("standard", seed=8).seed == 8  # the scenario field, by override
    fresh = CircuitsModel("standard", rng=None)  # what batch_run passes for `iterations`
    again = CircuitsModel("standard", rng=fresh.seed)
    for model in (fresh, again):
        for _ in range(50):
            model.step()
    assert fresh.shares.tolist() == again.shares.tolist()
    drawn = {CircuitsModel("standard", rng=None).seed for _ in range(3)}
    assert len(drawn) == 3
    with pytest.raises(ValueError, match="rng"):
        CircuitsModel("standard", rng="tomorrow")


def test_flat_parameters_are_validated_like_a_scenario_file():
    model = CircuitsModel("standard", **{"geometry.sharing": 0.9, "learning.gamma": 0.5})
    assert (model.spec.geometry.sharing, model.spec.learning.gamma) == (0.9, 0.5)
    with pytest.raises(ca.ScenarioError, match="sharing"):
        CircuitsModel("standard", **{"geometry.sharing": 3})
    with pytest.raises(ca.ScenarioError, match="no_such_table"):
        CircuitsModel("standard", **{"no_such_table.x": 1})


def test_no_name_clashes_with_mesa():
    """Mesa's `scenario` stays Mesa's (SolaraViz's reset passes one in); ours is `spec`."""
    model = CircuitsModel("standard", scenario=object(), rng=1)
    assert model.spec.name == "standard"
    assert not isinstance(model.scenario, ca.Scenario)
    assert isinstance(model.steps, int) and model.steps == 0 and model.n_steps == 6000


def test_run_reports_each_phase_once_right_after_its_last_step():
    model = CircuitsModel("standard", steps=95)  # phases of 10 steps; the last has 5
    seen = []
    model.run(lambda phase: seen.append((phase.index, phase.end, model.step_index)))
    assert [index for index, _, _ in seen] == list(range(10))
    assert all(step == end - 1 for _, end, step in seen)
    assert seen[-1][2] == 94


def test_a_run_without_the_datacollector_records_exactly_the_same():
    """``circuits_abm.run`` builds its models with ``collect=False``; Mesa's collector only
    reads the model, so leaving it out must not change a single number."""
    collected = CircuitsModel("standard", rng=7, steps=300)
    collected.run()
    plain = CircuitsModel("standard", rng=7, steps=300, collect=False)
    plain.run()
    assert plain.datacollector is None
    for mine, theirs in zip(plain.recorder.tables(), collected.recorder.tables(), strict=True):
        pd.testing.assert_frame_equal(mine, theirs, check_exact=True)
    np.testing.assert_array_equal(plain.shares, collected.shares)


def test_the_memoised_population_reward_is_never_stale():
    """Records and reporters share one evaluation per state of the population; after every
    step, and after a discard of the quarantine within a step, it must be recomputed."""
    model = CircuitsModel("quarantine", rng=3, steps=400)  # discards at the end: stop before
    envs = model.environments.names
    for _ in range(399):
        model.step()
        _, _, values = evaluate_all(model)
        fresh = linalg.weighted_rows(model.shares, values[: model.layout.n_circuits])
        assert list(model.population_reward().values()) == fresh.tolist()
    assert np.abs(model.layout.quarantine).sum() > 0  # the discard below changes rewards
    before = model.population_reward()
    model.discard_quarantine()
    _, _, values = evaluate_all(model)
    fresh = linalg.weighted_rows(model.shares, values[: model.layout.n_circuits])
    after = dict(zip(envs, fresh.tolist(), strict=True))
    assert model.population_reward() == after != before


def test_the_collected_mean_fitness_is_the_recorded_one_to_the_last_bit():
    """Mesa's ``mean_fitness`` reporter and the timeseries table read the same quantity at
    each phase end; they must agree exactly, not to a tolerance (one sum, in one order).
    Frequent births and a low floor grow the population past the 16 circuits from which a
    BLAS dot product starts to add in another order."""
    model = CircuitsModel("standard", rng=4, steps=2000,
                          **{"variation.rate": 0.5, "selection.extinction_floor": 1e-6})
    model.run()
    collected = model.datacollector.get_model_vars_dataframe().mean_fitness.iloc[1:]
    series, _, _ = model.recorder.tables()
    recorded = series.groupby("step").mean_fitness.first()
    assert len(recorded) == len(collected) == 200 and len(model.circuits) > 16
    assert recorded.tolist() == collected.tolist()
