"""Which swept parameters decide the outcome: Sobol indices and Morris screening (SALib).

A sweep with ``design = "saltelli"`` runs SALib's Sobol' (Saltelli) sample of its axes;
``design = "morris"`` runs Morris trajectories.  Each parameter point is run on several
seeds, and an outcome is averaged over them first, so a categorical regime becomes a number:
the probability of that regime at the point.  The outcomes analysed are the probability of
each root regime, the router share, the lineage turnover and the recency bias, and, to set
beside them, the theory's predicted regime at each point (``theory_p_<regime>``): the
indices of what the closed-form theory expects from the parameters alone.

* **Sobol indices**: ``S1`` is the share of the outcome's variance explained by one axis
  alone, ``ST`` the share it takes part in (alone or with others); ``ST - S1`` is interaction.
  Confidence intervals are SALib's bootstrap (95%).
* **Morris**: ``mu_star`` is the mean absolute elementary effect of an axis (a change of the
  outcome per whole range of the axis), ``sigma`` its spread (non-linearity or interaction):
  a cheap first pass to drop axes that do not matter.

Axes with ``scale = "log"`` are sampled and analysed in log10 space; integer axes are
rounded after sampling (their indices then describe the rounded parameter).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from circuits_abm.regimes import REGIMES

OUTCOMES = (*(f"p_{regime}" for regime in REGIMES), "router_share", "lineage_turnover",
            "recency_bias", *(f"theory_p_{regime}" for regime in REGIMES))
MORRIS_LEVELS = 4
BOOTSTRAP = 1000
CONFIDENCE = 0.95


def problem_of(axes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """SALib's problem for sweep axes given as dicts with ``range`` and ``scale``."""
    bounds = []
    for name, axis in axes.items():
        if axis.get("range") is None:
            raise ValueError(f"axis {name!r} needs a `range` for a sensitivity design")
        low, high = axis["range"]
        bounds.append([np.log10(low), np.log10(high)] if axis.get("scale") == "log"
                      else [low, high])
    return {"num_vars": len(axes), "names": list(axes), "bounds": bounds}


def _to_values(unit: np.ndarray, axes: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of SALib's sample (in problem space) as parameter points."""
    points = []
    for row in unit:
        point = {}
        for value, (name, axis) in zip(row, axes.items(), strict=True):
            value = 10.0**value if axis.get("scale") == "log" else float(value)
            point[name] = round(value) if axis.get("integer") else value
        points.append(point)
    return points


def saltelli_points(axes: dict[str, dict[str, Any]], samples: int,
                    seed: int) -> list[dict[str, Any]]:
    """Sobol' sample for first-order and total indices: ``samples * (axes + 2)`` points."""
    from SALib.sample import sobol  # noqa: PLC0415 (the `analysis` extra)

    unit = sobol.sample(problem_of(axes), samples, calc_second_order=False, seed=seed)
    return _to_values(unit, axes)


def morris_points(axes: dict[str, dict[str, Any]], trajectories: int,
                  seed: int) -> list[dict[str, Any]]:
    """Morris trajectories: ``trajectories * (axes + 1)`` points."""
    from SALib.sample import morris  # noqa: PLC0415

    unit = morris.sample(problem_of(axes), trajectories, num_levels=MORRIS_LEVELS, seed=seed)
    return _to_values(unit, axes)


def point_outcomes(results: pd.DataFrame, points: int) -> pd.DataFrame:
    """One row per parameter point, in point order: each outcome averaged over the point's
    seeds (a regime's probability is the share of seeds that gave it).  A point whose runs
    all failed is an error, since the indices need every point of the design."""
    ok = results[results.status == "ok"]
    grouped = ok.groupby("point")
    table = pd.DataFrame(index=pd.RangeIndex(points, name="point"))
    for regime in REGIMES:
        table[f"p_{regime}"] = grouped.regime.apply(lambda r, want=regime: (r == want).mean())
    for metric in ("router_share", "lineage_turnover", "recency_bias"):
        if metric in ok:
            table[metric] = grouped[metric].mean()
    if "predicted_regime" in ok:  # the theory's regime at the point, for comparison
        for regime in REGIMES:
            table[f"theory_p_{regime}"] = grouped.predicted_regime.apply(
                lambda r, want=regime: (r == want).mean())
    missing = table.index[table.isna().all(axis=1)].tolist()
    if missing:
        raise ValueError(f"points {missing[:10]} have no finished run; the indices need every "
                         "point of the design (resume the sweep first)")
    return table


def design_matrix(results: pd.DataFrame, axes: dict[str, dict[str, Any]],
                  points: int) -> np.ndarray:
    """The axes' values at every point, in problem space (log10 for log axes)."""
    first = results.groupby("point")[list(axes)].first().reindex(range(points))
    columns = [np.log10(first[name]) if axis.get("scale") == "log" else first[name]
               for name, axis in axes.items()]
    return np.column_stack(columns).astype(float)


def sobol_indices(outcomes: pd.DataFrame, axes: dict[str, dict[str, Any]],
                  names: tuple[str, ...] | list[str] = OUTCOMES, seed: int = 0) -> pd.DataFrame:
    """First-order and total Sobol indices with 95% bootstrap intervals, one row per
    (outcome, axis).  ``outcomes`` holds one row per point of a Saltelli design, in order.
    An outcome that does not vary, or is undefined at some point (the recency bias of a
    point where every seed gave a conditional policy), gets NaN indices: there is nothing to
    apportion, and the estimator needs every point."""
    from SALib.analyze import sobol  # noqa: PLC0415

    problem = problem_of(axes)
    rows = []
    for name in names:
        y = outcomes[name].to_numpy(dtype=float)
        constant = bool(np.isnan(y).any() or np.nanstd(y) == 0)
        with warnings.catch_warnings():  # a seed subset of a binary outcome may be constant
            warnings.simplefilter("ignore", UserWarning)
            result = None if constant else sobol.analyze(
                problem, y, calc_second_order=False, num_resamples=BOOTSTRAP,
                conf_level=CONFIDENCE, seed=seed)
        for i, axis in enumerate(problem["names"]):
            rows.append({"outcome": name, "axis": axis, **{
                key: (np.nan if result is None else float(result[key][i]))
                for key in ("S1", "S1_conf", "ST", "ST_conf")}})
    return pd.DataFrame(rows)


def morris_indices(outcomes: pd.DataFrame, x: np.ndarray, axes: dict[str, dict[str, Any]],
                   names: tuple[str, ...] | list[str] = OUTCOMES, seed: int = 0) -> pd.DataFrame:
    """Morris ``mu_star`` (with its 95% bootstrap interval) and ``sigma`` per (outcome,
    axis); ``x`` is the design in problem space (``design_matrix``).  An outcome undefined
    at some point gets NaN."""
    from SALib.analyze import morris  # noqa: PLC0415

    problem = problem_of(axes)
    rows = []
    for name in names:
        y = outcomes[name].to_numpy(dtype=float)
        result = None if np.isnan(y).any() else morris.analyze(
            problem, x, y, num_resamples=BOOTSTRAP, conf_level=CONFIDENCE,
            num_levels=MORRIS_LEVELS, seed=seed)
        for i, axis in enumerate(problem["names"]):
            rows.append({"outcome": name, "axis": axis, **{
                key: (np.nan if result is None else float(result[key][i]))
                for key in ("mu_star", "mu_star_conf", "sigma")}})
    return pd.DataFrame(rows)
