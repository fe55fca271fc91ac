"""Figures that explain one run, drawn from its records only.

* ``muller_plot``: shares over time stacked by lineage, coloured by circuit kind, with
  the training phases as a band coloured by objective and interventions marked;
* ``retention_heatmap``: the population's reward on every environment at the end of
  every phase (churn shows as a moving diagonal, a generalist as a flat band, a conditional
  policy as a full band), held-out environments set apart;
* ``environment_graph``: environments coloured by cluster, held-out ones marked, edge
  width by demand overlap, edge style by distinguishability, labels by how often the
  schedule moved along each pair;
* ``structure_diagram``: the dominant circuit's tree at the end, with each mechanism's
  routed environments and the regime classified for each node;
* ``summary_figure``: the four on one page (six with motivations, from
  ``circuits_abm.viz.motivation_figures``), titled with the scenario and its structure;
* ``reporter_plot``: a ``DataCollector``'s model reporters against the step.

They take a ``RunResult`` (``ca.run`` or ``ca.load_run``) and return
``matplotlib.figure.Figure`` objects (no pyplot state), so they work in notebooks and
headless alike; ``write_run_figures`` saves them all.
"""

from __future__ import annotations

import textwrap
from itertools import combinations
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.patches import Patch

from circuits_abm.engine.circuits import parse_tree
from circuits_abm.engine.environments import Environments, apply_intervention, build_environments
from circuits_abm.engine.loading import scenario_from_dict
from circuits_abm.experiments.runs import RunResult
from circuits_abm.regimes import COLOURS, compact, parse
from circuits_abm.viz.motivation_figures import has_motivations, motivation_plot, quarantine_plot
from circuits_abm.viz.style import (
    FORMATS,
    KIND_COLOURS,
    Figure,
    environment_colours,
    figure_and_axes,
    save_figure,
    shade,
    style,
)

# Above this many environments figures summarise instead of naming everything: the strongest
# pairs only in the graph, counts instead of name lists, every k-th tick.
MANY = 20

LABEL_OFFSET = 20  # points from an environment's node to its label

TITLE_LENGTH = 110  # characters in a line of a page's title (two lines at most)

LISTED_ENVIRONMENTS = 4  # a title names the environments of a list this long, counts longer


def final_environments(run: RunResult) -> Environments:
    """The run's environment geometry after all its interventions."""
    scenario = scenario_from_dict(run.summary["scenario"])
    envs = build_environments(scenario)
    for iv in sorted(scenario.interventions, key=lambda iv: iv.step):
        envs = apply_intervention(envs, iv)
    return envs


