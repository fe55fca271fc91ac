"""How sweeps are compared with the theory, and the derived number-of-environments axis,
on hand-built tables whose answers are counted by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import ROOT

from circuits_abm.analysis.classification import final_routing_information, recency_bias
from circuits_abm.engine.scenario import ScenarioError
from circuits_abm.experiments.agreement import (
    agreement_table,
    fitness_error,
    fitter_when_split,
    theory_agreement,
)
from circuits_abm.experiments.storage import write_json, write_parquet
from circuits_abm.experiments.sweep.design import interchangeable_environments
from circuits_abm.experiments.sweep.journal import AGGREGATE, RESULTS, SWEEP_ECHO
from circuits_abm.experiments.sweep.spec import load_sweep

AGGREGATE_TABLE = pd.DataFrame({
    "theory_agrees": [True, True, False, True],
    "structure_agrees": [True, False, False, True],
    "away_from_boundary": [True, True, False, False],
})
RESULTS_TABLE = pd.DataFrame({
    "point": [0, 0, 0, 1, 1, 2, 2],
    "status": ["ok", "ok", "ok", "ok", "ok", "ok", "failed"],
    "regime": ["conditional_policy", "strategy_churn", "conditional_policy",
               "strategy_churn", "strategy_churn", "conditional_policy", ""],
    "predicted_regime": ["conditional_policy"] * 3 + ["conditional_policy"] * 2
                        + ["conditional_policy"] * 2,
    "mean_fitness": [0.40, 0.30, 0.44, 0.35, 0.37, 0.50, np.nan],
    "predicted_fitness_of_observed": [0.41, 0.28, np.nan, 0.36, 0.33, 0.50, np.nan],
})


def test_theory_agreement_counts_points_overall_and_away_from_the_boundary():
    assert theory_agreement(AGGREGATE_TABLE) == {
        "points": 4, "regime": 0.75, "structure": 0.5,
        "away_points": 2, "away_regime": 1.0, "away_structure": 0.5,
    }


def test_no_point_away_from_the_boundary_gives_nan_not_a_crash():
    table = AGGREGATE_TABLE.assign(away_from_boundary=False)
    found = theory_agreement(table)
    assert found["away_points"] == 0 and np.isnan(found["away_regime"])


def test_fitness_error_is_the_median_absolute_error_over_the_runs_the_theory_covers():
    # errors |0.40-0.41|, |0.30-0.28|, |0.35-0.36|, |0.37-0.33|, |0.50-0.50| over 5 of 6 ok runs
    error, covered = fitness_error(RESULTS_TABLE)
    assert error == pytest.approx(np.median([0.01, 0.02, 0.01, 0.04, 0.0]))
    assert covered == pytest.approx(5 / 6)


def test_where_seeds_split_the_prediction_is_fitter_when_its_runs_measured_more():
    # Point 0 splits: its conditional policies measured 0.42 on average against 0.30.  Point
    # 1 never reached the prediction and point 2 always did: neither is split.
    assert fitter_when_split(RESULTS_TABLE) == (1, 1)
    flipped = RESULTS_TABLE.assign(mean_fitness=[0.20, 0.30, 0.24, 0.35, 0.37, 0.5, np.nan])
    assert fitter_when_split(flipped) == (0, 1)


def test_split_points_are_counted_over_every_point_not_just_the_last():
    # Two points split and at both the prediction's runs measured more: 2 of 2 (a counter
    # that was overwritten instead of added to would say 1 of 2).
    two = pd.DataFrame({
        "point": [0, 0, 1, 1, 2, 2],
        "status": ["ok"] * 6,
        "regime": ["conditional_policy", "strategy_churn"] * 3,
        "predicted_regime": ["conditional_policy"] * 6,
        "mean_fitness": [0.5, 0.3, 0.6, 0.4, 0.2, 0.3],
    })
    assert fitter_when_split(two) == (2, 3)


def as_written(results: pd.DataFrame, aggregate: pd.DataFrame):
    """The hand-built tables with the bookkeeping columns every sweep writes (run ids,
    seeds, the axis ``x``, counts and regime shares), which reading a folder checks."""
    from circuits_abm.regimes import REGIMES  # noqa: PLC0415

    n = len(results)
    results = results.assign(run_id=[f"r{i}" for i in range(n)], replicate=0, seed=range(n),
                             structure="", x=results["point"] * 0.1)
    shares = {f"share_{regime}": 0.0 for regime in REGIMES}
    aggregate = aggregate.assign(point=range(len(aggregate)), runs=2, failed=0,
                                 x=np.arange(len(aggregate)) * 0.1, **shares)
    return results, aggregate


def test_agreement_table_has_one_row_per_sweep_folder(tmp_path):
    results, aggregate = as_written(RESULTS_TABLE, AGGREGATE_TABLE)
    write_parquet(tmp_path / RESULTS, results)
    write_parquet(tmp_path / AGGREGATE, aggregate)
    write_json(tmp_path / SWEEP_ECHO, {"sweep": {"name": "demo"}, "axes": ["x"]})
    lines = agreement_table([tmp_path]).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("| diagram | points | regime agrees |")
    assert lines[0].endswith("| seeds split: prediction fitter |")
    assert lines[0].count("|") == lines[1].count("|") == lines[2].count("|") == 10
    assert lines[2] == "| `demo` | 4 | 75% | 50% | 2 | 100% | 50% | 0.0100 (83%) | 1 of 1 |"


def test_agreement_table_refuses_a_sweep_without_predictions(tmp_path):
    results, aggregate = as_written(RESULTS_TABLE, AGGREGATE_TABLE)
    write_parquet(tmp_path / RESULTS, results.drop(columns="predicted_fitness_of_observed"))
    write_parquet(tmp_path / AGGREGATE, aggregate)
    write_json(tmp_path / SWEEP_ECHO, {"sweep": {"name": "old"}, "axes": ["x"]})
    with pytest.raises(ValueError, match="older version"):
        agreement_table([tmp_path])


def test_the_environment_count_axis_makes_interchangeable_environments(tmp_path):
    assert interchangeable_environments(3) == [{"name": "e00"}, {"name": "e01"}, {"name": "e02"}]
    for bad in (0, -2, 2.5, True, "4"):
        with pytest.raises(ScenarioError, match="environments.count"):
            interchangeable_environments(bad)
    path = tmp_path / "count.toml"
    base = (ROOT / "scenarios" / "standard.toml").as_posix()
    path.write_text(f'name = "count"\nbase = "{base}"\nseeds = 1\n'
                    '[axes."environments.count"]\nvalues = [2, 5]\n')
    sweep = load_sweep(path)
    sizes = [len(task["scenario"]["environments"]) for task in sweep.tasks]
    assert sizes == [2, 5]


def trajectory_rows(phase, trained, rewards, routing=None):
    """Phase-table rows of one phase: ``rewards`` of the dominant circuit per environment."""
    rows = []
    for env, reward in rewards.items():
        rows.append({
            "phase": phase, "environment": env, "held_out": False,
            "training_weight": float(env == trained), "dominant_reward": reward,
            "routing": (routing or {}).get(env, {"root": 1.0}),
        })
    return rows


def test_recency_bias_is_the_reward_on_what_was_trained_minus_the_mean_elsewhere():
    # Phase 0 trains a: 0.5 - mean(0.1, -0.1) = 0.5; phase 1 trains b: 0.3 - mean(0.2, 0.0)
    # = 0.2; the bias is their mean, 0.35.
    table = pd.DataFrame(
        trajectory_rows(0, "a", {"a": 0.5, "b": 0.1, "c": -0.1})
        + trajectory_rows(1, "b", {"a": 0.2, "b": 0.3, "c": 0.0})
    )
    assert recency_bias(table) == pytest.approx(0.35)


def test_final_routing_information_reads_the_last_phase_only():
    # At the last phase each of two environments goes to its own child for sure: I = log 2,
    # normalised by log 2.  An earlier phase routes both to one child and does not count.
    sure = {"a": {"0": 1.0, "1": 0.0}, "b": {"0": 0.0, "1": 1.0}}
    blind = {"a": {"0": 0.5, "1": 0.5}, "b": {"0": 0.5, "1": 0.5}}
    table = pd.DataFrame(
        trajectory_rows(0, "a", {"a": 0.0, "b": 0.0}, blind)
        + trajectory_rows(1, "b", {"a": 0.0, "b": 0.0}, sure)
    )
    assert final_routing_information(table) == pytest.approx(1.0)
    assert final_routing_information(table[table.phase == 0].assign(phase=1)) == pytest.approx(0.0)
