"""The holdout check (experiments.holdout) and what each model says it leaves out: tables
counted by hand on frozen data, the away-from-the-boundary flag, and the command end to
end on a small folder."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

import circuits_abm as ca
from circuits_abm.analysis.theory import uncovered_parameters
from circuits_abm.cli import app
from circuits_abm.experiments.holdout import holdout_table, markdown
from circuits_abm.experiments.sweep.aggregate import _theory_columns

PREDICTED = pd.DataFrame({
    "scenario": ["a", "b"],
    "environments": [3, 4],
    "predicted_regime": ["conditional_policy", "conditional_policy"],
    "predicted_structure": ["conditional_policy[specialist{x}, specialist{y}]",
                            "conditional_policy[specialist{p}, specialist{q}]"],
    "router_probability": [0.9, 0.1],
    "path_regime": ["conditional_policy", "strategy_churn"],
    "path_structure": ["conditional_policy[specialist{x}, specialist{y}]", "strategy_churn{p,q}"],
    "uncovered": ["", "gamma"],
    "path_uncovered": ["", "initial router"],
})
OBSERVED = pd.DataFrame({
    "scenario": ["a"] * 3 + ["b"] * 4,
    "seed": range(7),
    "regime": ["conditional_policy", "conditional_policy", "strategy_churn",
               "strategy_churn", "conditional_policy", "strategy_churn", "conditional_policy"],
    "structure": ["conditional_policy[specialist{x}, specialist{y}]"] * 2 + ["strategy_churn{x,y}"]
                 + ["strategy_churn{p,q}", "conditional_policy[specialist{p}, specialist{q}]",
                    "strategy_churn{p,q}", "conditional_policy[specialist{p}, specialist{q}]"],
})


def test_the_holdout_table_counts_majorities_by_hand():
    table = holdout_table(PREDICTED, OBSERVED).set_index("scenario")
    # a: 2 of 3 runs are the predicted router.
    assert table.loc["a", "majority_regime"] == "conditional_policy"
    assert table.loc["a", "majority_structure_runs"] == 2
    assert table.loc["a", ["path_regime_agrees", "path_structure_agrees",
                           "end_point_regime_agrees"]].all()
    # b: a 2-2 tie, broken alphabetically: conditional_policy before strategy_churn.
    assert table.loc["b", "majority_regime"] == "conditional_policy"
    assert table.loc["b", "majority_regime_runs"] == 2 and table.loc["b", "runs"] == 4
    assert not table.loc["b", "path_regime_agrees"]
    assert table.loc["b", "end_point_structure_agrees"]
    text = markdown(holdout_table(PREDICTED, OBSERVED))
    assert "- With the path: root regime agrees on 1/2" in text
    assert "- End point alone: root regime agrees on 2/2" in text
    assert "| gamma; initial router |" in text and "| -; - |" in text


def test_the_end_point_theory_names_the_parameters_it_leaves_out():
    standard = ca.load_scenario("standard")
    assert uncovered_parameters(standard) == ()
    assert ca.predict(standard).uncovered == ()
    on_policy = ca.override(standard, {"learning.gamma": 0.2})
    assert uncovered_parameters(on_policy) == ("gamma",)
    assert ca.predict(on_policy).to_dict()["uncovered"] == ["gamma"]
    assert "motivations" in uncovered_parameters(ca.load_scenario("quarantine"))


def _point(uncovered) -> dict:
    runs = pd.DataFrame({"predicted_regime": ["conditional_policy"] * 2,
                         "predicted_structure": ["s"] * 2, "predicted_margin": [0.5, 0.5],
                         "predicted_recency_margin": [np.inf, np.inf]})
    if uncovered is not None:
        runs["predicted_uncovered"] = uncovered
    row = {"mean_fitness_std": 0.01, "recency_bias_std": 0.0,
           "majority_regime": "conditional_policy", "majority_structure": "s"}
    return _theory_columns(runs, row)


def test_a_point_with_a_parameter_the_theory_leaves_out_is_never_away_from_the_boundary():
    # Margin 0.5 against a fitness spread of 0.01: away, unless something is left out.
    assert _point("")["away_from_boundary"]
    assert _point(None)["away_from_boundary"]  # a journal written before the column
    assert not _point("gamma")["away_from_boundary"]
    assert _point("gamma")["theory_agrees"]


def test_the_holdout_command_predicts_runs_and_writes_its_table(tmp_path):
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "pair.toml").write_text(
        'name = "pair"\nsteps = 300\n[[environments]]\nname = "a"\n[[environments]]\n'
        'name = "b"\n[geometry]\nsharing = 0.9\n')
    doc = tmp_path / "doc.md"
    doc.write_text("before\n<!-- holdout:start -->\nstale table\n<!-- holdout:end -->\nafter\n")
    result = CliRunner().invoke(app, ["holdout", str(folder), "--runs", "2", "--workers", "1",
                                      "--readme", str(doc)])
    assert result.exit_code == 0, result.output
    written = doc.read_text()
    assert "stale table" not in written and "| `pair` | 2 |" in written
    assert written.startswith("before\n") and written.endswith("after\n")
    assert "agrees on" in written


def test_the_holdout_command_refuses_an_empty_folder(tmp_path):
    result = CliRunner().invoke(app, ["holdout", str(tmp_path)])
    assert result.exit_code == 2
    assert "no scenario file" in result.output