def muller_bands(series: pd.DataFrame) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Each lineage's band (bottom, top) at every recorded step of a timeseries, nested by
    descent: a lineage's band spans its clade (itself and all its descendants); inside it,
    half of its own share lies below its children's bands and half above, and children
    stack in the order they were founded.  A lineage whose parent was never recorded is
    treated as a root.  Bands are in dict order parents first, so drawing them in that
    order shows every descendant inside its ancestors."""
    shares = series.pivot_table(index="step", columns="lineage", values="share", fill_value=0.0)
    parents = series.groupby("lineage").parent_lineage.first()
    founded = series.groupby("lineage").step.min()
    known = set(shares.columns)
    children: dict[int, list[int]] = {}
    roots = []
    for lineage in sorted(shares.columns, key=lambda lin: (founded[lin], lin)):
        parent = int(parents[lineage])
        (children.setdefault(parent, []) if parent in known else roots).append(lineage)
    clade: dict[int, np.ndarray] = {}

    def clade_of(lineage: int) -> np.ndarray:
        total = shares[lineage].to_numpy().copy()
        for child in children.get(lineage, []):
            total += clade_of(child)
        clade[lineage] = total
        return total

    for root in roots:
        clade_of(root)
    bands: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def place(lineage: int, bottom: np.ndarray) -> None:
        bands[lineage] = (bottom, bottom + clade[lineage])
        offset = bottom + shares[lineage].to_numpy() / 2
        for child in children.get(lineage, []):
            place(child, offset)
            offset = offset + clade[child]

    offset = np.zeros(len(shares))
    for root in roots:
        place(root, offset)
        offset = offset + clade[root]
    return bands


def muller_plot(run: RunResult, ax: Axes | None = None, nested: bool = True) -> Figure:
    """Shares over time by lineage (coloured by kind, shaded per lineage), with the phase
    band and interventions.  ``nested=True`` (default) draws a Muller diagram by genealogy:
    each lineage inside its parent's band from the step it was founded
    (``muller_bands``); ``nested=False`` stacks the lineages by kind instead."""
    fig, ax = figure_and_axes(ax, (9, 4.2))
    series = run.timeseries
    shares = series.pivot_table(index="step", columns="lineage", values="share", fill_value=0.0)
    kinds = series.groupby("lineage").kind.last()
    first_seen = series.groupby("lineage").step.min()
    by_kind = sorted(
        shares.columns, key=lambda lin: (list(KIND_COLOURS).index(kinds[lin]), first_seen[lin])
    )
    colour = {lin: shade(KIND_COLOURS[kinds[lin]], i) for i, lin in enumerate(by_kind)}
    if nested:
        for lineage, (bottom, top) in muller_bands(series).items():
            ax.fill_between(shares.index, bottom, top, where=top > bottom, color=colour[lineage],
                            linewidth=0.0, rasterized=True)
        title = "Lineages by descent (colour: circuit kind; each inside its parent's band)"
    else:
        ax.stackplot(shares.index, shares[by_kind].T.values,
                     colors=[colour[lin] for lin in by_kind], linewidth=0.0, rasterized=True)
        title = "Lineages over time (colour: circuit kind; shades: lineages)"
    ax.set_xlim(0, run.summary["steps"])
    ax.set_ylim(0, 1)
    ax.set_xlabel("step")
    ax.set_ylabel("share of the population")
    ax.set_title(title)
    phase_handles = _phase_band(run, ax)
    _intervention_marks(run, ax)
    handles = [Patch(color=c, label=k) for k, c in KIND_COLOURS.items() if k in set(kinds)]
    kind_legend = ax.legend(
        handles=handles, title="circuit kind", loc="upper left", bbox_to_anchor=(1.01, 1.0)
    )
    ax.add_artist(kind_legend)
    ax.legend(
        handles=phase_handles, title="training phase", loc="lower left", bbox_to_anchor=(1.01, 0.0)
    )
    return fig


def _phase_band(run: RunResult, ax: Axes) -> list[Patch]:
    """A strip above the axes, one coloured span per training phase; returns legend handles."""
    phases = run.phases.drop_duplicates("phase")
    band = ax.inset_axes([0.0, 1.02, 1.0, 0.06], sharex=ax)
    colours = environment_colours([*run.summary["environments"], *sorted(set(phases.trained))])
    for start, end, label in zip(phases.start, phases.end, phases.trained, strict=True):
        band.axvspan(start, end, color=colours[label], linewidth=0, antialiased=False)
    band.set_yticks([])
    band.tick_params(labelbottom=False, bottom=False)
    band.set_gid("phase-band")
    trained = [lab for lab in colours if lab in set(phases.trained)]
    if len(trained) > MANY:  # a legend of every environment would be taller than the plot
        return [Patch(color=colours[trained[0]], label=f"{trained[0]} ... {trained[-1]}"),
                Patch(color="white", label=f"({len(trained)} environments, cividis order)")]
    return [Patch(color=colours[lab], label=lab) for lab in trained]


def _intervention_marks(run: RunResult, ax: Axes) -> None:
    for iv in run.summary.get("interventions", []):
        ax.axvline(iv["step"], color="black", linestyle="--", linewidth=1.2)
        ax.annotate(
            iv["label"] or "intervention",
            (iv["step"], 0.97),
            xytext=(4, 0),
            textcoords="offset points",
            va="top",
            fontsize=8,
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.8, "lw": 0},
        )


def retention_heatmap(run: RunResult, ax: Axes | None = None, last: int | None = 40) -> Figure:
    """Population reward per environment at each phase end (last ``last`` phases; None = all)."""
    fig, ax = figure_and_axes(ax, (7, 5))
    phases = run.phases
    envs = list(run.summary["environments"])
    held = set(run.summary.get("held_out", []))
    columns = [e for e in envs if e not in held] + [e for e in envs if e in held]
    matrix = phases.pivot(index="phase", columns="environment", values="population_reward")[columns]
    if last is not None:
        matrix = matrix.iloc[-last:]
    image = ax.imshow(
        matrix.values, aspect="auto", cmap="RdBu", vmin=-0.5, vmax=0.5, interpolation="nearest"
    )
    trained = phases.drop_duplicates("phase").set_index("phase").trained.loc[matrix.index]
    marks = [(columns.index(label), row) for row, label in enumerate(trained) if label in columns]
    if marks:
        xs, ys = zip(*marks, strict=True)
        ax.scatter(xs, ys, s=14, color="black", edgecolors="white", linewidths=0.6, gid="trained")
    if held:
        ax.axvline(len(columns) - len(held) - 0.5, color="black", linewidth=3)
    every = max(1, int(np.ceil(len(columns) / MANY)))
    ticks = list(range(0, len(columns), every))
    ax.set_xticks(
        ticks,
        [f"{columns[k]}\n(held out)" if columns[k] in held else columns[k] for k in ticks],
        rotation=30,
        ha="right",
    )
    step = max(1, len(matrix) // 10)
    ax.set_yticks(range(0, len(matrix), step), matrix.index[::step])
    ax.set_ylabel("phase (end)")
    ax.set_title(
        "Retention: reward in every environment at each phase end\n(dot: trained in that phase)"
    )
    fig.colorbar(image, ax=ax, label="population reward (best ½)", fraction=0.05)
    return fig


def environment_graph(run: RunResult, ax: Axes | None = None) -> Figure:
    """Environments and every pair: width = demand overlap, style = distinguishability."""
    fig, ax = figure_and_axes(ax, (6, 5))
    envs = final_environments(run)
    names = list(envs.names)
    walked = _transitions(run)
    graph = nx.Graph()
    graph.add_nodes_from(names)
    for i, j in combinations(range(len(names)), 2):
        graph.add_edge(
            names[i],
            names[j],
            overlap=envs.demand_overlap[i, j],
            distinguishability=1.0 - envs.cue_similarity[i, j],
        )
    layout = (
        nx.circular_layout(graph) if len(names) > 2 else {n: (i, 0) for i, n in enumerate(names)}
    )
    edges = list(graph.edges(data=True))
    if len(names) > MANY:  # only the strongest pairs, or the page is a hairball
        edges = sorted(edges, key=lambda e: -abs(e[2]["overlap"]))[: 2 * len(names)]
    for a, b, data in edges:
        overlap, disting = data["overlap"], data["distinguishability"]
        (xa, ya), (xb, yb) = layout[a], layout[b]
        ax.plot(
            [xa, xb],
            [ya, yb],
            color="#555555" if overlap >= 0 else "#D55E00",
            linewidth=0.5 + 6 * abs(overlap),
            linestyle="-" if disting >= 0.5 else ":",
            alpha=0.8,
            zorder=1,
            gid="edge",
        )
        count = walked.get(frozenset((a, b)), 0)
        if count and len(names) <= MANY:
            ax.annotate(
                f"{count}×",
                ((xa + xb) / 2, (ya + yb) / 2),
                ha="center",
                va="center",
                fontsize=8,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "lw": 0},
            )
    clusters = sorted({c for c in envs.clusters if c}, key=str)
    cluster_colour = environment_colours(clusters)
    for name, cluster, held in zip(names, envs.clusters, envs.held_out, strict=True):
        x, y = layout[name]
        ax.scatter(
            [x],
            [y],
            s=900 if len(names) <= MANY else max(40, 18000 / len(names)),
            color=cluster_colour.get(cluster, "#BBBBBB"),
            zorder=2,
            edgecolors="black",
            linewidths=2.5 if held else 0.8,
            linestyle="--" if held else "-",
            gid="node",
        )
        if len(names) <= MANY:
            ax.annotate(
                name + ("\n(held out)" if held else ""),
                (x, y),
                textcoords="offset points",
                fontsize=9,
                gid="environment",
                **_outward_label(x, y, len(names) > 2),
            )
    handles = [Patch(color=cluster_colour[c], label=f"cluster {c}") for c in clusters] + [
        _line("#555555", "-", "distinguishable (≥ 0.5)"),
        _line("#555555", ":", "hard to tell apart (< 0.5)"),
        _line("#D55E00", "-", "conflicting (negative overlap)"),
    ]
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="width = demand overlap"
    )
    many = f"; the {2 * len(names)} strongest pairs of {len(names)}" if len(names) > MANY else ""
    ax.set_title(f"Environments (labels: times the schedule switched along a pair{many})")
    ax.set_axis_off()
    ax.margins(0.25)
    return fig


def _outward_label(x: float, y: float, circular: bool) -> dict:
    """Where a node's label goes: away from the centre of a circular layout, where no edge
    runs (every edge is a chord inside the circle), aligned so the text grows outward; below
    the node on a line of two."""
    if not circular:
        return {"xytext": (0, -LABEL_OFFSET), "ha": "center", "va": "top"}
    angle = np.arctan2(y, x)
    dx, dy = np.cos(angle), np.sin(angle)
    return {
        "xytext": (LABEL_OFFSET * dx, LABEL_OFFSET * dy),
        "ha": "left" if dx > 0.35 else "right" if dx < -0.35 else "center",
        "va": "bottom" if dy > 0.35 else "top" if dy < -0.35 else "center",
    }


def _line(colour, style, label):
    from matplotlib.lines import Line2D

    return Line2D([], [], color=colour, linestyle=style, linewidth=2, label=label)


def _transitions(run: RunResult) -> dict[frozenset, int]:
    """How often consecutive phases switched between each pair of environments."""
    labels = list(run.phases.drop_duplicates("phase").sort_values("phase").trained)
    counts: dict[frozenset, int] = {}
    for a, b in zip(labels, labels[1:], strict=False):
        if a != b:
            key = frozenset((a, b))
            counts[key] = counts.get(key, 0) + 1
    return counts


def structure_diagram(run: RunResult, ax: Axes | None = None) -> Figure:
    """The dominant circuit's tree at the end: routed environments and classified regimes."""
    fig, ax = figure_and_axes(ax, (7, 4.5))
    last = run.phases[run.phases.phase == run.phases.phase.max()]
    routing = dict(zip(last.environment, last.routing, strict=True))
    structure = last.dominant_structure.iloc[0]
    tree = parse_tree(structure)
    served = _served(routing)
    labels = _regime_by_path(run.summary.get("classification", {}).get("tree"))
    positions = _tree_layout(tree)
    for path, (x, y) in positions.items():
        parent = _parent(path)
        if parent is not None:
            px, py = positions[parent]
            ax.plot([px, x], [py, y], color="#444444", linewidth=1.2, zorder=1)
    for path, (x, y) in positions.items():
        kind = _node_at(tree, path)
        colour = (
            KIND_COLOURS["router"]
            if kind == "R"
            else KIND_COLOURS[{"n": "naive", "w": "weighted", "g": "generalist"}[kind]]
        )
        marker = "s" if kind == "R" else "o"
        ax.scatter(
            [x],
            [y],
            s=500,
            marker=marker,
            color=colour,
            edgecolors="black",
            zorder=2,
            gid="tree-node",
        )
        ax.annotate(
            "R" if kind == "R" else kind, (x, y), ha="center", va="center", fontsize=9, zorder=3
        )
        if path in labels:
            ax.annotate(
                labels[path].replace("_", " "),
                (x, y),
                xytext=(0, 16),
                textcoords="offset points",
                ha="center",
                fontsize=8,
                color="black",
                bbox={
                    "boxstyle": "round,pad=0.2",
                    "fc": COLOURS[labels[path]],
                    "alpha": 0.85,
                    "lw": 0,
                },
            )
        if kind != "R":
            envs = served.get(path, [])
            listed = envs if len(envs) <= 4 else [*envs[:3], f"+{len(envs) - 3} more"]
            ax.annotate(
                "\n".join(listed) if envs else "(unused)",
                (x, y),
                xytext=(0, -18),
                textcoords="offset points",
                ha="center",
                va="top",
                fontsize=8,
            )
    handles = [Patch(color=c, label=k) for k, c in KIND_COLOURS.items()]
    handles += [
        Patch(color=COLOURS[r], label=r.replace("_", " "))
        for r in dict.fromkeys(labels.values())
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="kind / regime")
    ax.set_title(f"Dominant circuit at the end: {compact(structure, 60)}")
    ax.set_axis_off()
    ax.margins(0.2, 0.3)
    return fig


