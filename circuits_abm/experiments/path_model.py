"""The path model over a swept diagram: per point, the probability that a run ends with a
router (``analysis.assembly``), and the regime the theory predicts once the path is
taken into account.

The end-point theory predicts a router wherever one is fittest.  With the path, a point
predicts a router only if the chain of splits reaches one (and keeps it) in at least half
of the runs; otherwise it predicts what the best single mechanism is labelled.  The
numbers are computed once per sweep folder, in parallel, and kept in ``path.parquet``
beside the sweep's tables (bound to the sweep's fingerprint and the path model's source),
so ``circuits-abm agreement`` and the phase diagrams reuse them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binom

from circuits_abm.analysis import assembly
from circuits_abm.analysis.assembly import REPLICATES, path_prediction
from circuits_abm.analysis.candidates import Problem
from circuits_abm.analysis.theory import geometry_at
from circuits_abm.engine.loading import scenario_from_dict
from circuits_abm.engine.scenario import Scenario
from circuits_abm.experiments.executors import map_in_processes
from circuits_abm.experiments.storage import parquet_metadata, write_parquet
from circuits_abm.experiments.sweep.journal import load_results
from circuits_abm.experiments.sweep.spec import sweep_from_dict
from circuits_abm.regimes import CONDITIONAL

PATH_TABLE = "path.parquet"
# "Away from the boundary": the side the path favours wins the seeds' vote this often.
PATH_CONFIDENCE = 0.9


def point_path(scenario: dict[str, Any], replicates: int = REPLICATES) -> dict[str, Any]:
    """``path_columns`` of one point's scenario, given as a plain dict."""
    return path_columns(scenario_from_dict(scenario), replicates)


def path_columns(spec: Scenario, replicates: int = REPLICATES) -> dict[str, Any]:
    """For one scenario: the probability of a router at the end of a run, and the
    regime and structure predicted with the path (with a router, the chain's most probable
    state that has one).  The probability is NaN (and the
    end-point prediction stands) when no router is predicted, or when the chain had to be
    truncated and its upper bound does not rule a router out.  ``path_uncovered`` names
    what the chain leaves out (``assembly.UNCOVERED``), comma-separated."""
    envs = geometry_at(spec, "end")
    problem = Problem(spec, envs)
    single = problem.candidate((problem.training,))
    path = path_prediction(spec, replicates=replicates)
    if path is None or not path.decided:
        return {"router_probability": np.nan, "path_regime": "", "path_structure": "",
                "path_uncovered": ""}
    router = path.ends_with_router
    return {
        "router_probability": path.router_probability,
        "path_regime": CONDITIONAL if router else single.regime,
        "path_structure": path.predicted_state if router else single.canonical(),
        "path_uncovered": ",".join(path.uncovered),
    }


def path_table(sweep_dir: str | Path, workers: int = 1, progress: bool = True,
               replicates: int = REPLICATES) -> pd.DataFrame:
    """One row per point of the sweep in ``sweep_dir``: ``router_probability``,
    ``path_regime`` and ``path_structure`` (``point_path``).  Read from ``path.parquet`` when
    it was made for this sweep, else computed (in ``workers`` processes) and written.

    Points are matched to the sweep's scenarios by their axis values, not by index: the
    sweep is rebuilt from its stored echo, whose axes may come back in another order (the
    echo is written with sorted keys), which numbers the grid's points differently."""

    folder = Path(sweep_dir)
    _, aggregate, echo = load_results(folder)
    stored = stored_path_table(folder, echo["fingerprint"])
    if stored is not None:
        return stored
    source = Path(echo["source"])
    sweep = sweep_from_dict(echo["sweep"], echo["source"],
                            source.parent if source.is_file() else Path("."))
    if sweep.fingerprint != echo["fingerprint"]:
        raise ValueError(
            f"{folder} was swept from a base scenario that has changed since "
            f"({echo['source']}); run the sweep again before computing its paths"
        )
    axes = echo["axes"]
    scenarios = {tuple(task["values"][a] for a in axes): task["scenario"] for task in sweep.tasks}
    keys = [tuple(row[a] for a in axes) for _, row in aggregate.iterrows()]
    rows = map_in_processes(point_path, [(scenarios[k], replicates) for k in keys], workers,
                            desc=f"paths {echo['sweep']['name']}", unit="point",
                            progress=progress)
    table = pd.DataFrame([{"point": p, **row}
                          for p, row in zip(aggregate.point, rows, strict=True)])
    write_parquet(folder / PATH_TABLE, table,
                  metadata={"fingerprint": echo["fingerprint"], "model": model_stamp()})
    return table


def stored_path_table(sweep_dir: str | Path, fingerprint: str) -> pd.DataFrame | None:
    """The path table kept in ``sweep_dir`` if it was made for this sweep (``fingerprint``)
    by this path model, else None (nothing is computed)."""
    cached = Path(sweep_dir) / PATH_TABLE
    if not cached.is_file():
        return None
    meta = parquet_metadata(cached)
    if meta.get("fingerprint") != fingerprint or meta.get("model") != model_stamp():
        return None
    return pd.read_parquet(cached)


def with_path(aggregate: pd.DataFrame, paths: pd.DataFrame) -> pd.DataFrame:
    """``aggregate`` with the path columns, and ``path_predicted_regime``: the prediction
    with the path where one was computed, the end-point prediction elsewhere."""
    table = aggregate.merge(paths, on="point", how="left")
    table["path_predicted_regime"] = table.path_regime.where(
        table.path_regime.fillna("") != "", table.predicted_regime)
    return table


def model_stamp() -> str:
    """A hash of the path model's source: a cached table from another version is redone."""
    source = Path(assembly.__file__).read_bytes()
    return hashlib.sha256(source).hexdigest()[:16]


def majority_confidence(probability: float, seeds: int) -> float:
    """Probability that the side ``probability`` favours (router or not) wins a strict
    majority of ``seeds`` runs; ties count against it."""
    p = max(probability, 1.0 - probability)
    return float(binom.sf(seeds // 2, seeds, p))


def path_agreement(aggregate: pd.DataFrame, paths: pd.DataFrame) -> dict[str, float | int]:
    """How often the prediction with the path equals the simulated majority regime, over
    all points and over the points away from the boundary: away for the end-point theory
    (``aggregate.away_from_boundary``) and, where a router probability was computed, its
    favoured side winning a majority of the point's seeds at least ``PATH_CONFIDENCE`` of
    the time, with nothing the chain leaves out (``path_uncovered`` empty).  Points
    without a path keep the end-point prediction."""
    table = with_path(aggregate, paths)
    agree = table.path_predicted_regime == table.majority_regime
    confident = [
        np.isnan(p) or (majority_confidence(p, int(runs)) >= PATH_CONFIDENCE and not uncovered)
        for p, runs, uncovered in zip(table.router_probability, table.runs,
                                      table.path_uncovered.fillna(""), strict=True)
    ]
    away = table.away_from_boundary.astype(bool) & np.array(confident)
    return {
        "points": len(table),
        "regime": float(agree.mean()),
        "away_points": int(away.sum()),
        "away_regime": float(agree[away].mean()) if away.any() else float("nan"),
    }
