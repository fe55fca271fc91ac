"""Batch parameter runs: sweep files, executors, resumable results, aggregates.

A sweep file (TOML, in ``sweeps/``) names a base scenario and axes over any scenario field
by dotted path (``geometry.sharing``, ``schedule.phase_length``, ``environments.0.held_out``).
Points come from a grid (explicit values, linear or log ranges) or from a Latin-hypercube
or Sobol design (``scipy.stats.qmc``); every point runs with several seeds derived
reproducibly from one root seed.

Running:

* one submission loop over the standard ``concurrent.futures.Executor`` interface
  serves every executor: in-process (``serial``), the standard library's process pool
  (``processes``, default) and Dask ``distributed`` (``dask``: a client's executor, on a
  cluster given by ``--scheduler`` or a local one);
* workers get and return small plain dicts, never model objects; a run that raises comes
  back as a ``failed`` row with its error, and the sweep goes on, but a sweep in which
  more than ``max_failed_share`` of the runs failed (or every run) ends with
  ``SweepFailed``, naming the first error; ``retry_failed`` runs failed runs again;
* a worker process that dies (killed, out of memory, or a script without the
  ``if __name__ == "__main__":`` guard, which every worker imports again) stops the sweep
  with ``WorkersLost``: its runs are not journaled, so resuming runs them;
* every finished run is appended to ``runs.jsonl`` at once (flushed and fsync'd), so a
  sweep killed at any moment, even by ``kill -9``, loses no finished run; a torn last line
  is ignored.  Re-running the same command skips every run already in the journal: runs
  are identified by a content hash of (resolved scenario, seed, steps, package version);
* ``results.parquet`` (a row per run, in task order, so every executor gives the same
  table) and ``aggregate.parquet`` (a row per point: regime shares, majority regime,
  agreement, mean and spread of the metrics) are rewritten atomically in batches.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import itertools
import json
import multiprocessing
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, ValidationError, model_validator

from circuits_abm.analysis.classification import REGIMES
from circuits_abm.analysis.rates import wilson
from circuits_abm.defaults import EXECUTORS, MAX_FAILED_SHARE
from circuits_abm.engine.scenario import (
    Name,
    PositiveInt,
    Scenario,
    ScenarioError,
    Section,
    describe_errors,
    describe_validation_error,
    read_toml,
    resolve,
    scenario_from_dict,
    set_dotted,
)
from circuits_abm.experiments.runs import environment_provenance, package_version, scenario_hash
from circuits_abm.experiments.runs import run as run_scenario
from circuits_abm.experiments.storage import (
    OutputError,
    atomic_write_bytes,
    ensure_writable,
    folder_lock,
    parquet_metadata,
    read_json,
    write_json,
    write_parquet,
)
from circuits_abm.progress import progress_bar

JOURNAL = "runs.jsonl"
RESULTS = "results.parquet"
AGGREGATE = "aggregate.parquet"
SWEEP_ECHO = "sweep.json"
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
# and the capability over the window (NaN for scenarios without motivations).
MOTIVATION_METRICS = ("motivation_training", "motivation_held_out", "motivation_evaluation",
                      "capability")
# The theory's prediction for each run's scenario (analysis.theory), beside what emerged.
PREDICTIONS = ("predicted_regime", "predicted_structure", "predicted_margin",
               "predicted_recency_margin", "predicted_valley", "predicted_fitness_of_observed")
TIMING_COLUMNS = ("wall_time_seconds",)
# A derived axis: `environments.count = N` replaces the base's environments by N
# interchangeable ones named e00, e01, ... (for sweeps over the number of environments).
COUNT_AXIS = "environments.count"
# Designs made for the sensitivity analysis (analysis.sensitivity): `samples` is Saltelli's
# N (N x (axes + 2) points) or the number of Morris trajectories (x (axes + 1) points).
SENSITIVITY_DESIGNS = ("saltelli", "morris")
CONNECT_TIMEOUT = "10s"  # how long to try a --scheduler address before giving up


class SchedulerError(ValueError):
    """A Dask scheduler address that cannot be reached."""


# --------------------------------------------------------------------------- the file


class AxisSpec(Section):
    """One swept field: exactly one of ``values``, ``linspace``, ``logspace`` or ``range``."""

    values: Annotated[list[float | int | str | bool], Field(min_length=1)] | None = None
    linspace: tuple[float, float, PositiveInt] | None = None
    logspace: (
        tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)], PositiveInt] | None
    ) = None
    range: tuple[float, float] | None = None
    scale: Literal["linear", "log"] = "linear"
    integer: bool = False

    @model_validator(mode="after")
    def _exactly_one(self) -> AxisSpec:
        given = [
            k for k in ("values", "linspace", "logspace", "range") if getattr(self, k) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of values, linspace, logspace, range (got {given or 'none'})"
            )
        if self.range is not None and self.scale == "log" and min(self.range) <= 0:
            raise ValueError("a log-scaled range must be positive")
        return self

    def grid_values(self) -> list[Any]:
        """The axis's values on a grid design (from ``values``, ``linspace`` or ``logspace``)."""
        if self.values is not None:
            return list(self.values)
        if self.linspace is not None:
            raw = np.linspace(*self.linspace)
        else:
            start, stop, num = self.logspace
            raw = np.geomspace(start, stop, num)
        return [int(round(v)) if self.integer else round(float(v), 12) for v in raw]

    def from_unit(self, u: float) -> float | int:
        """Map a design coordinate in [0, 1) onto the axis range."""
        low, high = self.range
        value = low * (high / low) ** u if self.scale == "log" else low + (high - low) * u
        return int(round(value)) if self.integer else float(value)