def title_lines(head: str, structure: str, width: int) -> str:
    """``head`` and ``structure`` in lines of ``width`` characters, two at most, broken at
    spaces.  Environment lists longer than ``LISTED_ENVIRONMENTS`` become counts; the
    shorter ones keep their names, which are what a reader looks for, unless even two lines
    cannot hold them (then the whole structure is ``compact``-ed)."""
    text = head + parse(structure).text(listed=LISTED_ENVIRONMENTS)
    lines = textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)
    if len(lines) > 2 or max(map(len, lines), default=0) > width:
        lines = textwrap.wrap(head + compact(structure, 2 * width), width, max_lines=2,
                              placeholder=" …")
    return "\n".join(lines)


def _node_at(tree, path: str):
    node = tree
    if path != "root":
        for part in path.split("."):
            node = node[int(part)]
    return "R" if isinstance(node, list) else node


def _parent(path: str) -> str | None:
    if path == "root":
        return None
    return "root" if "." not in path else path.rsplit(".", 1)[0]


def _tree_layout(tree) -> dict[str, tuple[float, float]]:
    """Leaves evenly spaced left to right, parents centred above their children."""
    positions: dict[str, tuple[float, float]] = {}
    counter = [0]

    def place(node, path: str, depth: int) -> float:
        if not isinstance(node, list):
            x = float(counter[0])
            counter[0] += 1
        else:
            xs = [
                place(child, str(i) if path == "root" else f"{path}.{i}", depth + 1)
                for i, child in enumerate(node)
            ]
            x = float(np.mean(xs))
        positions[path] = (x, -depth)
        return x

    place(tree, "root", 0)
    return positions


