"""The theory checked on scenarios it was not built on: predictions first, then runs.

For every scenario of a folder (``scenarios/holdout/`` by default, written after the theory
and the path model, and never used to tune them) this computes, before any run:

* the end-point prediction (``analysis.theory.predict``): the fittest structure;
* the prediction with the path (``experiments.path_model.path_columns``): a router only if
  the chain of splits reaches one in at least half of the runs, and then the chain's most
  probable structure that has one.

Then it runs the scenario on ``runs`` seeds derived from a root seed, classifies every
run, and reports the simulated majority of the root regime and of the whole nested
structure (each as ``k/n``), and whether each prediction names it.  A scenario counts as
agreeing when the prediction equals the majority; a majority is not a certainty, so each
row also gives the majority's share of the runs, and what each model leaves out of the
scenario (``theory.uncovered_parameters``, ``assembly.UNCOVERED``): a scenario where
something is left out lies near the boundary by definition.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from circuits_abm.analysis.rates import wilson
from circuits_abm.analysis.theory import predict
from circuits_abm.engine.loading import load_scenario
from circuits_abm.engine.scenario import Scenario
from circuits_abm.experiments.catalogue import catalogue_seeds
from circuits_abm.experiments.executors import map_in_processes
from circuits_abm.experiments.path_model import path_columns
from circuits_abm.experiments.runs import run
from circuits_abm.experiments.sweep.aggregate import majority

HOLDOUT_RUNS = 20
HOLDOUT_ROOT_SEED = 2027


def holdout_scenarios(folder: str | Path) -> list[Scenario]:
    """Every scenario file in ``folder``, by file name (a bad file is a ``ScenarioError``
    naming it)."""
    return [load_scenario(path) for path in sorted(Path(folder).glob("*.toml"))]


def predictions(spec: Scenario) -> dict[str, object]:
    """Both predictions for ``spec``, from its parameters alone (no run is looked at)."""
    end = predict(spec)
    path = path_columns(spec)
    with_path = path["path_regime"] != ""
    return {
        "scenario": spec.name,
        "environments": len(spec.environment_names),
        "predicted_regime": end.regime,
        "predicted_structure": end.structure,
        "router_probability": path["router_probability"],
        "path_regime": path["path_regime"] if with_path else end.regime,
        "path_structure": path["path_structure"] if with_path else end.structure,
        "uncovered": ", ".join(end.uncovered),
        "path_uncovered": path["path_uncovered"].replace(",", ", "),
    }


def observe(spec: Scenario, seed: int) -> dict[str, object]:
    """One run of ``spec`` with ``seed``, classified: its root regime and canonical structure."""
    summary = run(spec, seed=seed, progress=False).summary
    return {"scenario": spec.name, "seed": seed, "regime": summary["regime"],
            "structure": summary["classification"]["canonical"]}


def run_holdout(specs: list[Scenario], runs: int = HOLDOUT_RUNS,
                root_seed: int = HOLDOUT_ROOT_SEED, workers: int = 1,
                progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The predictions (one row per scenario, computed first) and the runs (one row per
    scenario and seed, ``runs`` seeds each derived from ``root_seed``), in ``workers``
    processes."""
    predicted = map_in_processes(predictions, [(spec,) for spec in specs], workers,
                                 "predictions", "scenario", progress)
    tasks = [(spec, seed) for spec in specs for seed in catalogue_seeds(spec.name, runs, root_seed)]
    observed = map_in_processes(observe, tasks, workers, "holdout", "run", progress)
    return pd.DataFrame(predicted), pd.DataFrame(observed)


def holdout_table(predicted: pd.DataFrame, observed: pd.DataFrame) -> pd.DataFrame:
    """One row per scenario: the predictions, the simulated majorities with their counts,
    and whether each prediction names the majority (root regime and nested structure)."""
    rows = []
    for _, p in predicted.iterrows():
        runs = observed[observed.scenario == p.scenario]
        regime, regime_count = _majority(runs.regime)
        structure, structure_count = _majority(runs.structure)
        rows.append({
            **p.to_dict(),
            "runs": len(runs),
            "majority_regime": regime,
            "majority_regime_runs": regime_count,
            "majority_structure": structure,
            "majority_structure_runs": structure_count,
            "end_point_regime_agrees": p.predicted_regime == regime,
            "end_point_structure_agrees": p.predicted_structure == structure,
            "path_regime_agrees": p.path_regime == regime,
            "path_structure_agrees": p.path_structure == structure,
        })
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    """The table as markdown, with the agreement counts (and Wilson intervals) below."""
    lines = ["| scenario | envs | predicted with the path (P router) | simulated majority "
             "(runs) | root agrees | structure agrees | end point alone: root, structure "
             "| left out: by the end point; by the path |",
             "|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        p = "" if np.isnan(r.router_probability) else f" ({r.router_probability:.2f})"
        lines.append(
            f"| `{r.scenario}` | {r.environments} | `{r.path_structure}`{p} "
            f"| `{r.majority_structure}` ({r.majority_structure_runs}/{r.runs}; root "
            f"`{r.majority_regime}` {r.majority_regime_runs}/{r.runs}) "
            f"| {_mark(r.path_regime_agrees)} | {_mark(r.path_structure_agrees)} "
            f"| {_mark(r.end_point_regime_agrees)}, {_mark(r.end_point_structure_agrees)} "
            f"| {r.uncovered or '-'}; {r.path_uncovered or '-'} |")
    lines.append("")
    n = len(table)
    for label, column in (("With the path: root regime", "path_regime_agrees"),
                          ("With the path: nested structure", "path_structure_agrees"),
                          ("End point alone: root regime", "end_point_regime_agrees"),
                          ("End point alone: nested structure", "end_point_structure_agrees")):
        lines.append(f"- {label} agrees on {wilson(int(table[column].sum()), n).text()}.")
    return "\n".join(lines)


def _majority(values: pd.Series) -> tuple[str, int]:
    """The most frequent value (ties broken alphabetically, as in the sweeps) and its count."""
    best = majority(values)
    return best, int((values == best).sum())


def _mark(agrees: bool) -> str:
    return "yes" if agrees else "**no**"
