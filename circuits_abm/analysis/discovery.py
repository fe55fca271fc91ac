"""Scenario discovery: in which box of parameter space is a regime most likely?

PRIM (the Patient Rule Induction Method, from the EMA Workbench) peels a sweep's parameter
space, one small slice at a time, toward the region where the regime is most frequent.
Every run is one observation (its axis values; 1 if it gave the regime, else 0), so a box's
**density** is the probability of the regime inside it and its **coverage** the share of all
the runs with that regime that fall inside.  Peeling trades coverage for density; the
chosen box is the densest one that keeps at least ``min_coverage`` of the regime's runs.
A CART tree (scikit-learn) gives a second view: the few threshold rules that best separate
the regime's runs from the others.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

PEEL_ALPHA = 0.05  # share of the points peeled off per step (PRIM's usual value)
MIN_COVERAGE = 0.5
TREE_DEPTH = 3


@dataclass(frozen=True)
class Discovery:
    """PRIM's peeling trajectory and chosen box, and a CART tree's rules, for one regime."""

    regime: str
    trajectory: pd.DataFrame  # coverage, density, mass, restricted dimensions per peel
    chosen: int  # row of the trajectory that was chosen
    box: pd.DataFrame  # per axis: low, high, the swept range, restricted
    base_rate: float  # the regime's probability over the whole sweep
    rules: str  # the CART tree as text

    @property
    def coverage(self) -> float:
        """Share of the regime's runs inside the chosen box."""
        return float(self.trajectory.coverage.iloc[self.chosen])

    @property
    def density(self) -> float:
        """Probability of the regime inside the chosen box."""
        return float(self.trajectory.density.iloc[self.chosen])


def _runs(results: pd.DataFrame, axes: list[str], regime: str) -> tuple[pd.DataFrame, np.ndarray]:
    ok = results[results.status == "ok"]
    if ok.empty:
        raise ValueError("the sweep has no finished run")
    return ok[axes].astype(float).reset_index(drop=True), (ok.regime == regime).to_numpy()


def prim_box(x: pd.DataFrame, y: np.ndarray, min_coverage: float = MIN_COVERAGE
             ) -> tuple[pd.DataFrame, int, pd.DataFrame]:
    """(peeling trajectory, chosen row, box) of PRIM on ``x`` with the flags ``y``; the box
    has a row per axis: its limits, the range the runs span, and whether it is restricted."""
    if not y.any():
        raise ValueError("no run gave the regime: there is nothing to find a box for")
    with warnings.catch_warnings():  # the workbench warns about optional parallel back ends
        warnings.simplefilter("ignore")
        from ema_workbench.analysis import prim  # noqa: PLC0415

        found = prim.Prim(x, y, peel_alpha=PEEL_ALPHA).find_box()
    trajectory = found.peeling_trajectory[["coverage", "density", "mass", "res_dim"]].copy()
    eligible = trajectory[trajectory.coverage >= min_coverage]
    chosen = int(eligible.density.idxmax())
    limits = found.box_lims[chosen]
    box = pd.DataFrame({"axis": list(x.columns), "low": limits.iloc[0].to_numpy(dtype=float),
                        "high": limits.iloc[1].to_numpy(dtype=float),
                        "swept_low": x.min().to_numpy(), "swept_high": x.max().to_numpy()})
    box["restricted"] = (box.low > box.swept_low) | (box.high < box.swept_high)
    return trajectory, chosen, box


def cart_rules(x: pd.DataFrame, y: np.ndarray, depth: int = TREE_DEPTH) -> str:
    """A shallow classification tree separating the regime's runs, as readable rules."""
    from sklearn.tree import DecisionTreeClassifier, export_text  # noqa: PLC0415

    tree = DecisionTreeClassifier(max_depth=depth, min_samples_leaf=max(5, len(y) // 50),
                                  random_state=0).fit(x, y)
    return export_text(tree, feature_names=list(x.columns), class_names=["other", "regime"],
                       decimals=3)


def discover(results: pd.DataFrame, axes: list[str], regime: str,
             min_coverage: float = MIN_COVERAGE) -> Discovery:
    """PRIM and CART for ``regime`` over a sweep's runs (its results table)."""
    x, y = _runs(results, axes, regime)
    trajectory, chosen, box = prim_box(x, y, min_coverage)
    return Discovery(regime, trajectory, chosen, box, float(y.mean()), cart_rules(x, y))