def _served(routing: dict[str, dict[str, float]]) -> dict[str, list[str]]:
    """Mechanism path -> environments routed to it most."""
    out: dict[str, list[str]] = {}
    for env, table in routing.items():
        out.setdefault(max(table, key=table.get), []).append(env)
    return out


def _regime_by_path(tree: dict | None) -> dict[str, str]:
    out: dict[str, str] = {}

    def visit(node):
        out.setdefault(node["path"], node["label"])
        for child in node["children"]:
            visit(child)

    if tree:
        visit(tree)
    return out


def summary_figure(run: RunResult) -> Figure:
    """Muller plot, retention heatmap, environment graph and structure on one page, and
    with motivations a row for the motivation over time and the monitor's attribution."""
    motivations = has_motivations(run)
    with style():
        fig = Figure(figsize=(16, 15 if motivations else 11), layout="constrained")
        rows = [1, 1.1, 0.8] if motivations else [1, 1.1]
        grid = fig.add_gridspec(len(rows), 2, height_ratios=rows)
        muller_plot(run, fig.add_subplot(grid[0, :]))
        retention_heatmap(run, fig.add_subplot(grid[1, 0]))
        bottom = grid[1, 1].subgridspec(2, 1, height_ratios=[1, 1])
        environment_graph(run, fig.add_subplot(bottom[0]))
        structure_diagram(run, fig.add_subplot(bottom[1]))
        if motivations:
            motivation_plot(run, fig.add_subplot(grid[2, 0]))
            quarantine_plot(run, fig.add_subplot(grid[2, 1]))
        name = run.summary["scenario"]["name"]
        fig.suptitle(
            title_lines(f"{name} (seed {run.summary['seed']}): ",
                        run.summary.get("structure", ""), TITLE_LENGTH),
            fontsize=13,
            fontweight="bold",
        )
    return fig


