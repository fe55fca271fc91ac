"""Regime maps of scattered designs (Latin hypercube, Sobol, Saltelli, Morris), which have
no cells: each point in its majority regime's colour, over each regime's smoothed
probability (``circuits_abm.analysis.rates.smoothed_probability``) and its 0.5 contour.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from matplotlib.colors import to_rgb
from matplotlib.patches import Patch
from matplotlib.ticker import NullFormatter, ScalarFormatter

from circuits_abm.analysis.rates import GRID_CELLS, smoothed_probability
from circuits_abm.regimes import COLOURS, STRIPE_ORDER
from circuits_abm.viz.style import Figure, axis_name, style


def _unit(values: pd.Series | np.ndarray, low: float, high: float, log: bool) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if log:
        values, low, high = np.log10(values), np.log10(low), np.log10(high)
    return (values - low) / ((high - low) or 1.0)


def scatter_diagram(results: pd.DataFrame, axes: list[str],
                    specs: dict[str, dict] | None = None, title: str = "") -> Figure:
    """Regimes over a scattered design (Latin hypercube, Sobol, Saltelli, Morris): each
    point coloured by its majority regime (size: how many of its seeds agree), over a
    background of each regime's smoothed probability (``smoothed_probability``), whose
    0.5 contour is drawn as the boundary.  More than two axes give one panel per pair (the
    smoothing then averages over the other axes)."""
    specs = specs or {}
    ok = results[results.status == "ok"]
    per_point = ok.groupby("point").agg(
        **{a: (a, "first") for a in axes},
        regime=("regime", lambda r: r.value_counts().idxmax()),
        agreement=("regime", lambda r: r.value_counts().iloc[0] / len(r)),
    )
    pairs = list(combinations(axes, 2))
    if not pairs:
        raise ValueError("a regime map needs at least two swept axes")
    present = [r for r in STRIPE_ORDER if (ok.regime == r).any()]
    columns = min(3, len(pairs))
    rows = -(-len(pairs) // columns)
    with style():
        fig = Figure(figsize=(4.6 * columns + 2.2, 4.3 * rows + 0.8), layout="constrained")
        grid = fig.subplots(rows, columns, squeeze=False)
        for ax in grid.flat[len(pairs):]:
            ax.set_visible(False)
        for ax, (x, y) in zip(grid.flat, pairs, strict=False):
            logs = [specs.get(a, {}).get("scale") == "log" for a in (x, y)]
            lows = [float(ok[a].min()) for a in (x, y)]
            highs = [float(ok[a].max()) for a in (x, y)]
            u = _unit(ok[x], lows[0], highs[0], logs[0])
            v = _unit(ok[y], lows[1], highs[1], logs[1])
            edges = [np.geomspace(lo, hi, GRID_CELLS + 1) if log else
                     np.linspace(lo, hi, GRID_CELLS + 1)
                     for lo, hi, log in zip(lows, highs, logs, strict=True)]
            probabilities = {r: smoothed_probability(u, v, (ok.regime == r).to_numpy())
                             for r in present}
            stacked = np.stack([probabilities[r] for r in present])
            winner = stacked.argmax(axis=0)
            colours = np.array([to_rgb(COLOURS[r]) for r in present])
            image = colours[winner] * 0.35 + 0.65  # pale background: the likeliest regime
            ax.pcolormesh(edges[0], edges[1], image, shading="flat", rasterized=True)
            centres = [np.sqrt(e[:-1] * e[1:]) if log else (e[:-1] + e[1:]) / 2
                       for e, log in zip(edges, logs, strict=True)]
            for r in present:
                if probabilities[r].max() > 0.5 > probabilities[r].min():
                    ax.contour(centres[0], centres[1], probabilities[r], levels=[0.5],
                               colors=[COLOURS[r]], linewidths=1.6)
            ax.scatter(per_point[x], per_point[y], s=6 + 28 * per_point.agreement,
                       c=[COLOURS[r] for r in per_point.regime], edgecolors="white",
                       linewidths=0.4)
            ax.set(xscale="log" if logs[0] else "linear", yscale="log" if logs[1] else "linear",
                   xlabel=axis_name(x), ylabel=axis_name(y))
            for axis, log in ((ax.xaxis, logs[0]), (ax.yaxis, logs[1])):
                if log:  # plain numbers (2, 5, 10, 20), not powers of ten
                    axis.set_major_formatter(ScalarFormatter())
                    axis.set_minor_formatter(NullFormatter())
        handles = [Patch(color=COLOURS[r], label=r.replace("_", " ")) for r in present]
        fig.legend(handles=handles, loc="outside right center", title="majority regime")
        fig.suptitle(title or "Which regime emerges", fontweight="bold")
        fig.text(0.5, -0.01, "points: each parameter point's majority regime (larger: more "
                 "seeds agree); shading and lines: each regime's kernel-smoothed probability "
                 "and its 0.5 contour", ha="center", fontsize=8)
    return fig
