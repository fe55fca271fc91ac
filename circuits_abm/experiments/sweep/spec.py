"""The sweep file: its schema, and the sweep it resolves to.

A sweep file (TOML, in ``sweeps/``) names a base scenario and axes over any scenario field
by dotted path (``geometry.sharing``, ``schedule.phase_length``,
``environments.0.held_out``), with a design and a number of seeds; docs/sweeps.md lists
every field.  ``load_sweep`` validates the file, its base scenario and every point before
anything runs, and builds one task per point and seed.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, Strict, ValidationError, model_validator

from circuits_abm.defaults import MAX_STEPS, MAX_SWEEP_RUNS
from circuits_abm.engine.loading import scenario_from_dict
from circuits_abm.engine.scenario import (
    Name,
    Scenario,
    ScenarioError,
    Section,
    describe_errors,
    describe_validation_error,
    read_toml,
    resolve,
    set_dotted,
)
from circuits_abm.engine.validation import record_problems
from circuits_abm.experiments.runs import package_version, scenario_hash
from circuits_abm.experiments.sweep.design import (
    COUNT_AXIS,
    SENSITIVITY_DESIGNS,
    derive_seed,
    design_points,
    interchangeable_environments,
)
from circuits_abm.experiments.sweep.records import Task
from circuits_abm.networks.settings import NeuralSettings

Count = Annotated[int, Field(ge=1, le=MAX_SWEEP_RUNS)]  # of seeds, samples, axis values


class AxisSpec(Section):
    """One swept field: exactly one of ``values``, ``linspace``, ``logspace`` or ``range``."""

    values: Annotated[list[float | int | str | bool],
                      Field(min_length=1, max_length=MAX_SWEEP_RUNS)] | None = None
    linspace: Annotated[tuple[float, float, Count], Strict(False)] | None = None
    logspace: (
        Annotated[tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)],
                        Count], Strict(False)] | None
    ) = None
    range: Annotated[tuple[float, float], Strict(False)] | None = None  # TOML has no tuples
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

    def count(self) -> int:
        """How many values the axis has on a grid."""
        if self.values is not None:
            return len(self.values)
        return (self.linspace or self.logspace)[2]

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
    seeds: Count = 3
    root_seed: Annotated[int, Field(ge=0)] = 0
    steps: Annotated[int, Field(ge=1, le=MAX_STEPS)] | None = None
    design: Literal["grid", "latin_hypercube", "sobol", "saltelli", "morris"] = "grid"
    samples: Count | None = None
    overrides: dict[str, Any] = {}
    axes: Annotated[dict[str, AxisSpec], Field(min_length=1)]
    model: Literal["agents", "neural"] = "agents"
    neural: NeuralSettings = NeuralSettings()

    @model_validator(mode="after")
    def _neural_settings_need_the_neural_model(self) -> SweepSpec:
        if self.model == "agents" and self.neural != NeuralSettings():
            raise ValueError("a [neural] table needs model = \"neural\"")
        return self

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

    @model_validator(mode="after")
    def _runs_are_bounded(self) -> SweepSpec:
        runs = self.point_count() * self.seeds
        if runs > MAX_SWEEP_RUNS:
            raise ValueError(
                f"{self.point_count():,} points x {self.seeds} seeds = {runs:,} runs; at most "
                f"{MAX_SWEEP_RUNS:,} in one sweep: use fewer values, samples or seeds, or "
                "split it into several sweeps")
        return self

    def point_count(self) -> int:
        """How many points the design has (before any is built)."""
        if self.design == "grid":
            return math.prod(axis.count() for axis in self.axes.values())
        per_sample = {"saltelli": len(self.axes) + 2, "morris": len(self.axes) + 1}
        return self.samples * per_sample.get(self.design, 1)


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
    def learner(self) -> dict[str, Any] | None:
        """The network's settings when the sweep trains networks (``model = "neural"``)."""
        return self.spec.neural.model_dump() if self.spec.model == "neural" else None

    @property
    def fingerprint(self) -> str:
        """A hash of every run the sweep consists of (scenario, seed, steps, version): the
        identity an output folder is bound to."""
        ids = "".join(sorted(t["run_id"] for t in self.tasks))
        return hashlib.sha256(ids.encode()).hexdigest()[:20]

    def _tasks(self) -> list[Task]:
        tasks: list[Task] = []
        problems: list[str] = []
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
            if self.spec.steps is not None:
                problems.extend(f"point {point}: {p}"
                                for p in record_problems(resolved, self.spec.steps))
            scenario = resolved.model_dump(mode="json")
            # Sensitivity designs may repeat a point (Morris trajectories share grid
            # levels); each repeat is a design row of its own, so it gets its own seeds.
            keyed = {**point, "design_row": index} if self.spec.design in SENSITIVITY_DESIGNS \
                else point
            for replicate in range(self.spec.seeds):
                seed = derive_seed(self.spec.root_seed, keyed, replicate)
                tasks.append(
                    {
                        "run_id": content_hash(scenario, seed, self.spec.steps, version,
                                               self.learner),
                        "scenario_hash": scenario_hash(scenario),
                        "point": index,
                        "replicate": replicate,
                        "seed": seed,
                        "steps": self.spec.steps,
                        "values": point,
                        "scenario": scenario,
                        "model": self.spec.model,
                        "neural": self.spec.neural.model_dump(),
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


def content_hash(scenario: dict[str, Any], seed: int, steps: int | None, version: str,
                 learner: dict[str, Any] | None = None) -> str:
    """The run id: a hash of everything that determines a run's result (``learner``: a
    network's settings, for neural sweeps; agent-based runs hash as they always did)."""
    extra = {} if learner is None else {"learner": learner}
    text = json.dumps(
        {"scenario": scenario, "seed": seed, "steps": steps, "version": version, **extra},
        sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()[:20]
