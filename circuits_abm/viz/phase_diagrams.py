"""Phase diagrams: regime probabilities over two swept axes, with the theory's boundaries.

Each cell of a grid sweep is split into stripes, one per regime, as wide as the share of
the point's seeds that gave it; the theory's predicted boundaries (and, when the sweep has
one, the path model's) are drawn on top.  Scattered designs are drawn by
``circuits_abm.viz.scatter`` instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.patches import Patch, Rectangle

from circuits_abm.regimes import COLOURS, STRIPE_ORDER, nested_label
from circuits_abm.viz.style import PATH_COLOUR, Figure, axis_name, style, tick


def phase_diagram(
    aggregate: pd.DataFrame, x: str, y: str, facet: str | None = None, title: str = ""
) -> Figure:
    """Regime probabilities over two swept axes, with the theory's boundaries on top.

    Each cell is split into vertical stripes, one per regime, as wide as the share of the
    point's seeds that gave it (failed runs black): the shading shows the probability of
    every regime, not only the majority.  Cells where fewer than two thirds of the seeds
    agree are hatched.  Where the aggregate carries the theory's predictions
    (``circuits_abm.analysis.theory``), thick lines separate cells whose predicted regime differs
    and dashed lines cells whose predicted nested structure differs, and each panel's title
    says how often the prediction equals the majority.  Nested structures are written into
    the cells of small grids.  A third axis gives one panel per value (small multiples).
    """
    facets = [None] if facet is None else sorted(aggregate[facet].unique())
    aspect = aggregate[y].nunique() / aggregate[x].nunique()
    with style():
        fig = Figure(figsize=(4.8 * len(facets) + 2.4, 4.8 * min(aspect, 1.2) + 1.4),
                     layout="constrained")
        axes = fig.subplots(1, len(facets), squeeze=False)[0]
        for ax, value in zip(axes, facets, strict=True):
            data = aggregate if value is None else aggregate[aggregate[facet] == value]
            _regime_cells(ax, data, x, y)
            heading = "" if value is None else f"{axis_name(facet)} = {tick(value)}"
            if "predicted_regime" in data:
                heading += ("\n" if heading else "") + _agreement_line(data)
            ax.set_title(heading)
        fig.legend(handles=_phase_legend(aggregate), loc="outside right center",
                   title="share of seeds")
        fig.suptitle(title or "Which regime emerges", fontweight="bold")
    return fig


def _agreement_line(data: pd.DataFrame) -> str:
    agree = data.theory_agrees.astype(bool)
    away = data.away_from_boundary.astype(bool)
    text = f"theory = majority at {agree.mean():.0%} of {len(data)}"
    if away.any():
        text += f"; {agree[away].mean():.0%} of {int(away.sum())} off the boundary"
    if "path_predicted_regime" in data:
        with_path = (data.path_predicted_regime == data.majority_regime).mean()
        text += f"\nwith the path: {with_path:.0%}"
    return text


def _phase_legend(aggregate: pd.DataFrame) -> list:
    from matplotlib.lines import Line2D  # noqa: PLC0415

    present = [r for r in STRIPE_ORDER if aggregate.get(f"share_{r}", pd.Series(0)).max() > 0]
    handles: list = [Patch(color=COLOURS[r], label=r.replace("_", " ")) for r in present]
    if "failed" in aggregate and (aggregate.failed > 0).any():
        handles.append(Patch(color="black", label="failed"))
    handles.append(
        Patch(facecolor="white", edgecolor="black", hatch="///", label="seeds disagree (< 2/3)")
    )
    if "predicted_regime" in aggregate:
        handles.append(Line2D([], [], color="black", lw=2.5, label="theory: regime boundary"))
        handles.append(Line2D([], [], color="black", lw=1.2, ls="--",
                              label="theory: nested structure changes"))
    if "path_predicted_regime" in aggregate:
        handles.append(Line2D([], [], color=PATH_COLOUR, lw=2.0,
                              label="theory with the path: regime boundary"))
    return handles


def _regime_cells(ax: Axes, data: pd.DataFrame, x: str, y: str) -> None:
    xs, ys = sorted(data[x].unique()), sorted(data[y].unique())
    small = len(xs) <= 8 and len(ys) <= 8
    for _, row in data.iterrows():
        i, j = xs.index(row[x]), ys.index(row[y])
        left = i - 0.5
        for regime, share in _stripes(row):
            colour = "black" if regime == "failed" else COLOURS[regime]
            ax.add_patch(Rectangle((left, j - 0.5), share, 1, facecolor=colour,
                                   edgecolor="none", gid="stripe"))
            left += share
        agreement = row.agreement if np.isfinite(row.agreement) else 0.0
        ax.add_patch(Rectangle((i - 0.5, j - 0.5), 1, 1, facecolor="none", edgecolor="white",
                               hatch="///" if agreement < 2 / 3 else None, gid="cell"))
        label = nested_label(row.majority_structure) if small else ""
        if label:
            ax.annotate(label, (i, j), ha="center", va="center", fontsize=8, fontweight="bold",
                        color="white")
    if "predicted_regime" in data:
        _theory_boundaries(ax, data, x, y, xs, ys)
    if "path_predicted_regime" in data:
        _path_boundaries(ax, data, x, y, xs, ys)
    ax.set_xlim(-0.5, len(xs) - 0.5)
    ax.set_ylim(-0.5, len(ys) - 0.5)
    for axis, values, setter in ((ax.xaxis, xs, ax.set_xticks), (ax.yaxis, ys, ax.set_yticks)):
        every = max(1, int(np.ceil(len(values) / 8)))
        ticks = list(range(0, len(values), every))
        setter(ticks, [tick(values[k]) for k in ticks])
        axis.set_tick_params(length=2)
    ax.set_xlabel(axis_name(x))
    ax.set_ylabel(axis_name(y))
    ax.set_aspect("equal")


def _stripes(row: pd.Series) -> list[tuple[str, float]]:
    """(regime, width) per regime present at a point; failures as a black stripe."""
    runs = row.get("runs", 1) or 1
    ok = runs - row.get("failed", 0)
    stripes = [
        (r, row.get(f"share_{r}", 0.0) * ok / runs)
        for r in STRIPE_ORDER
        if np.isfinite(row.get(f"share_{r}", np.nan)) and row.get(f"share_{r}", 0.0) > 0
    ]
    if row.get("failed", 0):
        stripes.append(("failed", row.failed / runs))
    return stripes


def _cell_edges(data: pd.DataFrame, x: str, y: str, xs, ys):
    """Every edge between two neighbouring cells: ``(segment, row, neighbour)``, with the
    segment as the ``([x0, x1], [y0, y1])`` of the shared side."""
    grid = {(xs.index(r[x]), ys.index(r[y])): r for _, r in data.iterrows()}
    for (i, j), row in grid.items():
        for di, dj in ((1, 0), (0, 1)):
            other = grid.get((i + di, j + dj))
            if other is None:
                continue
            if di:
                yield ([i + 0.5, i + 0.5], [j - 0.5, j + 0.5]), row, other
            else:
                yield ([i - 0.5, i + 0.5], [j + 0.5, j + 0.5]), row, other


def _theory_boundaries(ax: Axes, data: pd.DataFrame, x: str, y: str, xs, ys) -> None:
    """Lines between neighbouring cells whose predictions differ (regime: solid, thick;
    only the nested pattern, such as ``CP[C,C]`` against ``CP[G,G]``: dashed).  Environment
    names do not count, so a sweep over the number of environments draws no line between
    conditional policies of specialists."""
    for segment, row, other in _cell_edges(data, x, y, xs, ys):
        regime_changes = row.predicted_regime != other.predicted_regime
        pattern_changes = (nested_label(row.predicted_structure)
                           != nested_label(other.predicted_structure))
        if regime_changes or pattern_changes:
            ax.plot(*segment, color="black", lw=2.5 if regime_changes else 1.2,
                    ls="-" if regime_changes else "--", solid_capstyle="round", gid="theory")


def _path_boundaries(ax: Axes, data: pd.DataFrame, x: str, y: str, xs, ys) -> None:
    """Lines between neighbouring cells whose prediction with the path differs in regime
    (``experiments.paths``), in the path colour, inside the theory's lines."""
    for segment, row, other in _cell_edges(data, x, y, xs, ys):
        if row.path_predicted_regime != other.path_predicted_regime:
            ax.plot(*segment, color=PATH_COLOUR, lw=2.0, solid_capstyle="round", gid="path")


