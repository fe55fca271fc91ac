"""How well the theory predicts what sweeps find: the agreement tables.

Per sweep folder: how often the predicted regime (and nested structure) is the simulated
majority, over all points and away from the predicted boundary; how far the theory's
fitness of the structure that emerged is from the measured mean fitness; and, where seeds
split, whether the runs that reached the prediction were the fitter.  With the path model
(``circuits_abm.experiments.path_model``), the same for the prediction that accounts for
the path.  ``circuits-abm agreement`` writes the table in docs/theory.md from these.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from circuits_abm.analysis.rates import wilson
from circuits_abm.experiments.path_model import path_agreement
from circuits_abm.experiments.sweep.journal import load_results


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
    ``fitness_error`` and ``fitter_when_split``; with ``paths`` (one ``path_model.path_table`` per
    folder), also the agreement of the prediction that takes the path into account
    (``path_model.path_agreement``)."""
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


def map_agreement(left: pd.DataFrame, right: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    """Two sweeps' aggregates over the same grid, point by point: each majority regime, each
    probability of a conditional policy with its Wilson interval, and whether the majorities
    agree.  Points are matched by their axis values; a point missing from either sweep is an
    error."""
    keep = [*axes, "runs", "majority_regime", "share_conditional_policy",
            "low_conditional_policy", "high_conditional_policy"]
    merged = left[keep].merge(right[keep], on=axes, suffixes=("_left", "_right"),
                              how="outer", indicator=True)
    missing = merged[merged["_merge"] != "both"]
    if not missing.empty:
        raise ValueError(f"the two sweeps do not cover the same points: {len(missing)} differ")
    merged = merged.drop(columns="_merge")
    merged["agrees"] = merged.majority_regime_left == merged.majority_regime_right
    return merged.sort_values(axes).reset_index(drop=True)


def map_agreement_table(compared: pd.DataFrame, axes: list[str], left: str,
                        right: str) -> str:
    """A markdown table of ``map_agreement``: one row per point, then the share of points
    whose majorities agree, as ``k/n`` with a Wilson interval."""
    def rate(row, side: str) -> str:
        return (f"`{row[f'majority_regime_{side}']}` "
                f"(P(CP) {row[f'share_conditional_policy_{side}']:.2f} "
                f"[{row[f'low_conditional_policy_{side}']:.2f}, "
                f"{row[f'high_conditional_policy_{side}']:.2f}])")

    names = [a.split(".")[-1] for a in axes]
    lines = [f"| {' | '.join(names)} | {left} | {right} | agree |",
             "|" + "---|" * (len(axes) + 3)]
    for _, row in compared.iterrows():
        values = " | ".join(f"{row[a]:g}" for a in axes)
        lines.append(f"| {values} | {rate(row, 'left')} | {rate(row, 'right')} | "
                     f"{'yes' if row.agrees else '**no**'} |")
    agreed = wilson(int(compared.agrees.sum()), len(compared))
    lines.append("")
    lines.append(f"Majorities agree at {agreed.text()} of the points (Wilson 95% interval).")
    return "\n".join(lines)
