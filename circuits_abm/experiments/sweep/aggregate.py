"""Rates over seeds: one row per point of a sweep.

Each regime's share of the point's runs with its Wilson 95% interval, the majority regime
and structure and how many seeds agree on them, every metric's mean and spread, and the
theory's prediction beside the majority (``theory_agrees``, ``structure_agrees``,
``away_from_boundary``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from circuits_abm.analysis.rates import wilson
from circuits_abm.experiments.sweep.records import METRICS
from circuits_abm.regimes import REGIMES


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
        row["majority_regime"] = majority(ok.regime) if len(ok) else "failed"
        row["agreement"] = counts.max() / len(ok) if len(ok) else np.nan
        row["majority_structure"] = majority(ok.structure) if len(ok) else ""
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
    lies away from the predicted boundary: the theory covers every active parameter
    (``predicted_uncovered`` is empty), the predicted fitness margin exceeds the
    seed-to-seed spread of the measured mean fitness, and any predicted recency bias is
    further from the classifier's thresholds than the measured recency bias spreads."""
    if not len(ok):
        return {"predicted_regime": "", "predicted_structure": "", "predicted_margin": np.nan,
                "theory_agrees": False, "structure_agrees": False, "away_from_boundary": False}
    first = ok.iloc[0]
    fitness_spread = row["mean_fitness_std"]
    recency_spread = row["recency_bias_std"] if np.isfinite(row["recency_bias_std"]) else 0.0
    recency_margin = first.predicted_recency_margin
    uncovered = first.get("predicted_uncovered")  # (absent from older journals)
    covered = not (isinstance(uncovered, str) and uncovered)
    away = bool(
        covered
        and first.predicted_margin > fitness_spread
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


def majority(values: pd.Series) -> str:
    """Most frequent value; ties broken alphabetically so the choice is reproducible."""
    counts = values.value_counts()
    return sorted(counts[counts == counts.max()].index)[0]