def compared_maps(left: pd.DataFrame, right: pd.DataFrame, agrees: pd.DataFrame, x: str,
                  y: str, labels: tuple[str, str], title: str = "") -> Figure:
    """Two sweeps' regime maps side by side, each with the theory's boundaries, and a third
    panel marking where their majorities agree (``agreement.map_agreement``: a row per
    point with the axes and ``agrees``)."""
    from matplotlib.lines import Line2D  # noqa: PLC0415

    aspect = left[y].nunique() / left[x].nunique()
    with style():
        fig = Figure(figsize=(16.5, 4.2 * min(aspect, 1.2) + 1.0), layout="constrained")
        axes = fig.subplots(1, 3)
        for ax, data, label in zip(axes[:2], (left, right), labels, strict=True):
            _regime_cells(ax, data, x, y)
            ax.set_title(label, fontweight="bold")
            if "predicted_regime" in data:  # the theory's score, under the axis
                ax.set_xlabel(f"{axis_name(x)}\n({_agreement_line(data).split(';')[0]})")
        ax = axes[2]
        xs, ys = sorted(agrees[x].unique()), sorted(agrees[y].unique())
        for _, row in agrees.iterrows():
            i, j = xs.index(row[x]), ys.index(row[y])
            ax.add_patch(Rectangle((i - 0.5, j - 0.5), 1, 1,
                                   facecolor="#BBBBBB" if row.agrees else "white",
                                   edgecolor="black", lw=0.6, gid="agreement"))
            ax.annotate("=" if row.agrees else "≠", (i, j), ha="center", va="center",
                        fontsize=13)
        ax.set_xlim(-0.5, len(xs) - 0.5)
        ax.set_ylim(-0.5, len(ys) - 0.5)
        ax.set_xticks(range(len(xs)), [tick(v) for v in xs])
        ax.set_yticks(range(len(ys)), [tick(v) for v in ys])
        ax.set_xlabel(axis_name(x))
        ax.set_ylabel(axis_name(y))
        ax.set_aspect("equal")
        ax.set_title(f"majority regimes agree at {int(agrees.agrees.sum())} of {len(agrees)}",
                     fontweight="bold")
        handles = _phase_legend(pd.concat([left, right]))
        handles.append(Line2D([], [], marker="s", ls="", color="#BBBBBB", label="same majority"))
        fig.legend(handles=handles, loc="outside right center", title="share of seeds")
        fig.suptitle(title or f"{labels[0]} and {labels[1]}", fontweight="bold")
    return fig