FIGURES = {
    "muller": muller_plot,
    "retention": retention_heatmap,
    "environments": environment_graph,
    "structure": structure_diagram,
    "summary": summary_figure,
}


def write_run_figures(run: RunResult, out_dir: str | Path, fmt: str = "png") -> list[Path]:
    """Draw every figure of a run and save them into ``out_dir`` as ``<name>.<fmt>``."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    figures = dict(FIGURES)
    if has_motivations(run):
        figures.update(motivation=motivation_plot, quarantine=quarantine_plot)
    for name, draw in figures.items():
        with style():
            fig = draw(run)
        written.append(save_figure(fig, out / f"{name}.{fmt}", dpi=130))
    return written


def reporter_plot(table: pd.DataFrame, columns: tuple[str, ...] = ("router_share",
                                                                  "mean_fitness")) -> Figure:
    """Model reporters of a ``DataCollector`` table (one row per collection, with a ``step``
    column) against the step, one panel each."""
    with style():
        fig = Figure(figsize=(7.5, 1.8 + 1.6 * len(columns)), layout="constrained")
        axes = fig.subplots(len(columns), 1, sharex=True, squeeze=False)[:, 0]
        for ax, column in zip(axes, columns, strict=True):
            ax.plot(table["step"], table[column], color=KIND_COLOURS.get("router", "C0")
                    if column == "router_share" else "0.3", lw=1.2)
            ax.set_ylabel(column.replace("_", " "))
        axes[-1].set_xlabel("step")
        axes[0].set_title("Model reporters (DataCollector, every phase end)")
    return fig
