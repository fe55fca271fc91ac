"""The essay's three experiments as validated TOML files, and the code that runs them.

* ``single``: one environment; final propensity over a grid of the two normalised
  learnabilities (α^S, α^L with α^z = 1), for several initial skill gaps.
* ``homogeneous``: N identical, uniformly coupled environments; final propensity against N
  and the critical diversity N* against the prior propensity, per learnability ratio.
* ``heterogeneous``: sampled environments at latent coordinates in several geometries;
  N* against the prior per geometry, median and interquartile range over resamples.
* ``crosscheck``: the agent-based model's analogue against N beside the mean field
  (``circuits_abm.reward_seeking.crosscheck``).

Each run writes ``results.parquet`` (one row per integrated condition, loadable in pandas),
``experiment.json`` (the resolved file, calibrated scales, timings) and its figures.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from threadpoolctl import threadpool_limits

from circuits_abm.engine.scenario import (
    ScenarioError,
    describe_validation_error,
    read_toml,
    resolve,
)
from circuits_abm.experiments.storage import read_json, read_parquet, write_json, write_parquet
from circuits_abm.reward_seeking.crosscheck import CrossCheckExperiment, run_crosscheck
from circuits_abm.reward_seeking.dynamics import (
    HORIZON,
    MAX_MOVE,
    MAX_STEP,
    TOLERANCE,
    Initial,
    critical_diversity,
    effective_learnability,
    integrate,
    single_system,
)
from circuits_abm.reward_seeking.heterogeneous import (
    GEOMETRIES,
    Heterogeneity,
    calibrate_scale,
    mean_propensities,
)

# Caps on what an experiment file can ask for (each an error naming the product, before
# anything runs).  A grid's cells are integrated together, a few arrays of 8 bytes each.
MAX_CELLS = 250_000
# A heterogeneous system's couplings hold about N x n_features numbers per kernel (random
# features, or the sparse neighbours when there are fewer), three kernels at most.
MAX_COUPLING_ENTRIES = 2**24
MAX_HETEROGENEOUS_N = 10_000

OpenProbability = Annotated[float, Field(gt=0.0, lt=1.0)]
Positive = Annotated[float, Field(gt=0.0)]


class Section(BaseModel):
    """Base of every table of an experiment file: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class LogGrid(Section):
    """``count`` values spaced evenly in log between ``low`` and ``high``."""

    low: Positive
    high: Positive
    count: Annotated[int, Field(ge=1, le=10_000)]

    @model_validator(mode="after")
    def _ordered(self):
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        return self

    def values(self) -> np.ndarray:
        """The grid's points, evenly spaced in log."""
        return np.geomspace(self.low, self.high, self.count)

    def integers(self) -> list[int]:
        """Integer points of the grid (rounded, duplicates removed): environment counts."""
        return sorted({int(round(v)) for v in self.values()})


class InitialSpec(Section):
    """Initial reward-seeking propensity and skills, as probabilities."""

    prior: OpenProbability = 0.01
    skill_rs: OpenProbability = 0.5
    skill_local: OpenProbability = 0.2

    def resolved(self) -> Initial:
        """The initial state as the dynamics take it."""
        return Initial(self.prior, self.skill_rs, self.skill_local)


class IntegrationSpec(Section):
    """Euler integration: horizon, largest logit move per step, longest step, early stop."""

    horizon: Positive = HORIZON
    max_move: Annotated[float, Field(gt=0.0, le=1.0)] = MAX_MOVE
    max_step: Positive = MAX_STEP
    tol: Positive = TOLERANCE

    def options(self) -> dict:
        """Keyword arguments for the ODE integrator."""
        return self.model_dump()


class SingleExperiment(Section):
    """A ``single`` experiment file: one environment, final propensity over a grid of the
    two learnabilities, one panel per initial local skill."""

    kind: Literal["single"]
    alpha_s: LogGrid = LogGrid(low=0.01, high=100, count=41)
    alpha_l: LogGrid = LogGrid(low=0.01, high=100, count=41)
    local_skills: list[OpenProbability] = Field(default=[0.2, 0.35, 0.45], min_length=1)
    initial: InitialSpec = InitialSpec()
    integration: IntegrationSpec = IntegrationSpec()

    @model_validator(mode="after")
    def _grid_fits(self):
        _check_cells(self.alpha_s.count * self.alpha_l.count * len(self.local_skills),
                     "alpha_s.count x alpha_l.count x local_skills")
        return self