class SweepSpec(Section):
    """A validated sweep file."""

    name: Name
    description: str = ""
    base: str
    seeds: PositiveInt = 3
    root_seed: Annotated[int, Field(ge=0)] = 0
    steps: PositiveInt | None = None
    design: Literal["grid", "latin_hypercube", "sobol", "saltelli", "morris"] = "grid"
    samples: PositiveInt | None = None
    overrides: dict[str, Any] = {}
    axes: Annotated[dict[str, AxisSpec], Field(min_length=1)]

    @model_validator(mode="after")
    def _axes_and_overrides_differ(self) -> SweepSpec:
        both = sorted(set(self.axes) & set(self.overrides))
        if both:
            raise ValueError(f"{both} are both swept (axes) and fixed (overrides); keep one")
        return self

    @model_validator(mode="after")
    def _design_fits_axes(self) -> SweepSpec:
        if self.design == "grid":
            ranged = [k for k, a in self.axes.items() if a.range is not None]
            if ranged:
                raise ValueError(
                    f"a grid needs values, linspace or logspace; axes {ranged} give a range"
                )
        else:
            if self.samples is None:
                raise ValueError(f"design = {self.design!r} needs `samples`")
            unranged = [k for k, a in self.axes.items() if a.range is None]
            if unranged:
                raise ValueError(
                    f"design = {self.design!r} needs a `range` on every axis; {unranged} have none"
                )
            if self.design in ("sobol", "saltelli") and self.samples & (self.samples - 1):
                raise ValueError(
                    f"a {self.design} design needs a power of two samples (got {self.samples})"
                )
        return self


class Sweep:
    """A sweep resolved: its base scenario, points, seeds and tasks.

    Build one with ``load_sweep`` (a file or built-in name) or ``sweep_from_dict``.
    ``points`` holds one ``{dotted path: value}`` dict per parameter point; ``tasks`` one
    dict per point and seed, with the fully resolved scenario and a ``run_id`` that hashes
    it (with the seed, the steps and the package version), so a resumed sweep knows which
    runs are done.
    """

    def __init__(self, spec: SweepSpec, base: dict[str, Any], source: str):
        self.spec = spec
        self.base = base
        self.source = source
        self.points = design_points(spec)
        self.tasks = self._tasks()

    @property
    def axes(self) -> list[str]:
        """The swept dotted paths, in the file's order."""
        return list(self.spec.axes)

    @property
    def fingerprint(self) -> str:
        """A hash of every run the sweep consists of (scenario, seed, steps, version): the
        identity an output folder is bound to."""
        ids = "".join(sorted(t["run_id"] for t in self.tasks))
        return hashlib.sha256(ids.encode()).hexdigest()[:20]

    def _tasks(self) -> list[dict[str, Any]]:
        tasks, problems = [], []
        version = package_version()
        for index, point in enumerate(self.points):
            data = json.loads(json.dumps(self.base))
            for path, value in [*self.spec.overrides.items(), *point.items()]:
                if path == COUNT_AXIS:
                    data["environments"] = interchangeable_environments(value)
                else:
                    set_dotted(data, path, value)
            try:
                resolved = Scenario.model_validate(data)
            except ValidationError as exc:
                problems.extend(f"point {point}: {p}" for p in describe_errors(exc))
                continue
            scenario = resolved.model_dump(mode="json")
            # Sensitivity designs may repeat a point (Morris trajectories share grid
            # levels); each repeat is a design row of its own, so it gets its own seeds.
            keyed = {**point, "design_row": index} if self.spec.design in SENSITIVITY_DESIGNS \
                else point
            for replicate in range(self.spec.seeds):
                seed = derive_seed(self.spec.root_seed, keyed, replicate)
                tasks.append(
                    {
                        "run_id": content_hash(scenario, seed, self.spec.steps, version),
                        "scenario_hash": scenario_hash(scenario),
                        "point": index,
                        "replicate": replicate,
                        "seed": seed,
                        "steps": self.spec.steps,
                        "values": point,
                        "scenario": scenario,
                    }
                )
        if problems:
            raise ScenarioError(self.source, sorted(set(problems))[:20])
        return tasks


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file, or a built-in sweep by name, and its base scenario.

    Parameters
    ----------
    path
        A sweep TOML file, or the name of a built-in sweep (``circuits-abm list``).  The
        file's ``base`` is a scenario file relative to it, or a built-in scenario's name.

    Returns
    -------
    Sweep
        The resolved sweep: ``points`` (one dict per parameter point) and ``tasks`` (one
        per point and seed), ready for ``run_sweep``.

    Raises
    ------
    ScenarioError
        If the sweep or its base scenario cannot run, or any point of it is invalid.

    Examples
    --------
    >>> import circuits_abm as ca
    >>> taxonomy = ca.load_sweep("taxonomy")
    >>> taxonomy.axes
    ['geometry.distinguishability', 'geometry.sharing']
    >>> len(taxonomy.tasks) == len(taxonomy.points) * taxonomy.spec.seeds
    True
    """
    path = resolve(path, "sweep")
    return sweep_from_dict(read_toml(path), source=str(path), folder=path.parent)


def sweep_from_dict(data: dict[str, Any], source: str = "<dict>",
                    folder: str | Path = ".") -> Sweep:
    """Validate a sweep given as a dict (the fields of a sweep file); ``base`` is a scenario
    file relative to ``folder``, or a built-in scenario's name."""
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        problems = [describe_validation_error(e, SweepSpec) for e in exc.errors()]
        raise ScenarioError(source, problems) from None
    base_path = (Path(folder) / spec.base).resolve()
    if not base_path.is_file():
        try:
            base_path = resolve(spec.base)
        except ScenarioError:
            raise ScenarioError(source, [
                f"`base`: scenario file {spec.base!r} not found (looked in {base_path}), and "
                "no built-in scenario of that name"]) from None
    base = read_toml(base_path)
    scenario_from_dict(base, source=str(base_path))  # the base itself must be valid
    return Sweep(spec, base, source)


