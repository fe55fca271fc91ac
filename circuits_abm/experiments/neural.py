"""Neural runs: a scenario trained into a network (``circuits_abm.networks``), classified by
the same classifier, stored in the same files.  This is ``ca.neural``.

``run`` trains one network and returns a ``RunResult`` whose ``phases``, ``timeseries`` and
``summary`` have the agent-based schema (the summary adds a ``model`` entry with the
network's settings), so ``classify``, ``figures run``, ``load_run`` and the sweep tables
work on it unchanged.  A sweep file with ``model = "neural"`` (and an optional ``[neural]``
table of settings) runs every point as networks through the ordinary sweep machinery.

Examples
--------
>>> import circuits_abm as ca
>>> result = ca.neural.run("standard", arch="moe", seed=1, steps=600)  # doctest: +SKIP
>>> result.regime  # doctest: +SKIP
'conditional_policy'
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from circuits_abm.analysis.rates import rate_of
from circuits_abm.defaults import CATALOGUE_RUNS
from circuits_abm.engine.loading import load_scenario, revalidated
from circuits_abm.engine.scenario import Scenario
from circuits_abm.experiments.catalogue import Outcome, catalogue_seeds, outcome_of
from circuits_abm.experiments.executors import map_in_processes
from circuits_abm.experiments.runs import (
    RunResult,
    classification_fields,
    prediction_fields,
    run_fields,
)
from circuits_abm.networks import readouts
from circuits_abm.networks.settings import NeuralSettings
from circuits_abm.networks.tasks import build_tasks
from circuits_abm.networks.training import train


def run(scenario: Scenario | str | Path, arch: str | None = None, seed: int | None = None,
        steps: int | None = None, settings: NeuralSettings | dict[str, Any] | None = None
        ) -> RunResult:
    """Train a network on a scenario and return its records, classified.

    Parameters
    ----------
    scenario
        A ``Scenario``, a scenario file, or a built-in's name.
    arch
        ``"mlp"``, ``"moe"`` or ``"nested"`` (overrides ``settings``; default ``moe``).
    seed, steps
        Override the scenario's seed and number of steps (one step is one update).
    settings
        ``NeuralSettings`` or a dict of its fields (width, experts, learning rate, ...).

    Returns
    -------
    RunResult
        The same tables and summary as an agent-based run; ``summary["model"]`` holds the
        network's settings and parameter count.

    Raises
    ------
    ScenarioError
        If the scenario cannot run, or its monitor blocks or routes (networks here learn by
        the plain rule; ``circuits-abm neural routing`` models gradient routing).
    pydantic.ValidationError
        If a setting is out of range.
    """
    spec = revalidated(scenario) if isinstance(scenario, Scenario) else load_scenario(scenario)
    chosen = settings if isinstance(settings, NeuralSettings) else NeuralSettings(
        **(settings or {}))
    if arch is not None:
        chosen = NeuralSettings(**{**chosen.model_dump(), "arch": arch})
    seed = spec.seed if seed is None else seed
    total = spec.steps if steps is None else steps
    started = time.perf_counter()
    tasks = build_tasks(spec, total, np.random.default_rng(seed))
    params, scores = train(chosen, tasks, seed)
    phases = readouts.phase_rows(chosen, tasks, scores)
    timeseries = readouts.timeseries_rows(chosen, tasks, phases)
    summary = {**run_fields(spec, seed, total, len(tasks.phases)),
               **readouts.network_summary(chosen, params),
               "wall_time_seconds": time.perf_counter() - started}
    summary.update(classification_fields(phases))
    summary.update(prediction_fields(spec))
    if spec.motivations:
        summary["monitoring"] = readouts.monitoring(spec, phases)
    return RunResult(timeseries, phases, summary)


def canonical_outcome(spec: Scenario, seed: int, settings: NeuralSettings) -> Outcome:
    """One canonical scenario trained into a network, classified against its expectations
    (and its expectations before the interventions), as the catalogue does for the
    agent-based model."""
    return outcome_of(spec, seed, run(spec, seed=seed, settings=settings).phases)


def catalogue(names: list[str], settings: NeuralSettings, runs: int = CATALOGUE_RUNS,
              workers: int = 1, progress: bool = True) -> list[Outcome]:
    """Canonical scenarios trained into networks on the catalogue's derived seeds (the same
    seeds as the agent-based catalogue's), in ``workers`` processes."""
    specs = [load_scenario(name) for name in names]
    tasks = [(spec, seed, settings) for spec in specs
             for seed in catalogue_seeds(spec.name, runs)]
    return map_in_processes(canonical_outcome, tasks, workers, "neural catalogue", "run",
                            progress)


def stage_rates(outcomes: list[Outcome], learner: str) -> pd.DataFrame:
    """How often each scenario's runs gave the expected structure before its interventions
    and at the end, with Wilson intervals: a row per scenario and stage."""
    rows = []
    for name in dict.fromkeys(o.scenario for o in outcomes):
        mine = [o for o in outcomes if o.scenario == name]
        stages = {"end": [o.observed == o.expected for o in mine]}
        if mine[0].expected_before is not None:
            stages = {"before": [o.observed_before == o.expected_before for o in mine],
                      **stages}
        for stage, flags in stages.items():
            rate = rate_of(flags)
            rows.append({"scenario": name, "learner": learner, "stage": stage, "k": rate.k,
                         "n": rate.n, "rate": rate.estimate, "low": rate.low,
                         "high": rate.high})
    return pd.DataFrame(rows)
