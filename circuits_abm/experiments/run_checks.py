"""What a run's or a sweep's files must hold, checked whenever they are read back.

A run's tables are read by ``classify``, ``figures run`` and ``load_run`` long after they
were written, perhaps edited by hand or by a script in between.  A table with a renamed
column, a number stored as text, an infinite or NaN value, a share outside [0, 1] or a
repeated row would otherwise be classified and drawn as if it were a run.  ``check_run``
refuses it with one message naming the file, the column and what it must hold;
``check_sweep`` does the same for a sweep's ``results.parquet`` and ``aggregate.parquet``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from circuits_abm.regimes import REGIMES

SHARE_SLACK = 1e-9  # rounding in a share that was computed as 1 - the others

# Column -> what it holds: "integer", "number" (finite), "share" (in [0, 1]), "rate" (a
# share, or NaN where no run finished), "text", "flag" (bool).  Columns marked required are
# read by classification and the figures; the others are checked when present (runs saved
# by older versions lack some).
TIMESERIES_COLUMNS = {
    "step": "integer", "phase": "integer", "environment": "text", "lineage": "integer",
    "parent_lineage": "integer", "kind": "text", "structure": "text", "share": "share",
    "variants": "integer", "mean_fitness": "number",
}
TIMESERIES_REQUIRED = ("step", "phase", "lineage", "kind", "structure", "share")
TIMESERIES_KEY = ("step", "lineage")

PHASES_COLUMNS = {
    "phase": "integer", "start": "integer", "end": "integer", "trained": "text",
    "training_weight": "share", "environment": "text", "held_out": "flag",
    "population_reward": "number", "dominant_reward": "number", "dominant_lineage": "integer",
    "dominant_share": "share", "dominant_variants": "integer", "dominant_structure": "text",
    "dominant_kind": "text", "structure_share": "share", "router_share": "share",
    "circuits": "integer", "phase_mean_fitness": "number",
}
PHASES_REQUIRED = ("phase", "start", "end", "trained", "training_weight", "environment",
                   "population_reward", "dominant_share", "dominant_structure")
PHASES_KEY = ("phase", "environment")


RESULTS_COLUMNS = {"run_id": "text", "point": "integer", "replicate": "integer",
                   "seed": "integer", "status": "text", "regime": "text", "structure": "text"}
AGGREGATE_COLUMNS = {"point": "integer", "runs": "integer", "failed": "integer",
                     **{f"share_{regime}": "rate" for regime in REGIMES}}
STATUSES = ("ok", "failed")


class RunFolderError(ValueError):
    """A run folder whose files cannot be read (damaged or not written by this package)."""


def check_run(run_dir: Path, timeseries: pd.DataFrame, phases: pd.DataFrame,
              summary: Any) -> None:
    """``RunFolderError`` naming the first thing in a run's files that no run writes."""
    check_summary(run_dir / "summary.json", summary)
    check_table(run_dir / "timeseries.parquet", timeseries, TIMESERIES_COLUMNS,
                TIMESERIES_REQUIRED, TIMESERIES_KEY)
    check_table(run_dir / "phases.parquet", phases, PHASES_COLUMNS, PHASES_REQUIRED,
                PHASES_KEY)


def check_summary(path: Path, summary: Any) -> None:
    """A summary is an object with the run's scenario, a seed and a number of steps."""
    if not isinstance(summary, dict) or not isinstance(summary.get("scenario"), dict):
        raise RunFolderError(f"cannot read {path}: not a run summary (no `scenario` object)")
    for field, low in (("seed", 0), ("steps", 1)):
        value = summary.get(field)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise RunFolderError(f"cannot read {path}: `{field}` is {value!r}; a run writes a "
                                 f"whole number from {low}")


def check_table(path: Path, table: pd.DataFrame, columns: dict[str, str],
                required: tuple[str, ...], key: tuple[str, ...]) -> None:
    """Every required column present, every known column of its kind, one row per key."""
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise RunFolderError(f"cannot read {path}: not a {path.stem} table written by a run "
                             f"(missing column {', '.join(missing)})")
    for column, kind in columns.items():
        if column in table.columns:
            problem = _kind_problem(table[column], kind)
            if problem:
                raise RunFolderError(f"cannot read {path}: column `{column}` {problem}")
    repeated = table.duplicated(list(key))
    if repeated.any():
        row = table.loc[repeated.idxmax(), list(key)].to_dict()
        raise RunFolderError(f"cannot read {path}: {int(repeated.sum())} repeated rows (the "
                             f"first at {row}); a run writes one row per "
                             f"{' and '.join(key)}")


def _kind_problem(values: pd.Series, kind: str) -> str | None:
    """What is wrong with ``values`` as a column of ``kind``, or None."""
    if kind == "text":
        return None if values.map(lambda v: isinstance(v, str)).all() else "holds non-text"
    if kind == "flag":
        return None if pd.api.types.is_bool_dtype(values) else "must hold true or false"
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return f"holds {values.dtype} values; it must hold numbers"
    if kind == "integer":
        return None if pd.api.types.is_integer_dtype(values) else "must hold whole numbers"
    numbers = values.to_numpy(dtype=float)
    if kind == "rate":
        numbers = numbers[~np.isnan(numbers)]
    if not np.isfinite(numbers).all():
        return "holds infinite or NaN values"
    if kind in ("share", "rate") and len(numbers) and (
            numbers.min() < -SHARE_SLACK or numbers.max() > 1 + SHARE_SLACK):
        return f"holds values outside [0, 1] ({numbers.min():.3g} to {numbers.max():.3g})"
    return None


def check_sweep(out: Path, results: pd.DataFrame, aggregate: pd.DataFrame,
                echo: Any) -> None:
    """``RunFolderError`` naming the first thing in a sweep's tables that no sweep writes:
    the echo's axes, a column of the wrong kind, a repeated run or point, a status or a
    regime that does not exist."""
    if not isinstance(echo, dict) or not isinstance(echo.get("axes"), list):
        raise RunFolderError(f"cannot read {out / 'sweep.json'}: not a sweep's record")
    axes = tuple(echo["axes"])
    check_table(out / "results.parquet", results, RESULTS_COLUMNS,
                (*RESULTS_COLUMNS, *axes), ("run_id",))
    check_table(out / "aggregate.parquet", aggregate, AGGREGATE_COLUMNS,
                (*AGGREGATE_COLUMNS, *axes), ("point",))
    odd = sorted(set(results["status"]) - set(STATUSES))
    unknown = sorted(set(results.loc[results["status"] == "ok", "regime"]) - set(REGIMES))
    if odd or unknown:
        what = f"status {odd[0]!r}" if odd else f"regime {unknown[0]!r}"
        raise RunFolderError(f"cannot read {out / 'results.parquet'}: {what}; a sweep writes "
                             f"statuses {', '.join(STATUSES)} and regimes {', '.join(REGIMES)}")