def interchangeable_environments(count: Any) -> list[dict[str, str]]:
    """``count`` environments named e00, e01, ... with default fields (the ``COUNT_AXIS``)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ScenarioError(
            COUNT_AXIS, [f"`{COUNT_AXIS}`: needs a positive integer (got {count!r})"]
        )
    return [{"name": f"e{i:02d}"} for i in range(count)]


def design_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """The parameter points: a grid product, a space-filling design scaled onto the ranges,
    or a sensitivity design (SALib's Saltelli sample or Morris trajectories, in their order,
    which the analysis relies on)."""
    names = list(spec.axes)
    if spec.design == "grid":
        grids = [spec.axes[n].grid_values() for n in names]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grids)]
    if spec.design in SENSITIVITY_DESIGNS:
        from circuits_abm.analysis import sensitivity  # noqa: PLC0415 (needs SALib)

        axes = {n: spec.axes[n].model_dump() for n in names}
        sample = (sensitivity.saltelli_points if spec.design == "saltelli"
                  else sensitivity.morris_points)
        return sample(axes, spec.samples, spec.root_seed)
    from scipy.stats import qmc  # noqa: PLC0415 (only designs need scipy)

    if spec.design == "latin_hypercube":
        sampler = qmc.LatinHypercube(d=len(names), seed=spec.root_seed)
    else:
        sampler = qmc.Sobol(d=len(names), scramble=True, seed=spec.root_seed)
    unit = sampler.random(spec.samples)
    return [{n: spec.axes[n].from_unit(u) for n, u in zip(names, row, strict=True)} for row in unit]


def derive_seed(root_seed: int, point: dict[str, Any], replicate: int) -> int:
    """A seed that depends only on the root seed, the point's values and the replicate."""
    text = json.dumps([root_seed, sorted(point.items()), replicate], sort_keys=True)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big")


def content_hash(scenario: dict[str, Any], seed: int, steps: int | None, version: str) -> str:
    """The run id: a hash of everything that determines a run's result."""
    text = json.dumps(
        {"scenario": scenario, "seed": seed, "steps": steps, "version": version}, sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()[:20]


# --------------------------------------------------------------------------- one run


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """Run one sweep task in a worker; always returns a plain record (failures included)."""
    started = time.perf_counter()
    record = task_fields(task)
    try:
        scenario = scenario_from_dict(task["scenario"], source=f"point {task['values']}")
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
            **motivation_metrics(summary),
        )
    except Exception as exc:  # a failed run is data, not a crash of the sweep
        record.update(failure_fields(exc))
    record["wall_time_seconds"] = time.perf_counter() - started
    return record


def task_fields(task: dict[str, Any]) -> dict[str, Any]:
    """The columns of a run's record that its task fixes (identity, seed, axis values)."""
    return {
        "run_id": task["run_id"],
        "scenario_hash": task["scenario_hash"],
        "point": task["point"],
        "replicate": task["replicate"],
        "seed": task["seed"],
        **task["values"],
    }


def failure_fields(exc: BaseException) -> dict[str, Any]:
    """The columns of a failed run: the error, and every result empty."""
    return {
        "status": "failed",
        "error": f"{type(exc).__name__}: {exc}",
        "regime": "",
        "structure": "",
        **dict.fromkeys(METRICS, None),
        **dict.fromkeys(PREDICTIONS, None),
        **dict.fromkeys(MOTIVATION_METRICS, None),
    }


