"""Analyses of a finished sweep folder: sensitivity indices and scenario discovery.

The numerics live in ``circuits_abm.analysis.sensitivity`` and
``circuits_abm.analysis.discovery``; this module reads the sweep's tables, checks that the
design fits the analysis, and writes the results beside the sweep as Parquet
(``sensitivity.parquet``; ``discovery_<regime>_trajectory.parquet`` and ``_box.parquet``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from circuits_abm.analysis import discovery, sensitivity
from circuits_abm.experiments.storage import write_parquet
from circuits_abm.experiments.sweep.journal import load_results
from circuits_abm.regimes import REGIMES

SENSITIVITY = "sensitivity.parquet"


def _finished(sweep_dir: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    results, _, echo = load_results(sweep_dir)
    if echo["partial"]:
        raise ValueError(f"the sweep in {sweep_dir} has not finished: run it again with the "
                         "same --out to resume it, then analyse it")
    return results, echo


def sensitivity_indices(sweep_dir: str | Path) -> pd.DataFrame:
    """Sensitivity of every outcome to every axis of a finished sweep.

    A ``saltelli`` design gives Sobol indices (``S1``, ``ST`` and their 95% intervals); a
    ``morris`` design gives Morris screening (``mu_star`` with its interval, ``sigma``).
    The table is also written to ``sensitivity.parquet`` in the sweep folder.

    Parameters
    ----------
    sweep_dir
        A folder written by ``sweep`` / ``circuits-abm sweep`` with ``design = "saltelli"``
        or ``"morris"``.

    Returns
    -------
    pandas.DataFrame
        One row per (outcome, axis); ``method`` says which analysis it is.

    Raises
    ------
    ValueError
        If the sweep is unfinished or its design is not a sensitivity design.

    Examples
    --------
    >>> import circuits_abm as ca, tempfile
    >>> design = {"name": "two_axes", "base": "standard", "design": "saltelli", "samples": 4,
    ...           "seeds": 1, "steps": 200,
    ...           "axes": {"geometry.sharing": {"range": [0.0, 0.9]},
    ...                    "geometry.distinguishability": {"range": [0.0, 1.0]}}}
    >>> folder = tempfile.mkdtemp()
    >>> _ = ca.sweep(design, folder, executor="serial", progress=False)
    >>> table = ca.sensitivity_indices(folder)
    >>> sorted(table.axis.unique()), table.method.iloc[0]
    (['geometry.distinguishability', 'geometry.sharing'], 'sobol')
    """
    results, echo = _finished(sweep_dir)
    design, axes = echo["sweep"]["design"], echo["sweep"]["axes"]
    if design not in ("saltelli", "morris"):
        raise ValueError(f"sensitivity indices need a sweep with design = \"saltelli\" (Sobol) "
                         f"or \"morris\"; {sweep_dir} has design = {design!r}")
    points = int(results.point.max()) + 1
    outcomes = sensitivity.point_outcomes(results, points)
    names = [name for name in sensitivity.OUTCOMES if name in outcomes]
    seed = echo["sweep"]["root_seed"]
    if design == "saltelli":
        table = sensitivity.sobol_indices(outcomes, axes, names, seed).assign(method="sobol")
    else:
        x = sensitivity.design_matrix(results, axes, points)
        table = sensitivity.morris_indices(outcomes, x, axes, names, seed).assign(
            method="morris")
    write_parquet(Path(sweep_dir) / SENSITIVITY, table)
    return table


def discover_regime(sweep_dir: str | Path, regime: str = "conditional_policy",
                    min_coverage: float = discovery.MIN_COVERAGE) -> discovery.Discovery:
    """The box of parameter space where ``regime`` is most likely (PRIM), and CART's rules.

    Works on any finished sweep (grid or scattered).  Writes the peeling trajectory and the
    chosen box to ``discovery_<regime>_trajectory.parquet`` and ``discovery_<regime>_box.parquet``.

    Parameters
    ----------
    sweep_dir
        A finished sweep folder.
    regime
        A root regime (``conditional_policy``, ``ecological_generalist``, ...).
    min_coverage
        The chosen box is the densest that still holds this share of the regime's runs.

    Returns
    -------
    Discovery
        ``box`` (low, high and whether each axis is restricted), ``density``,
        ``coverage``, ``base_rate``, the whole ``trajectory`` and CART ``rules``.

    Examples
    --------
    >>> import circuits_abm as ca, tempfile
    >>> design = {"name": "corners", "base": "standard", "seeds": 2, "steps": 600,
    ...           "axes": {"geometry.sharing": {"values": [0.1, 0.5, 0.9]},
    ...                    "geometry.distinguishability": {"values": [0.1, 0.9]}}}
    >>> folder = tempfile.mkdtemp()
    >>> _ = ca.sweep(design, folder, executor="serial", progress=False)
    >>> found = ca.discover_regime(folder, "ecological_generalist")
    >>> found.density >= found.base_rate
    True
    """
    if regime not in REGIMES:
        raise ValueError(f"unknown regime {regime!r}; one of {', '.join(REGIMES)}")
    results, echo = _finished(sweep_dir)
    found = discovery.discover(results, list(echo["axes"]), regime, min_coverage)
    folder = Path(sweep_dir)
    write_parquet(folder / f"discovery_{regime}_trajectory.parquet",
                  found.trajectory.reset_index(drop=True))
    write_parquet(folder / f"discovery_{regime}_box.parquet", found.box)
    return found