class HomogeneousExperiment(Section):
    """A ``homogeneous`` experiment file: N identical environments with uniform transfer."""

    kind: Literal["homogeneous"]
    transfer_z: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0
    transfer_s: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0
    transfer_l: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    alpha_l: Positive = 1.0
    ratios: list[Positive] = Field(default=[0.5, 1.0, 2.0], min_length=1)
    curve_priors: list[OpenProbability] = Field(default=[0.1, 0.01, 0.001], min_length=1)
    priors: LogGrid = LogGrid(low=1e-4, high=0.1, count=13)
    n: LogGrid = LogGrid(low=1, high=10_000, count=41)
    threshold: OpenProbability = 0.5
    initial: InitialSpec = InitialSpec()
    integration: IntegrationSpec = IntegrationSpec()

    @model_validator(mode="after")
    def _grid_fits(self):
        priors = self.priors.count + len(self.curve_priors)
        _check_cells(len(self.ratios) * priors * self.n.count,
                     "ratios x (priors.count + curve_priors) x n.count")
        return self


def _check_cells(cells: int, product: str) -> None:
    """A grid of at most ``MAX_CELLS`` cells, or a ValueError naming its product."""
    if cells > MAX_CELLS:
        raise ValueError(f"{product} = {cells:,} cells; at most {MAX_CELLS:,} are integrated "
                         "together: use coarser grids")


class GeometrySpec(Section):
    """A geometry and its coordinate scale (omit ``scale`` to calibrate it)."""

    name: Literal[GEOMETRIES]
    scale: Positive | None = None


class CalibrationSpec(Section):
    """The per-geometry scale puts ``target_n`` environments at the threshold for ``prior``."""

    prior: OpenProbability = 0.01
    target_n: Annotated[int, Field(ge=2, le=10_000)] = 100
    resamples: Annotated[int, Field(ge=1, le=100)] = 3


class HeterogeneousExperiment(Section):
    """A ``heterogeneous`` experiment file: environments at latent coordinates with RBF
    transfer kernels, log-normal learnabilities and spread initial logits."""

    kind: Literal["heterogeneous"]
    geometries: list[GeometrySpec] = Field(
        default=[GeometrySpec(name=g) for g in GEOMETRIES], min_length=1)
    length_z: Annotated[float, Field(ge=0.0)] = 1.0
    length_s: Annotated[float, Field(ge=0.0)] = 1.0
    length_l: Annotated[float, Field(ge=0.0)] = 0.002
    ratio: Positive = 1.0
    log_alpha_sd: Annotated[float, Field(ge=0.0)] = 0.5
    logit_sd: Annotated[float, Field(ge=0.0)] = 0.5
    n_features: Annotated[int, Field(ge=8, le=8192)] = 256
    priors: list[OpenProbability] = Field(default=[0.1, 0.03, 0.01, 0.003, 0.001], min_length=1)
    n: LogGrid = LogGrid(low=1, high=10_000, count=16)
    resamples: Annotated[int, Field(ge=1, le=1000)] = 10
    threshold: OpenProbability = 0.5
    calibration: CalibrationSpec = CalibrationSpec()
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    initial: InitialSpec = InitialSpec()
    integration: IntegrationSpec = IntegrationSpec()

    @model_validator(mode="after")
    def _systems_fit(self):
        largest = max(int(round(self.n.high)), self.calibration.target_n)
        if largest > MAX_HETEROGENEOUS_N:
            raise ValueError(f"n.high and calibration.target_n: {largest:,} environments; at "
                             f"most {MAX_HETEROGENEOUS_N:,}")
        if largest * self.n_features > MAX_COUPLING_ENTRIES:
            raise ValueError(
                f"{largest:,} environments x n_features {self.n_features} = "
                f"{largest * self.n_features:,} coupling entries per kernel; at most "
                f"{MAX_COUPLING_ENTRIES:,}: fewer features or a smaller n.high")
        return self

    def heterogeneity(self, geometry: str, scale: float = 1.0) -> Heterogeneity:
        """The heterogeneity settings for one geometry, at ``scale`` times the file's spread."""
        return Heterogeneity(
            geometry=geometry, scale=scale, length_z=self.length_z, length_s=self.length_s,
            length_l=self.length_l, ratio=self.ratio, log_alpha_sd=self.log_alpha_sd,
            logit_sd=self.logit_sd, n_features=self.n_features)


Experiment = (SingleExperiment | HomogeneousExperiment | HeterogeneousExperiment
              | CrossCheckExperiment)
