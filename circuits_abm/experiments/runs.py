"""The Python API: load a scenario, run it, get DataFrames back, save or reload a run.

>>> import circuits_abm as ca
>>> result = ca.run("scenarios/standard.toml", seed=1)
>>> result.phases.head()          # retention matrix and dominant structure per phase
>>> result.save("runs/standard")  # timeseries.parquet, phases.parquet, summary.json

The CLI (``circuits_abm.cli``) is a thin layer over these functions.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd

from circuits_abm.analysis.classification import classify, end_window
from circuits_abm.analysis.theory import predict
from circuits_abm.engine.circuits import mechanisms, routers
from circuits_abm.engine.loading import load_scenario, override, revalidated, run_length
from circuits_abm.engine.model import CircuitsModel
from circuits_abm.engine.monitoring import attribution, probe_attribution, readings_at_the_end
from circuits_abm.engine.records import QUARANTINE_COLUMNS
from circuits_abm.engine.scenario import Scenario
from circuits_abm.engine.schedule import Phase
from circuits_abm.experiments.run_checks import RunFolderError, check_run
from circuits_abm.experiments.storage import (
    OutputError,
    ensure_writable,
    read_json,
    read_parquet,
    write_json,
    write_parquet,
)

logger = logging.getLogger("circuits_abm")
TIMESERIES = "timeseries.parquet"
PHASES = "phases.parquet"
QUARANTINE = "quarantine.parquet"
ROUTING_COLUMNS = ("routing", "mechanism_rewards")  # Arrow maps: mechanism path -> number
SUMMARY = "summary.json"


@dataclass
class RunResult:
    """Everything a run produced: tidy tables and a JSON-able summary.

    Attributes
    ----------
    timeseries
        One row per recorded step and lineage: ``step``, ``phase``, ``environment``,
        ``lineage``, ``parent_lineage``, ``kind``, ``structure``, ``share``, ``variants``,
        ``mean_fitness``.
    phases
        One row per phase and environment: the population's and the dominant circuit's
        reward, the dominant structure and its routing table (a dict per row), the router
        share, and whether the environment was trained or held out.
    summary
        The classification, the theory's prediction, the resolved scenario, the final
        population and provenance (versions, git commit, scenario hash); JSON-able.
    quarantine
        One row per phase when the scenario declares motivations (empty otherwise).

    Examples
    --------
    >>> import circuits_abm as ca
    >>> result = ca.run("standard", seed=1, steps=600, progress=False)
    >>> result.regime in ("ecological_generalist", "conditional_policy", "strategy_churn",
    ...                   "undetermined")
    True
    >>> sorted(result.phases.environment.unique())
    ['rl_code', 'rl_math', 'sft_chat', 'sft_code']
    >>> result.phases.groupby("environment").population_reward.mean()  # doctest: +SKIP
    """

    timeseries: pd.DataFrame
    phases: pd.DataFrame
    summary: dict[str, Any]
    quarantine: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=QUARANTINE_COLUMNS)
    )

    @property
    def regime(self) -> str:
        """The root regime of the run's classification, for example ``"conditional_policy"``."""
        return self.summary["regime"]

    @property
    def structure(self) -> str:
        """The full classification as a canonical structure string (nested regimes)."""
        return self.summary["structure"]

    def save(self, out_dir: str | Path) -> Path:
        """Write the files, each atomically, the summary last (its presence marks
        completion).  If any write fails (a full disk, an interrupt), the files this call
        wrote are removed again, so the folder never holds part of a run."""
        out = Path(out_dir)
        tables = {TIMESERIES: self.timeseries, PHASES: self.phases}
        if "monitoring" in self.summary:  # only scenarios with motivations have a monitor
            tables[QUARANTINE] = self.quarantine
        else:
            (out / QUARANTINE).unlink(missing_ok=True)  # a stale one would be read as ours
        written: list[Path] = []
        try:
            for name, table in tables.items():
                write_parquet(out / name, table)
                written.append(out / name)
            write_json(out / SUMMARY, self.summary)
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        return out


def package_version() -> str:
    """The installed version of circuits_abm."""
    return version("circuits_abm")


