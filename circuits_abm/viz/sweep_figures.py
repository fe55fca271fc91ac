"""Figures of a sweep's analyses: a metric against one axis, sensitivity indices, and the
box scenario discovery finds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import colormaps

from circuits_abm.viz.style import Figure, axis_name, style, tick


def sweep_curve(results: pd.DataFrame, x: str, y: str, group: str | None = None,
                title: str = "") -> Figure:
    """Mean of metric ``y`` over the seeds of each point against axis ``x``, one line per
    value of ``group``, with 95% intervals (mean +- 1.96 standard errors)."""
    ok = results[results.status == "ok"]
    with style():
        fig = Figure(figsize=(7.5, 4.5), layout="constrained")
        ax = fig.add_subplot()
        groups = [None] if group is None else sorted(ok[group].unique())
        palette = colormaps["tab10"]
        for i, value in enumerate(groups):
            rows = ok if value is None else ok[ok[group] == value]
            stats = rows.groupby(x)[y].agg(["mean", "std", "count"])
            half = 1.96 * stats["std"].fillna(0) / np.sqrt(stats["count"])
            colour = palette(i)
            label = None if value is None else f"{axis_name(group)} = {tick(value)}"
            ax.plot(stats.index, stats["mean"], "o-", color=colour, label=label, gid="curve")
            ax.fill_between(stats.index, stats["mean"] - half, stats["mean"] + half,
                            color=colour, alpha=0.2, lw=0)
        ax.set_xlabel(axis_name(x))
        ax.set_ylabel(y.replace("_", " "))
        if group is not None:
            ax.legend()
        ax.set_title(title or f"{y.replace('_', ' ')} against {axis_name(x)} (95% intervals)")
    return fig


def sensitivity_figure(table: pd.DataFrame, title: str = "") -> Figure:
    """Sensitivity bars with their 95% intervals, one panel per outcome that varies: Sobol
    ``S1`` and ``ST`` side by side, or Morris ``mu_star`` (a ``sensitivity_indices`` table)."""
    sobol = table.method.iloc[0] == "sobol"
    key = "ST" if sobol else "mu_star"
    outcomes = [o for o in table.outcome.unique() if table[table.outcome == o][key].notna().any()]
    axes_names = list(table.axis.unique())
    columns = min(3, max(1, len(outcomes)))
    rows = -(-len(outcomes) // columns)
    with style():
        fig = Figure(figsize=(4.2 * columns, 0.9 + 0.45 * len(axes_names) * rows + 0.8 * rows),
                     layout="constrained")
        grid = fig.subplots(rows, columns, squeeze=False)
        for ax in grid.flat[len(outcomes):]:
            ax.set_visible(False)
        y = np.arange(len(axes_names))
        for ax, outcome in zip(grid.flat, outcomes, strict=False):
            part = table[table.outcome == outcome].set_index("axis").loc[axes_names]
            if sobol:
                ax.barh(y - 0.2, part.S1, 0.4, xerr=part.S1_conf, color="#0072B2", label="S1",
                        error_kw={"lw": 0.8})
                ax.barh(y + 0.2, part.ST, 0.4, xerr=part.ST_conf, color="#E69F00", label="ST",
                        error_kw={"lw": 0.8})
                ax.set_xlim(min(0.0, ax.get_xlim()[0]), max(1.0, ax.get_xlim()[1]))
            else:
                ax.barh(y, part.mu_star, 0.6, xerr=part.mu_star_conf, color="#0072B2",
                        label="mu*", error_kw={"lw": 0.8})
            ax.axvline(0, color="0.5", lw=0.6)
            ax.set_yticks(y, [axis_name(a) for a in axes_names])
            ax.invert_yaxis()
            ax.set_title(outcome.replace("p_", "P(").replace("_", " ")
                         + (")" if "p_" in outcome else ""))
        grid.flat[0].legend(loc="lower right")
        method = ("Sobol indices (first order S1, total ST; 95% bootstrap intervals)" if sobol
                  else "Morris screening (mean absolute effect per axis range; 95% intervals)")
        fig.suptitle(title or method, fontweight="bold")
    return fig


def discovery_figure(found) -> Figure:
    """PRIM for one regime: the peeling trajectory (coverage against density, the chosen
    box ringed) and the chosen box on each axis's full range."""
    trajectory = found.trajectory
    with style():
        fig = Figure(figsize=(11, 4.2), layout="constrained")
        left, right = fig.subplots(1, 2, width_ratios=[1, 1.2])
        points = left.scatter(trajectory.coverage, trajectory.density, c=trajectory.res_dim,
                              cmap="viridis", s=18)
        left.plot(trajectory.coverage, trajectory.density, color="0.7", lw=0.8, zorder=0)
        chosen = trajectory.iloc[found.chosen]
        left.scatter([chosen.coverage], [chosen.density], s=160, facecolors="none",
                     edgecolors="#D55E00", lw=2, label="chosen box")
        left.axhline(found.base_rate, color="0.5", ls="--", lw=0.8, label="whole sweep")
        left.set(xlabel="coverage (share of the regime's runs inside)",
                 ylabel="density (probability inside)", ylim=(0, 1.02),
                 title="PRIM peeling trajectory")
        left.legend(loc="lower left")
        fig.colorbar(points, ax=left, label="restricted axes")
        box = found.box
        for i, row in enumerate(box.itertuples()):
            span = (row.swept_high - row.swept_low) or 1.0
            right.barh(i, (row.high - row.low) / span, left=(row.low - row.swept_low) / span,
                       color="#D55E00" if row.restricted else "0.8", height=0.5)
            right.text(1.02, i, f"{row.low:.3g} to {row.high:.3g}", va="center", fontsize=8)
        right.set_yticks(range(len(box)), [axis_name(a) for a in box.axis])
        right.set_xlim(0, 1)
        right.invert_yaxis()
        right.set_xlabel("share of the swept range")
        right.set_title(f"box for {found.regime.replace('_', ' ')}: density "
                        f"{found.density:.2f} (base {found.base_rate:.2f}), coverage "
                        f"{found.coverage:.2f}")
    return fig