def motivation_metrics(summary: dict[str, Any]) -> dict[str, float | None]:
    """The run's monitored motivation by group of environments, and its capability."""
    monitoring = summary.get("monitoring")
    if monitoring is None:
        return dict.fromkeys(MOTIVATION_METRICS, None)
    groups = monitoring["motivation"]
    return {
        "motivation_training": groups["training"],
        "motivation_held_out": groups["held_out"],
        "motivation_evaluation": groups["evaluation"],
        "capability": monitoring["capability"],
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


# --------------------------------------------------------------------------- the store


class SweepStore:
    """A sweep's output folder: the append-only journal and the derived tables."""

    def __init__(self, out_dir: str | Path):
        self.dir = Path(out_dir)
        self.journal = self.dir / JOURNAL

    def claim(self, sweep: Sweep) -> None:
        """Check the folder can hold ``sweep``: writable, and empty or holding this very
        sweep (which then resumes).  A different sweep's folder, or any other non-empty
        folder, is refused with ``OutputError`` before anything is written."""
        ensure_writable(self.dir)
        echo_path = self.dir / SWEEP_ECHO
        if echo_path.is_file():
            try:
                old = read_json(echo_path)
            except ValueError:
                old = {}
            if old.get("fingerprint") != sweep.fingerprint:
                raise OutputError(
                    f"{self.dir} holds a different sweep ({old.get('sweep', {}).get('name', '?')}"
                    f"); choose another --out (the same sweep file and package version resume)"
                )
            return
        present = sorted(p.name for p in self.dir.iterdir() if not p.name.startswith("."))
        if present:
            listed = ", ".join(present[:3]) + (", ..." if len(present) > 3 else "")
            raise OutputError(f"{self.dir} is not empty and holds no sweep ({listed}); "
                              "choose another --out")

    def finished(self) -> dict[str, dict[str, Any]]:
        """Records in the journal by run id (a torn last line from a kill is skipped)."""
        records: dict[str, dict[str, Any]] = {}
        if not self.journal.exists():
            return records
        for line in self.journal.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            records[record["run_id"]] = record  # a retried run's last record counts
        return records

    def append(self, record: dict[str, Any]) -> None:
        """Add one finished run, durably, before anything else happens."""
        self._repair_torn_tail()
        with self.journal.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def _repair_torn_tail(self) -> None:
        """A kill mid-write can leave a last line without newline: cut it before appending."""
        if not self.journal.exists() or self.journal.stat().st_size == 0:
            return
        with self.journal.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) == b"\n":
                return
        text = self.journal.read_bytes()
        atomic_write_bytes(self.journal, text[: text.rfind(b"\n") + 1])

    def write_tables(self, sweep: Sweep) -> pd.DataFrame:
        """Rewrite results.parquet and aggregate.parquet from the journal (task order).
        Both carry ``partial = true`` in their metadata until every run has finished."""
        records = self.finished()
        rows = [records[t["run_id"]] for t in sweep.tasks if t["run_id"] in records]
        table = results_frame(rows, sweep.axes)
        partial = {"partial": str(len(rows) < len(sweep.tasks)).lower(),
                   "finished_runs": str(len(rows)), "runs": str(len(sweep.tasks)),
                   "provenance": json.dumps(environment_provenance(), sort_keys=True)}
        write_parquet(self.dir / RESULTS, table, partial)
        write_parquet(self.dir / AGGREGATE, aggregate(table, sweep.axes), partial)
        return table


def results_frame(rows: list[dict[str, Any]], axes: list[str]) -> pd.DataFrame:
    """The results table from journal records: fixed columns first, axes in their order."""
    columns = [
        "run_id",
        "scenario_hash",
        "point",
        "replicate",
        "seed",
        *axes,
        "status",
        "error",
        "regime",
        "structure",
        *METRICS,
        *PREDICTIONS,
        *MOTIVATION_METRICS,
        *TIMING_COLUMNS,
    ]
    frame = pd.DataFrame(rows, columns=columns)
    numeric = ("predicted_margin", "predicted_recency_margin", "predicted_valley",
               "predicted_fitness_of_observed")
    for metric in (*METRICS, *numeric, *MOTIVATION_METRICS):
        frame[metric] = pd.to_numeric(frame[metric], errors="coerce")
    return frame