KINDS: dict[str, type[BaseModel]] = {
    "single": SingleExperiment,
    "homogeneous": HomogeneousExperiment,
    "heterogeneous": HeterogeneousExperiment,
    "crosscheck": CrossCheckExperiment,
}


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment file, or a built-in one by name (``single``,
    ``homogeneous``, ``heterogeneous``, ``crosscheck``); ``ScenarioError`` names file
    and field."""
    path = resolve(path, "experiment")
    data = read_toml(path)
    model = KINDS.get(data.get("kind"))
    if model is None:
        raise ScenarioError(str(path), [
            f"`kind`: must be one of {', '.join(KINDS)} (got {data.get('kind')!r})"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [describe_validation_error(err, model) for err in exc.errors()]
        raise ScenarioError(str(path), problems) from None


# --------------------------------------------------------------------------- runners


def run_single(spec: SingleExperiment) -> pd.DataFrame:
    """Final propensity on the α^S × α^L grid for each initial local skill: one uncoupled
    Euler integration holds every cell of every panel."""
    alpha_s, alpha_l, local = np.meshgrid(spec.alpha_s.values(), spec.alpha_l.values(),
                                          spec.local_skills, indexing="ij")
    initial = spec.initial.resolved()
    system = single_system(alpha_s, alpha_l, Initial(initial.prior, initial.skill_rs, local))
    final = integrate(system, **spec.integration.options()).propensity[:, 0]
    return pd.DataFrame({"alpha_s": alpha_s.ravel(), "alpha_l": alpha_l.ravel(),
                         "skill_rs": initial.skill_rs, "skill_local": local.ravel(),
                         "final_propensity": final})


def run_homogeneous(spec: HomogeneousExperiment) -> pd.DataFrame:
    """Final mean propensity for every (ratio, prior, N): the homogeneous system reduces
    exactly to one environment with effective learnabilities, so every condition is one row
    of a single uncoupled integration."""
    priors = sorted(set(spec.priors.values()) | set(spec.curve_priors))
    ratio, prior, n = (a.ravel() for a in np.meshgrid(spec.ratios, priors, spec.n.integers(),
                                                      indexing="ij"))
    initial = spec.initial.resolved()
    system = single_system(
        alpha_s=effective_learnability(ratio * spec.alpha_l, n, spec.transfer_s),
        alpha_l=effective_learnability(spec.alpha_l, n, spec.transfer_l),
        alpha_z=effective_learnability(1.0, n, spec.transfer_z),
        initial=Initial(prior, initial.skill_rs, initial.skill_local),
    )
    final = integrate(system, **spec.integration.options()).propensity[:, 0]
    return pd.DataFrame({"ratio": ratio, "prior": prior, "n": n, "mean_propensity": final})


def critical_diversities(table: pd.DataFrame, keys: list[str], threshold: float) -> pd.DataFrame:
    """N* per group of ``keys`` from a table with ``n`` and ``mean_propensity`` columns: one
    row per group, ``critical_n`` None where no N in the table crosses the threshold."""
    rows = []
    for group_keys, group in table.groupby(keys):
        by_n = dict(zip(group["n"], group["mean_propensity"], strict=True))
        rows.append({**dict(zip(keys, group_keys, strict=True)),
                     "critical_n": critical_diversity(by_n, threshold)})
    return pd.DataFrame(rows)


def calibrated_scales(spec: HeterogeneousExperiment) -> dict[str, float]:
    """Each geometry's coordinate scale: as given, or calibrated (see calibrate_scale)."""
    scales = {}
    for geometry in spec.geometries:
        if geometry.scale is not None:
            scales[geometry.name] = geometry.scale
        else:
            scales[geometry.name] = calibrate_scale(
                spec.heterogeneity(geometry.name), spec.calibration.prior,
                spec.calibration.target_n, spec.threshold, spec.seed,
                spec.calibration.resamples, initial=spec.initial.resolved(),
                **spec.integration.options())
    return scales


def _heterogeneous_task(spec: HeterogeneousExperiment, geometry: str, scale: float,
                        resample: int) -> list[dict]:
    """Mean propensity at every N of one resample of one geometry, per prior.

    One BLAS thread: tasks already run one per core, and more threads would fight."""
    h = spec.heterogeneity(geometry, scale)
    rows = []
    with threadpool_limits(1):
        for n in spec.n.integers():
            means = mean_propensities(n, spec.priors, h, spec.seed, resample,
                                      spec.initial.resolved(), **spec.integration.options())
            rows.extend({"geometry": geometry, "scale": scale, "resample": resample, "n": n,
                         "prior": prior, "mean_propensity": float(m)}
                        for prior, m in zip(spec.priors, means, strict=True))
    return rows