DEPENDENCIES = ("mesa", "numpy", "numba", "networkx", "pandas", "pyarrow", "pydantic", "scipy",
                "matplotlib")


@lru_cache(maxsize=1)
def environment_provenance() -> dict[str, Any]:
    """What produced a result: package and dependency versions, Python, and the git commit
    of the source checkout when there is one (``dirty`` if it has uncommitted changes)."""
    import platform  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    here = Path(__file__).resolve().parent
    commit = None
    try:
        head = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=5)
        if head.returncode == 0:
            status = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--",
                                     "."], capture_output=True, text=True, timeout=5)
            commit = head.stdout.strip() + ("-dirty" if status.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "package_version": package_version(),
        "python": platform.python_version(),
        "dependencies": {name: version(name) for name in DEPENDENCIES},
        "git_commit": commit,
    }


def scenario_hash(scenario: dict[str, Any]) -> str:
    """A short content hash of a resolved scenario (defaults filled in)."""
    text = json.dumps(scenario, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def provenance(scenario: dict[str, Any]) -> dict[str, Any]:
    """``environment_provenance`` and the scenario's hash."""
    return {**environment_provenance(), "scenario_hash": scenario_hash(scenario)}


def run(
    scenario: Scenario | str | Path,
    seed: int | None = None,
    steps: int | None = None,
    progress: Callable[[Phase], None] | bool = True,
) -> RunResult:
    """Run a scenario and return its records.

    Parameters
    ----------
    scenario
        A ``Scenario``, a scenario file, or the name of a built-in (``"standard"``).
        A scenario object is validated again, so ``spec.model_copy(update=...)`` cannot
        smuggle in a field that would fail later.
    seed, steps
        Override the scenario's seed and number of steps.
    progress
        ``True`` (default): a progress bar on a terminal or in a notebook; ``False``: none;
        or a function called with every finished ``circuits_abm.engine.schedule.Phase``.

    Returns
    -------
    RunResult
        ``timeseries`` and ``phases`` DataFrames, the ``summary`` dict (classification,
        prediction, provenance) and, with motivations, the ``quarantine`` table.

    Raises
    ------
    ScenarioError
        If the scenario cannot run (unknown field, value out of range, missing file).

    See Also
    --------
    sweep : many runs over a grid of parameters and seeds.
    predict : the regime the theory expects, without running.

    Examples
    --------
    >>> import circuits_abm as ca
    >>> result = ca.run("standard", seed=1, steps=600, progress=False)
    >>> len(result.phases) == 4 * result.summary["phases"]  # a row per phase and environment
    True
    >>> print(result.structure)  # doctest: +SKIP
    conditional_policy[specialist{sft_code}, strategy_churn{rl_code,rl_math,sft_chat}]
    """
    spec = revalidated(scenario) if isinstance(scenario, Scenario) else load_scenario(scenario)
    if spec.monitor.restart_lag is not None:
        return recovery_loop(spec, seed, steps, progress)
    return run_once(spec, seed, steps, progress)


def simulate(spec: Scenario, seed: int | None, steps: int | None,
             progress: Callable[[Phase], None] | bool) -> tuple[CircuitsModel, float]:
    """The model of one run of a validated scenario, run to its end (or its halt), and the
    wall time it took; ``progress`` as ``run`` describes it."""
    total = run_length(steps, spec)
    logger.info("running %s, seed %s, %d steps", spec.name, seed, total)
    started = time.perf_counter()
    model = CircuitsModel(spec, steps=steps, collect=False,
                          **({} if seed is None else {"seed": seed}))
    if progress is True:
        from tqdm.auto import tqdm  # noqa: PLC0415

        with tqdm(total=total, unit="step", desc=spec.name, disable=None) as bar:
            model.run(lambda phase: bar.update(phase.length))
    else:
        model.run(progress or None)
    return model, time.perf_counter() - started


def run_once(spec: Scenario, seed: int | None, steps: int | None,
             progress: Callable[[Phase], None] | bool) -> RunResult:
    """One run of a validated scenario, as ``run`` describes it."""
    model, wall = simulate(spec, seed, steps, progress)
    result = result_of(model, wall)
    logger.info("%s seed %s: %s in %.2f s", spec.name, model.seed, result.structure, wall)
    return result


def recovery_loop(spec: Scenario, seed: int | None, steps: int | None,
                  progress: Callable[[Phase], None] | bool) -> RunResult:
    """The recovery loop of ``monitor.restart_lag``: run until the alarm (the model halts
    there), find the environments that teach the motivation with the probe
    (``circuits_abm.engine.monitoring.probe``), and run again with one intervention at
    ``alarm - restart_lag`` (not before step 0) that sets their payoff for the motivation
    to 0.  Runs are reproducible, so up to that step the second run is the first: the
    checkpoint.  Without an alarm the first run is the result; with an alarm but nothing
    flagged, the scenario runs again without the loop.  ``summary["monitoring"]
    ["recovery"]`` says what happened."""
    first, wall = simulate(spec, seed, steps, False)
    alarm = first.alarm_step
    if alarm is None:
        result = result_of(first, wall)
        result.summary["monitoring"]["recovery"] = {"alarm_step": None, "flagged": [],
                                                    "restart_step": None}
        return result
    flagged = probe_attribution(first)["flagged"]
    restart = max(0, alarm - spec.monitor.restart_lag) if flagged else None
    again = override(spec, {"monitor.restart_lag": None,
                            "interventions": fixed_interventions(spec, flagged, restart)})
    result = run_once(again, first.seed, steps, progress)
    result.summary["monitoring"]["recovery"] = {"alarm_step": alarm, "flagged": flagged,
                                                "restart_step": restart}
    return result


def fixed_interventions(spec: Scenario, flagged: list[str],
                        restart: int | None) -> list[dict[str, Any]]:
    """The scenario's interventions with the recovery loop's fix: from step ``restart`` on,
    the ``flagged`` environments pay 0 for the monitored motivation, and a later
    intervention no longer changes that payoff (a fixed grader stays fixed); an
    intervention left with nothing to do is dropped."""
    if not flagged:
        return [iv.model_dump(mode="json") for iv in spec.interventions]
    name = spec.monitored
    kept = []
    for iv in spec.interventions:
        data = iv.model_dump(mode="json")
        if iv.step >= restart:
            pays = {env: {k: v for k, v in paid.items() if env not in flagged or k != name}
                    for env, paid in data["pays"].items()}
            data["pays"] = {env: paid for env, paid in pays.items() if paid}
            if not (data["pays"] or iv.rule or iv.discard or iv.changes_geometry):
                continue
        kept.append(data)
    fix = {"step": restart, "label": "recovery: fix the flagged environments",
           "pays": {env: {name: 0.0} for env in flagged}}
    return [*kept, fix]


def result_of(model: CircuitsModel, wall_time: float = 0.0) -> RunResult:
    """The records of ``model`` so far as a ``RunResult``, classified and predicted: the
    end of ``run``, and the explorer's view of a model it is still stepping."""
    timeseries, phases, quarantine = model.recorder.tables()
    summary = summarise(model, wall_time)
    summary.update(classification_fields(phases))
    summary.update(prediction_fields(model.spec))
    if model.spec.motivations:
        summary["monitoring"] = monitoring_fields(model, phases, quarantine)
    return RunResult(timeseries, phases, summary, quarantine)


def monitoring_fields(model: CircuitsModel, phases: pd.DataFrame,
                      quarantine: pd.DataFrame) -> dict[str, Any]:
    """What the monitor saw and what the run ended with: the update rule, the step the
    alarm fired (if it did) and whether the run halted there, which environments pushed the
    quarantine, the population's motivation in every environment at the last phase end
    (after any discard), its mean over training, held-out and evaluation environments, and
    the population's capability (reward on the capability demands alone) over the window and
    at the last phase end (after any discard)."""
    spec = model.spec
    window = end_window(phases)
    return {
        "rule": model.update_rule,
        "monitored": spec.monitored,
        "alarm_step": model.alarm_step,
        "halted": model.halted,
        "attribution": attribution(quarantine, spec),
        "probe": probe_attribution(model),
        **readings_at_the_end(spec, phases),
        "capability": float(window[~window.held_out].population_capability.mean()),
    }


def prediction_fields(spec: Scenario) -> dict[str, Any]:
    """The theory's prediction (``circuits_abm.analysis.theory``), stored beside the observed
    classification: at the end of the run, and before the first intervention if any."""
    return copy.deepcopy(dict(_predictions(spec.model_dump_json())))


@lru_cache(maxsize=64)
def _predictions(spec_json: str) -> tuple[tuple[str, Any], ...]:
    """Cached per scenario: a sweep runs every point on several seeds in each worker."""
    spec = Scenario.model_validate_json(spec_json)
    fields = [("prediction", predict(spec).to_dict())]
    if spec.interventions:
        fields.append(("prediction_before_interventions", predict(spec, at="start").to_dict()))
    return tuple(fields)


def classification_fields(phases: pd.DataFrame) -> dict[str, Any]:
    """``regime``, ``structure`` (the canonical form, which predictions, sweeps and the
    catalogue use too), ``structure_raw`` (the tree in the classifier's order) and
    ``classification`` entries for a summary."""
    result = classify(phases)
    return {
        "regime": result.regime,
        "structure": result.canonical,
        "structure_raw": result.structure,
        "classification": result.to_dict(),
    }


def reclassify(run_dir: str | Path, write: bool = True) -> dict[str, Any]:
    """Classify a stored run again (e.g. after the classifier changed); update its summary."""
    run = load_run(run_dir)
    try:
        fields = classification_fields(run.phases)
    except (KeyError, AttributeError, TypeError, ValueError) as exc:
        raise RunFolderError(
            f"cannot classify {Path(run_dir) / PHASES}: not a phases table of this package "
            f"({type(exc).__name__}: {exc})"
        ) from None
    if write:
        try:
            write_json(Path(run_dir) / SUMMARY, {**run.summary, **fields})
        except OSError as exc:
            raise OutputError(f"cannot update {Path(run_dir) / SUMMARY}: {exc.strerror}") from None
    return fields


def summarise(model: CircuitsModel, wall_time: float) -> dict[str, Any]:
    """Scenario echo, seed, version and provenance, final population and wall time."""
    return {**run_fields(model.spec, model.seed, model.n_steps, len(model.phases)),
            "final_population": final_population(model), "wall_time_seconds": wall_time}


def run_fields(spec: Scenario, seed: int, steps: int, phases: int) -> dict[str, Any]:
    """What every run's summary says of its scenario, whatever ran it: the scenario echo,
    provenance, seed, steps, phases, environments and interventions."""
    scenario = spec.model_dump(mode="json")
    return {
        "scenario": scenario,
        "provenance": provenance(scenario),
        "seed": seed,
        "steps": steps,
        "phases": phases,
        "package_version": package_version(),
        "environments": [e.name for e in spec.environments],
        "held_out": [e.name for e in spec.environments if e.held_out],
        "interventions": [
            {
                "step": iv.step,
                "label": iv.label,
                "nodes": iv.nodes,
                "edges": [list(e) for e in iv.edges],
                "rule": iv.rule,
                "discard": iv.discard,
                "pays": iv.pays,
            }
            for iv in spec.interventions
        ],
    }


def final_population(model: CircuitsModel) -> list[dict[str, Any]]:
    """The surviving circuits, largest share first, with their parameters."""
    rows = []
    for share, circuit in sorted(
        zip(model.shares, model.circuits, strict=True), key=lambda p: (-p[0], p[1].unique_id)
    ):
        rows.append(
            {
                "id": circuit.unique_id,
                "lineage": circuit.lineage,
                "parent_lineage": circuit.parent_lineage,
                "born": circuit.born,
                "share": float(share),
                "kind": circuit.kind,
                "structure": circuit.structure,
                "mechanisms": [
                    {"rule": m.rule, "theta": [round(float(v), 6) for v in m.theta]}
                    for m in mechanisms(circuit.root)
                ],
                "sharpness": [round(r.sharpness, 6) for r in routers(circuit.root)],
            }
        )
    return rows


def load_run(run_dir: str | Path) -> RunResult:
    """Reload a run that ``circuits-abm run`` or ``RunResult.save`` wrote.

    Parameters
    ----------
    run_dir
        The run's folder (it holds ``summary.json`` and the Parquet tables).

    Returns
    -------
    RunResult

    Raises
    ------
    FileNotFoundError
        If a file is missing (the run did not finish, or it is not a run folder).
    RunFolderError
        If a file cannot be read (damaged, or not written by this package).

    Examples
    --------
    >>> import circuits_abm as ca
    >>> import tempfile
    >>> result = ca.run("standard", seed=1, steps=600, progress=False)
    >>> folder = result.save(tempfile.mkdtemp())
    >>> ca.load_run(folder).structure == result.structure
    True
    """
    run_dir = Path(run_dir)
    missing = [name for name in (TIMESERIES, PHASES, SUMMARY) if not (run_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{run_dir} is not a complete run: missing {', '.join(missing)}")
    result = RunResult(
        _read(run_dir / TIMESERIES, read_parquet),
        _with_map_columns(_read(run_dir / PHASES, read_parquet)),
        _read(run_dir / SUMMARY, read_json),
    )
    check_run(run_dir, result.timeseries, result.phases, result.summary)
    if (run_dir / QUARANTINE).is_file():  # runs saved before motivations existed have none
        result.quarantine = _read(run_dir / QUARANTINE, read_parquet)
    return result


def _with_map_columns(phases: pd.DataFrame) -> pd.DataFrame:
    """Routing tables as dicts: runs saved by version 0.1 stored them as JSON text."""
    for column in ROUTING_COLUMNS:
        if column in phases and len(phases) and isinstance(phases[column].iloc[0], str):
            phases[column] = [json.loads(cell) for cell in phases[column]]
    return phases


def _read(path: Path, reader):
    try:
        return reader(path)
    except (OSError, ValueError) as exc:  # pyarrow and json errors are ValueErrors
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunFolderError(f"cannot read {path}: {reason}") from None


def _without_seed(scenario: Any) -> Any:
    """A scenario dict without its ``seed`` (a summary records the seed the run used there;
    the seed is compared on its own)."""
    if not isinstance(scenario, dict):
        return None
    return {k: v for k, v in scenario.items() if k != "seed"}


def clear_run_files(out: Path) -> None:
    """Remove what a run and ``figures run`` write into ``out`` (the tables, the summary,
    the ``figures`` folder), so that an overwritten run cannot inherit a stale file; a
    symbolic link of those names is removed, not followed, and other files stay."""
    for name in (SUMMARY, TIMESERIES, PHASES, QUARANTINE):
        (out / name).unlink(missing_ok=True)
    figures = out / "figures"
    if figures.is_symlink():
        figures.unlink()
    elif figures.is_dir():
        shutil.rmtree(figures)


def claim_run_folder(out: str | Path, spec: Scenario, seed: int, steps: int,
                     overwrite: bool = False, learner: dict[str, Any] | None = None) -> Path:
    """Check, before a run starts, that ``out`` can take its files: it is writable, and it
    is empty, or holds this very run (same scenario, seed, steps and, for a network, the
    same ``learner`` settings: running again gives the same files), or ``overwrite`` is
    set.  ``OutputError`` otherwise."""
    out = ensure_writable(Path(out))
    present = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    if present and overwrite:
        clear_run_files(out)
    if not present or overwrite:
        return out
    if (out / SUMMARY).is_file():
        try:
            old = read_json(out / SUMMARY)
        except ValueError:
            old = {}
        stored = {k: v for k, v in (old.get("model") or {}).items() if k != "parameters"}
        same = (_without_seed(old.get("scenario")) == _without_seed(spec.model_dump(mode="json"))
                and old.get("seed") == seed and old.get("steps") == steps
                and (stored or None) == learner)
        if same:
            return out
        what = f"another run ({old.get('scenario', {}).get('name', '?')} seed {old.get('seed')})"
    else:
        what = f"other files ({', '.join(present[:3])}{', ...' if len(present) > 3 else ''})"
    raise OutputError(f"{out} holds {what}; pass --overwrite to replace it, or choose "
                      "another --out")