def aggregate(results: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    """One row per point: runs, failures, regime shares with their Wilson 95% intervals
    (``share_<regime>``, ``low_<regime>``, ``high_<regime>``), majority, agreement, and each
    metric's mean and standard deviation over the seeds."""
    rows = []
    for point, group in results.groupby("point", sort=True):
        ok = group[group.status == "ok"]
        row: dict[str, Any] = {
            "point": point,
            **{a: group[a].iloc[0] for a in axes},
            "runs": len(group),
            "failed": int((group.status != "ok").sum()),
        }
        counts = ok.regime.value_counts()
        for regime in REGIMES:
            row[f"share_{regime}"] = counts.get(regime, 0) / len(ok) if len(ok) else np.nan
        for regime in REGIMES:
            rate = wilson(int(counts.get(regime, 0)), len(ok)) if len(ok) else None
            row[f"low_{regime}"] = rate.low if rate else np.nan
            row[f"high_{regime}"] = rate.high if rate else np.nan
        row["majority_regime"] = _majority(ok.regime) if len(ok) else "failed"
        row["agreement"] = counts.max() / len(ok) if len(ok) else np.nan
        row["majority_structure"] = _majority(ok.structure) if len(ok) else ""
        row["structure_agreement"] = (
            ok.structure.value_counts().max() / len(ok) if len(ok) else np.nan
        )
        for metric in METRICS:
            row[f"{metric}_mean"] = ok[metric].mean()
            row[f"{metric}_std"] = ok[metric].std(ddof=0)
        row.update(_theory_columns(ok, row))
        rows.append(row)
    return pd.DataFrame(rows)


def _theory_columns(ok: pd.DataFrame, row: dict[str, Any]) -> dict[str, Any]:
    """The point's prediction, whether it agrees with the majority, and whether the point
    lies away from the predicted boundary: the predicted fitness margin exceeds the
    seed-to-seed spread of the measured mean fitness, and any predicted recency bias is
    further from the classifier's thresholds than the measured recency bias spreads."""
    if not len(ok):
        return {"predicted_regime": "", "predicted_structure": "", "predicted_margin": np.nan,
                "theory_agrees": False, "structure_agrees": False, "away_from_boundary": False}
    first = ok.iloc[0]
    fitness_spread = row["mean_fitness_std"]
    recency_spread = row["recency_bias_std"] if np.isfinite(row["recency_bias_std"]) else 0.0
    recency_margin = first.predicted_recency_margin
    away = bool(
        first.predicted_margin > fitness_spread
        and (not np.isfinite(recency_margin) or recency_margin > recency_spread)
    )
    return {
        "predicted_regime": first.predicted_regime,
        "predicted_structure": first.predicted_structure,
        "predicted_margin": first.predicted_margin,
        "theory_agrees": first.predicted_regime == row["majority_regime"],
        "structure_agrees": first.predicted_structure == row["majority_structure"],
        "away_from_boundary": away,
    }


def _majority(values: pd.Series) -> str:
    """Most frequent value; ties broken alphabetically so the choice is reproducible."""
    counts = values.value_counts()
    return sorted(counts[counts == counts.max()].index)[0]


# --------------------------------------------------------------------------- executors


class SerialExecutor(cf.Executor):
    """Runs each task at submission, in this process (debugging, tiny sweeps)."""

    def submit(self, fn, /, *args, **kwargs):
        """Run ``fn`` now, in this process, and return a finished future."""
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # an interrupt (KeyboardInterrupt) is not a result
            future.set_exception(exc)
        return future


@contextlib.contextmanager
def make_executor(kind: str, workers: int | None, scheduler: str | None) -> Iterator[cf.Executor]:
    """A concurrent.futures executor of the requested kind, shut down on exit."""
    if kind == "serial":
        yield SerialExecutor()
    elif kind == "processes":
        # forkserver: forking a process that already runs threads (pyarrow's) can deadlock.
        # The server imports the package and loads the compiled kernels once
        # (circuits_abm.experiments.worker); each worker forked from it starts ready and runs
        # task after task, so start-up is paid once per sweep, not once per run.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["circuits_abm.experiments.worker"])
        with cf.ProcessPoolExecutor(
            max_workers=workers or os.cpu_count(), mp_context=context
        ) as pool:
            yield pool
    elif kind == "dask":
        try:
            from distributed import Client, LocalCluster  # noqa: PLC0415 (optional extra)
        except ImportError:
            raise RuntimeError("the dask executor needs `pip install circuits_abm[dask]`") from None
        if scheduler:
            try:
                client = Client(scheduler, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as exc:
                raise SchedulerError(
                    f"cannot reach the Dask scheduler at {scheduler} within {CONNECT_TIMEOUT}: "
                    f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                ) from None
            with client:
                yield client.get_executor()
        else:
            with (
                LocalCluster(
                    n_workers=workers or os.cpu_count(),
                    threads_per_worker=1,
                    dashboard_address=None,
                ) as cluster,
                Client(cluster) as client,
            ):
                yield client.get_executor()
    else:
        raise ValueError(f"executor {kind!r} is not one of {', '.join(EXECUTORS)}")


def map_in_processes(fn: Callable[..., Any], arglists: list[tuple], workers: int, desc: str,
                     unit: str, progress: bool = True) -> list[Any]:
    """``[fn(*args) for args in arglists]`` in ``workers`` processes (in this one if 1), in
    order, with a progress bar: for experiments that need no journal to resume."""
    refuse_in_a_starting_worker()
    with make_executor("serial" if workers == 1 else "processes", workers, None) as pool:
        futures = [pool.submit(fn, *args) for args in arglists]
        try:
            return [f.result() for f in progress_bar(progress, iterable=futures, desc=desc,
                                                     unit=unit)]
        except BrokenProcessPool as exc:
            raise WorkersLost(lost_workers_message(exc, "nothing was kept")) from exc


class SweepFailed(RuntimeError):
    """More of a sweep's runs failed than it allows.  The tables are written; ``results``
    holds them."""

    def __init__(self, message: str, results: pd.DataFrame):
        super().__init__(message)
        self.results = results


class WorkersLost(RuntimeError):
    """A worker process died before it returned its runs."""


GUARD = 'if __name__ == "__main__":'
GUARD_PATTERN = re.compile(r"""if\s+__name__\s*==\s*['"]__main__['"]\s*:""")


def refuse_in_a_starting_worker() -> None:
    """Stop a worker process that is importing the user's script again.

    Python's ``forkserver`` and ``spawn`` start methods run the main script once more in
    every new worker; a sweep started at the script's top level would then start again
    inside each worker.  Raised there, this message is what the worker prints."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise RuntimeError(
            "circuits_abm: a worker process is importing your script again and reached the "
            f"code that starts worker processes.  Put that code under `{GUARD}` (see "
            "https://docs.python.org/3/library/multiprocessing.html#the-spawn-and-forkserver-"
            "start-methods)."
        )


def lost_workers_message(exc: BaseException, kept: str) -> str:
    """Why a process pool broke, and what to do: the missing guard when the main script
    has none, else the usual causes."""
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None) if getattr(main, "__spec__", None) is None else None
    try:
        text = Path(script).read_text(encoding="utf-8", errors="replace") if script else ""
    except OSError:
        text = ""
    if text and not GUARD_PATTERN.search(text):
        cause = (f"Every worker imports your script {script} again, and it starts this work "
                 f"at its top level.  Put the code that starts it under `{GUARD}`:\n\n"
                 f"    {GUARD}\n        ca.sweep(...)\n")
    else:
        cause = "Likely causes: the machine ran out of memory, or the process was killed."
    return f"a worker process stopped before returning its runs ({exc}); {kept}.  {cause}"


def check_failures(table: pd.DataFrame, max_failed_share: float, out_dir: Path) -> None:
    """Raise ``SweepFailed`` when every run failed, or more than ``max_failed_share``."""
    failed = table[table.status != "ok"]
    if failed.empty or (len(failed) < len(table) and len(failed) <= max_failed_share * len(table)):
        return
    raise SweepFailed(
        f"{len(failed)} of {len(table)} runs failed (at most {max_failed_share:.0%} may); the "
        f"first: {failed.error.iloc[0].rstrip('.')}.  The tables in {out_dir} hold every run; "
        "fix the cause, then run again with retry_failed=True (--retry-failed) to redo the "
        "failed runs.",
        table,
    )


# --------------------------------------------------------------------------- the loop


def run_sweep(
    sweep: Sweep,
    out_dir: str | Path,
    executor: str = "processes",
    workers: int | None = None,
    scheduler: str | None = None,
    checkpoint_seconds: float = 60.0,
    progress: Callable[[int, int, dict[str, Any] | None], None] | None = None,
    stop_after: int | None = None,
    retry_failed: bool = False,
    max_failed_share: float = MAX_FAILED_SHARE,
) -> pd.DataFrame:
    """Run every task of ``sweep`` not already finished in ``out_dir``; return the results.

    The lower-level loop under ``sweep``: each finished run is journaled at once, so an
    interrupted sweep resumes without redoing it; the tables are checkpointed from the
    journal every ``checkpoint_seconds`` and at the end, written atomically.  The folder
    is locked against a second writer, and bound to the sweep's fingerprint (a different
    sweep is refused).

    Parameters
    ----------
    sweep
        From ``load_sweep`` or ``sweep_from_dict``.
    out_dir
        The output folder (created if needed).
    executor, workers, scheduler
        ``"processes"`` (``workers`` processes, default the number of cores), ``"serial"``,
        or ``"dask"`` (a local cluster, or the Dask ``scheduler`` address given).
    checkpoint_seconds
        Least time between checkpoints of the tables.  Rewriting them reads the whole
        journal and aggregates it (about a second at a thousand runs), so checkpointing by
        time keeps that work from competing with the workers for the cores.
    progress
        ``progress(done, total, record)`` is called once at the start (record None) and
        after every run.
    stop_after
        Kill this process with SIGKILL after that many new runs were journaled: a hook for
        the tests of interrupted sweeps, not for users.
    retry_failed
        Run again the runs that the journal holds as failed (their new records replace
        the old ones).
    max_failed_share
        Raise ``SweepFailed`` (after writing the tables) when more than this share of the
        runs failed, or all of them.

    Raises
    ------
    SweepFailed
        Too many runs failed; the first error is in the message.
    WorkersLost
        A worker process died; its runs were not journaled, so resuming runs them.

    Returns
    -------
    pandas.DataFrame
        The results table, one row per run (see ``sweep``).

    Examples
    --------
    >>> import circuits_abm as ca, tempfile
    >>> taxonomy = ca.load_sweep("taxonomy")
    >>> results = ca.run_sweep(taxonomy, tempfile.mkdtemp(), workers=2)  # doctest: +SKIP
    """
    refuse_in_a_starting_worker()
    store = SweepStore(out_dir)
    store.claim(sweep)
    echo = {
        "sweep": sweep.spec.model_dump(mode="json"),
        "axes": sweep.axes,
        "source": sweep.source,
        "tasks": len(sweep.tasks),
        "package_version": package_version(),
        "fingerprint": sweep.fingerprint,
        "provenance": environment_provenance(),
    }
    with folder_lock(store.dir):
        done = store.finished()
        if retry_failed:
            done = {key: record for key, record in done.items() if record["status"] == "ok"}
        pending = [t for t in sweep.tasks if t["run_id"] not in done]
        total = len(sweep.tasks)
        finished = total - len(pending)
        if progress:
            progress(finished, total, None)
        if not pending:
            write_json(store.dir / SWEEP_ECHO, echo)
            table = store.write_tables(sweep)
            check_failures(table, max_failed_share, store.dir)
            return table
        new = 0
        checkpointed = time.monotonic()
        serial = executor == "serial"
        window = 1 if serial else 2 * (workers or os.cpu_count() or 1)
        chunks = replicate_chunks(pending, 1 if serial else CHUNK_RUNS)
        with make_executor(executor, workers, scheduler) as pool:
            write_json(store.dir / SWEEP_ECHO, echo)  # only once the executor is up
            for record in _rolling(pool, chunks, window):
                store.append(record)
                new += 1
                finished += 1
                if stop_after is not None and new >= stop_after:
                    os.kill(os.getpid(), 9)
                if progress:
                    progress(finished, total, record)
                if time.monotonic() - checkpointed >= checkpoint_seconds:
                    store.write_tables(sweep)
                    checkpointed = time.monotonic()
        table = store.write_tables(sweep)
        check_failures(table, max_failed_share, store.dir)
        return table


CHUNK_RUNS = 8  # at most this many replicates of a point go to a worker as one task


def replicate_chunks(tasks: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    """Consecutive tasks of the same point, at most ``size`` to a chunk.  A worker runs a
    chunk seed after seed; the replicates share their scenario, so the theory's
    prediction is computed once per chunk rather than once per run."""
    chunks: list[list[dict[str, Any]]] = []
    for task in tasks:
        if chunks and len(chunks[-1]) < size and chunks[-1][-1]["point"] == task["point"]:
            chunks[-1].append(task)
        else:
            chunks.append([task])
    return chunks


def run_chunk(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``run_task`` for each task of a chunk, in order, in one worker."""
    return [run_task(task) for task in tasks]


def _rolling(pool: cf.Executor, chunks: list[list[dict[str, Any]]], window: int):
    """Run ``chunks`` with at most ``window`` in flight, yielding each record as its chunk
    finishes: every finished chunk is journaled before the next is submitted, so an
    interrupt (even of the serial executor, which runs at submission, one run to a chunk)
    loses at most the runs in flight."""
    queue = iter(chunks)
    in_flight: dict[cf.Future, list[dict[str, Any]]] = {}

    def top_up() -> None:
        while len(in_flight) < window and (chunk := next(queue, None)) is not None:
            in_flight[pool.submit(run_chunk, chunk)] = chunk

    top_up()
    while in_flight:
        done, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
        for future in done:
            yield from _results_or_failures(future, in_flight.pop(future))
        top_up()


def _results_or_failures(future: cf.Future, chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The worker's records, or a failed row per run if the chunk could not run (say its
    task could not be sent).  A dead worker process stops the sweep (``WorkersLost``)."""
    try:
        return future.result()
    except BrokenProcessPool as exc:
        raise WorkersLost(lost_workers_message(
            exc, f"its {len(chunk)} runs were not journaled and run again when you resume"
        )) from exc
    except Exception as exc:
        return [{**task_fields(task), **failure_fields(exc), "wall_time_seconds": 0.0}
                for task in chunk]


def theory_agreement(aggregate: pd.DataFrame) -> dict[str, float | int]:
    """How often the theory's predicted regime (and nested structure) equals the simulated
    majority: over all points, and over the points away from the predicted boundary."""
    agree = aggregate.theory_agrees.astype(bool)
    structure = aggregate.structure_agrees.astype(bool)
    away = aggregate.away_from_boundary.astype(bool)
    return {
        "points": len(aggregate),
        "regime": float(agree.mean()),
        "structure": float(structure.mean()),
        "away_points": int(away.sum()),
        "away_regime": float(agree[away].mean()) if away.any() else float("nan"),
        "away_structure": float(structure[away].mean()) if away.any() else float("nan"),
    }


def fitness_error(results: pd.DataFrame) -> tuple[float, float]:
    """Median absolute difference between each run's measured mean fitness and the theory's
    fitness for the structure that emerged, and the share of runs where the theory has that
    structure among its candidates."""
    ok = results[results.status == "ok"]
    known = ok.predicted_fitness_of_observed.notna()
    error = (ok.mean_fitness[known] - ok.predicted_fitness_of_observed[known]).abs()
    return float(error.median()) if known.any() else float("nan"), float(known.mean())


def fitter_when_split(results: pd.DataFrame) -> tuple[int, int]:
    """At points whose seeds split between the predicted regime and another: at how many
    the runs that reached the prediction measured the higher mean fitness, out of how many
    (the theory ranks the structures right even where variation does not find the best)."""
    ok = results[results.status == "ok"]
    fitter = split = 0
    for _, runs in ok.groupby("point"):
        hit = runs.regime == runs.predicted_regime
        if hit.any() and not hit.all():
            split += 1
            fitter += runs.mean_fitness[hit].mean() > runs.mean_fitness[~hit].mean()
    return int(fitter), split


def agreement_table(sweep_dirs: list[str | Path],
                    paths: list[pd.DataFrame] | None = None) -> str:
    """A markdown table, one row per sweep folder: ``theory_agreement``,
    ``fitness_error`` and ``fitter_when_split``; with ``paths`` (one ``paths.path_table`` per
    folder), also the agreement of the prediction that takes the path into account
    (``paths.path_agreement``)."""
    from circuits_abm.experiments.paths import path_agreement  # noqa: PLC0415

    header = ("| diagram | points | regime agrees | nested structure agrees "
              "| away from the boundary | regime agrees there | structure agrees there "
              "| fitness of what emerged: median error (runs covered) "
              "| seeds split: prediction fitter |")
    if paths is not None:
        header += (" with the path: regime agrees | away from the boundary "
                   "| regime agrees there |")
    lines = [header, "|---" * header.count("|", 1) + "|"]
    for i, folder in enumerate(sweep_dirs):
        results, agg, echo = load_results(folder)
        if "predicted_fitness_of_observed" not in results or "theory_agrees" not in agg:
            raise ValueError(
                f"{folder} was swept by an older version without the theory's predictions; "
                "run the sweep again into a new folder"
            )
        a = theory_agreement(agg)
        error, covered = fitness_error(results)
        fitter, split = fitter_when_split(results)
        line = (
            f"| `{echo['sweep']['name']}` | {a['points']} | {a['regime']:.0%} "
            f"| {a['structure']:.0%} | {a['away_points']} | {a['away_regime']:.0%} "
            f"| {a['away_structure']:.0%} | {error:.4f} ({covered:.0%}) | {fitter} of {split} |"
        )
        if paths is not None:
            p = path_agreement(agg, paths[i])
            line += f" {p['regime']:.0%} | {p['away_points']} | {p['away_regime']:.0%} |"
        lines.append(line)
    return "\n".join(lines)


def load_results(out_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The tables of a sweep folder.

    Parameters
    ----------
    out_dir
        A folder written by ``sweep``, ``run_sweep`` or ``circuits-abm sweep``.

    Returns
    -------
    results : pandas.DataFrame
        One row per run.
    aggregate : pandas.DataFrame
        One row per parameter point: the probability of each regime over the seeds with its
        Wilson 95% interval, the modal structure, and the theory's prediction.
    echo : dict
        The sweep as run, its fingerprint and provenance; ``echo["partial"]`` says whether
        the tables are a checkpoint of an unfinished sweep.

    Raises
    ------
    FileNotFoundError
        If ``out_dir`` is not a sweep folder.
    ValueError
        If a table cannot be read.

    Examples
    --------
    >>> import circuits_abm as ca, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> design = {"name": "demo", "base": "standard", "seeds": 2, "steps": 600,
    ...           "axes": {"geometry.sharing": {"values": [0.1, 0.9]}}}
    >>> _ = ca.sweep(design, folder, executor="serial", progress=False)
    >>> results, aggregate, echo = ca.load_results(folder)
    >>> len(results), len(aggregate), echo["partial"]
    (4, 2, False)
    """
    out = Path(out_dir)
    missing = [n for n in (RESULTS, AGGREGATE, SWEEP_ECHO) if not (out / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{out} is not a sweep folder: missing {', '.join(missing)}")
    try:
        echo = read_json(out / SWEEP_ECHO)
        results, aggregated = pd.read_parquet(out / RESULTS), pd.read_parquet(out / AGGREGATE)
        echo["partial"] = parquet_metadata(out / RESULTS).get("partial") == "true"
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the sweep in {out}: {str(exc).splitlines()[0]}") from None
    return results, aggregated, echo


def sweep(
    sweep: str | Path | dict[str, Any] | Sweep,
    out: str | Path,
    executor: str = "processes",
    workers: int | None = None,
    progress: bool = True,
    retry_failed: bool = False,
    max_failed_share: float = MAX_FAILED_SHARE,
) -> pd.DataFrame:
    """Run a sweep into ``out`` and return its results, one row per run.

    An interrupted sweep resumes where it stopped when called again with the same ``out``;
    a different sweep into the same folder is an error, not a mix.  With the ``processes``
    executor, call it from a script under ``if __name__ == "__main__":`` (every worker
    imports the script again).

    Parameters
    ----------
    sweep
        A sweep file, a built-in sweep's name (``"taxonomy"``), a dict with the fields of a
        sweep file, or a ``Sweep`` from ``load_sweep``.
    out
        The output folder: ``results.parquet`` (one row per run), ``aggregate.parquet``
        (one row per point, regime probabilities with Wilson intervals) and ``runs/``.
    executor, workers
        ``"processes"`` (default; ``workers`` defaults to the number of cores),
        ``"serial"``, or ``"dask"``.
    progress
        Show a progress bar (terminal or notebook).
    retry_failed, max_failed_share
        Run again the runs that failed last time; raise ``SweepFailed`` when more than
        ``max_failed_share`` of the runs (or all of them) failed.

    Returns
    -------
    pandas.DataFrame
        One row per run: the swept values, the seed, the regime and structure, the
        theory's prediction, and the run's metrics.

    Examples
    --------
    >>> import circuits_abm as ca, tempfile
    >>> design = {"name": "demo", "base": "standard", "seeds": 2, "steps": 600,
    ...           "axes": {"geometry.sharing": {"values": [0.1, 0.9]}}}
    >>> results = ca.sweep(design, tempfile.mkdtemp(), executor="serial", progress=False)
    >>> results.groupby("geometry.sharing").size()
    geometry.sharing
    0.1    2
    0.9    2
    dtype: int64
    >>> results.groupby("geometry.sharing").regime.value_counts()  # doctest: +SKIP
    """
    if isinstance(sweep, dict):
        spec = sweep_from_dict(sweep)
    elif isinstance(sweep, Sweep):
        spec = sweep
    else:
        spec = load_sweep(sweep)
    with progress_bar(progress, total=len(spec.tasks), unit="run",
                      desc=spec.spec.name) as bar:

        def advance(done: int, total: int, record: dict | None) -> None:
            bar.update(done if record is None else 1)

        return run_sweep(spec, out, executor, workers, progress=advance,
                         retry_failed=retry_failed, max_failed_share=max_failed_share)