def run_heterogeneous(spec: HeterogeneousExperiment, scales: dict[str, float],
                      workers: int = 1, progress: bool = True) -> pd.DataFrame:
    """Every (geometry, resample) over the whole N grid, in ``workers`` processes."""
    from circuits_abm.experiments.executors import map_in_processes  # noqa: PLC0415 (pools on demand)

    tasks = [(spec, g, scales[g], r) for g in scales for r in range(spec.resamples)]
    per_task = map_in_processes(_heterogeneous_task, tasks, workers, "heterogeneous", "resample",
                                progress)
    rows = [row for task_rows in per_task for row in task_rows]
    return pd.DataFrame(rows)


def heterogeneous_summary(table: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Median and interquartile range of N* over resamples, per geometry and prior.

    A resample with no N* in the sweep counts as beyond the sweep (infinite); the median is
    reported only when at least half the resamples cross (``crossed`` says how many did)."""
    per_resample = critical_diversities(table, ["geometry", "resample", "prior"], threshold)
    rows = []
    for (geometry, prior), group in per_resample.groupby(["geometry", "prior"]):
        values = group["critical_n"].astype(float).fillna(np.inf).to_numpy()
        q25, median, q75 = np.quantile(values, [0.25, 0.5, 0.75], method="lower")
        rows.append({"geometry": geometry, "prior": prior, "median_n": median,
                     "q25_n": q25, "q75_n": q75, "crossed": int(np.isfinite(values).sum()),
                     "resamples": len(values)})
    return pd.DataFrame(rows).replace(np.inf, np.nan)


# --------------------------------------------------------------------------- one command


def run_experiment(path: str | Path, out: str | Path, workers: int = 1,
                   progress: bool = True) -> Path:
    """Validate, run and write one experiment file's tables and figure to ``out``."""
    spec = load_experiment(path)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    meta: dict = {"source": str(path), "experiment": spec.model_dump()}
    if isinstance(spec, SingleExperiment):
        table = run_single(spec)
    elif isinstance(spec, HomogeneousExperiment):
        table = run_homogeneous(spec)
        summary = critical_diversities(table, ["ratio", "prior"], spec.threshold)
        write_parquet(out / SUMMARY, summary)
    elif isinstance(spec, CrossCheckExperiment):
        table = run_crosscheck(spec, workers, progress)
    else:
        scales = calibrated_scales(spec)
        meta["scales"] = scales
        meta["calibration_seconds"] = round(time.perf_counter() - started, 2)
        table = run_heterogeneous(spec, scales, workers, progress)
        write_parquet(out / SUMMARY, heterogeneous_summary(table, spec.threshold))
    meta["seconds"] = round(time.perf_counter() - started, 2)
    write_parquet(out / RESULTS, table)
    write_json(out / META, meta)
    draw_figures(out)
    return out


RESULTS, SUMMARY, META = "results.parquet", "critical_diversity.parquet", "experiment.json"


def draw_figures(out: str | Path) -> Path:
    """(Re)draw the figure of a finished experiment folder from its stored tables."""
    from circuits_abm.reward_seeking import figures  # noqa: PLC0415
    from circuits_abm.viz.style import save_figure  # noqa: PLC0415 (matplotlib is slow)

    out = Path(out)
    if not (out / META).is_file():
        raise FileNotFoundError(f"{out} is not a finished experiment: no {META}")
    spec_data = read_json(out / META)["experiment"]
    spec = KINDS[spec_data["kind"]].model_validate(spec_data)
    table = read_parquet(out / RESULTS)
    if isinstance(spec, SingleExperiment):
        return save_figure(figures.single_heatmaps(table), out / "single_heatmap.png")
    if isinstance(spec, CrossCheckExperiment):
        return save_figure(figures.crosscheck_figure(table, spec), out / "crosscheck.png")
    summary = read_parquet(out / SUMMARY)
    if isinstance(spec, HomogeneousExperiment):
        fig = figures.homogeneous_curves(table, summary, spec)
        return save_figure(fig, out / "homogeneous.png")
    return save_figure(figures.heterogeneous_scaling(summary, spec), out / "heterogeneous.png")
