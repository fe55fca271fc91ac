"""One run of a sweep: the task a worker gets, the record it returns, and the columns of
the results table.

Workers get and return small plain dicts, never model objects.  A record has the task's
identity and axis values (``TASK_COLUMNS`` and the axes), then ``RESULT_COLUMNS`` (status,
regime, metrics, the theory's prediction, the monitored motivation), then the wall time.
A run that raises is data: a ``failed`` record with its error and every result empty.
"""

from __future__ import annotations

import time
from typing import Any, TypedDict

import pandas as pd

from circuits_abm.engine.loading import scenario_from_dict
from circuits_abm.experiments.runs import run as run_scenario

METRICS = (
    "confidence",
    "stability",
    "routing_information",
    "recency_bias",
    "population_reward",
    "held_out_reward",
    "switch_drop",
    "lineage_turnover",
    "mean_fitness",
    "router_share",
)


# With declared motivations: the monitored motivation at the end, by group of environments,
# the capability over the window and at the last phase end, after any discard (NaN for
# scenarios without motivations).
MOTIVATION_METRICS = ("motivation_training", "motivation_held_out", "motivation_evaluation",
                      "capability", "capability_final")


# The theory's prediction for each run's scenario (analysis.theory), beside what emerged.
# ``predicted_uncovered``: the active parameters the theory leaves out, comma-separated.
PREDICTIONS = ("predicted_regime", "predicted_structure", "predicted_margin",
               "predicted_recency_margin", "predicted_valley", "predicted_fitness_of_observed",
               "predicted_uncovered")


TIMING_COLUMNS = ("wall_time_seconds",)
# The columns of a record, in the results table's order: the task's identity (then the
# swept axes), the results, the timing.  The one list of them.
TASK_COLUMNS = ("run_id", "scenario_hash", "point", "replicate", "seed")
RESULT_COLUMNS = ("status", "error", "regime", "structure", *METRICS, *PREDICTIONS,
                  *MOTIVATION_METRICS)
NUMERIC_COLUMNS = (*METRICS, "predicted_margin", "predicted_recency_margin",
                   "predicted_valley", "predicted_fitness_of_observed", *MOTIVATION_METRICS)


class Task(TypedDict):
    """What a worker gets for one run: its identity, the point's values and the fully
    resolved scenario (a plain dict)."""

    run_id: str  # a hash of scenario, seed, steps and package version
    scenario_hash: str
    point: int  # the point's index in the sweep
    replicate: int
    seed: int
    steps: int | None
    values: dict[str, Any]  # the point's axis values, by dotted path
    scenario: dict[str, Any]
    model: str  # "agents" or "neural"
    neural: dict[str, Any]  # the network's settings (used when model is "neural")


def run_task(task: Task) -> dict[str, Any]:
    """Run one sweep task in a worker; always returns a plain record (failures included)."""
    started = time.perf_counter()
    record = task_fields(task)
    try:
        scenario = scenario_from_dict(task["scenario"], source=f"point {task['values']}")
        if task.get("model") == "neural":
            from circuits_abm.experiments import neural  # noqa: PLC0415 (JAX only when asked)

            summary = neural.run(scenario, seed=task["seed"], steps=task["steps"],
                                 settings=task["neural"]).summary
        else:
            summary = run_scenario(scenario, seed=task["seed"], steps=task["steps"],
                                   progress=False).summary
        tree = summary["classification"]["tree"]
        prediction = summary["prediction"]
        record.update(
            status="ok",
            error="",
            regime=summary["regime"],
            structure=summary["classification"]["canonical"],
            **{m: _metric(tree, m) for m in METRICS},
            predicted_regime=prediction["regime"],
            predicted_structure=prediction["structure"],
            predicted_margin=_infinite_if_none(prediction["margin"]),
            predicted_recency_margin=_infinite_if_none(prediction["recency_margin"]),
            predicted_valley=prediction["assembly_valley"],
            predicted_fitness_of_observed=fitness_of(prediction, summary["classification"]),
            predicted_uncovered=",".join(prediction.get("uncovered", [])),
            **motivation_metrics(summary),
        )
    except Exception as exc:  # a failed run is data, not a crash of the sweep
        record.update(failure_fields(exc))
    record["wall_time_seconds"] = time.perf_counter() - started
    return record


def task_fields(task: Task) -> dict[str, Any]:
    """The columns of a run's record that its task fixes (identity, seed, axis values)."""
    return {**{column: task[column] for column in TASK_COLUMNS}, **task["values"]}


def failure_fields(exc: BaseException) -> dict[str, Any]:
    """The columns of a failed run: the error, and every result empty."""
    return {**dict.fromkeys(RESULT_COLUMNS, None), "status": "failed",
            "error": f"{type(exc).__name__}: {exc}", "regime": "", "structure": ""}


def motivation_metrics(summary: dict[str, Any]) -> dict[str, float | None]:
    """The run's monitored motivation by group of environments, and its capability over the
    window and at the end (None from a summary written before that was recorded)."""
    monitoring = summary.get("monitoring")
    if monitoring is None:
        return dict.fromkeys(MOTIVATION_METRICS, None)
    groups = monitoring["motivation"]
    return {
        "motivation_training": groups["training"],
        "motivation_held_out": groups["held_out"],
        "motivation_evaluation": groups["evaluation"],
        "capability": monitoring["capability"],
        "capability_final": monitoring.get("capability_final"),
    }


def fitness_of(prediction: dict[str, Any], classification: dict[str, Any]) -> float | None:
    """The theory's long-run fitness of the structure that actually emerged (None when the
    theory has no candidate of that canonical structure, e.g. an undetermined label)."""
    for candidate in (prediction["best"], *prediction["rivals"]):
        if candidate["structure"] == classification["canonical"]:
            return candidate["fitness"]
    return None


def _infinite_if_none(margin: float | None) -> float:
    """A summary stores an unbounded margin (no rival, no recency label) as null."""
    return float("inf") if margin is None else margin


def _metric(tree: dict[str, Any], name: str) -> float | None:
    if name == "confidence":
        return tree["confidence"]
    return tree["metrics"].get(name)


def results_frame(rows: list[dict[str, Any]], axes: list[str]) -> pd.DataFrame:
    """The results table from journal records: fixed columns first, axes in their order."""
    frame = pd.DataFrame(rows, columns=[*TASK_COLUMNS, *axes, *RESULT_COLUMNS,
                                        *TIMING_COLUMNS])
    for column in NUMERIC_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame
