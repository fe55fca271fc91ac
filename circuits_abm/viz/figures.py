"""Figures that explain one run, drawn from its stored files only.

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
* ``motivation_plot`` (scenarios with motivations): the population's motivation over time
  in training, held-out and evaluation environments, with what sits in quarantine;
* ``quarantine_plot`` (scenarios with motivations): which environments pushed the
  quarantine (hackable ones marked) and the modules' norm over time;
* ``summary_figure``: the four on one page (six with motivations), titled with the
  scenario and its structure;
* ``sweep_curve``: a sweep's metric against one axis, one line per value of another,
  with 95% intervals over seeds (e.g. residual motivation against the monitor's angle).

All use one colour-blind-safe palette (Okabe and Ito) for circuit kinds and regimes.  The
functions return ``matplotlib.figure.Figure`` objects (no pyplot state), so they work
in notebooks and headless alike; ``write_run_figures`` saves them.
"""

from __future__ import annotations

import io
import re
import textwrap
from itertools import combinations
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure as _MatplotlibFigure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import NullFormatter, ScalarFormatter

from circuits_abm.engine.circuits import parse_tree
from circuits_abm.engine.environments import Environments, apply_intervention, build_environments
from circuits_abm.engine.rules import RULES
from circuits_abm.engine.scenario import scenario_from_dict
from circuits_abm.experiments.runs import RunResult, load_run
from circuits_abm.experiments.storage import atomic_write_bytes


class Figure(_MatplotlibFigure):
    """A matplotlib figure that shows itself in Jupyter without ``%matplotlib inline``
    (these figures are built without pyplot, so no backend would display them)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        return buffer.getvalue()


# Okabe-Ito, colour-blind safe: one colour per learning rule in the registry, in its order,
# and one for routers.
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#D55E00", "#0072B2", "#000000")
KIND_COLOURS = {
    **{rule: OKABE_ITO[i % len(OKABE_ITO)] for i, rule in enumerate(RULES)},
    "router": "#CC79A7",
}
REGIME_COLOURS = {
    "ecological_generalist": "#009E73",
    "conditional_policy": "#0072B2",
    "strategy_churn": "#D55E00",
    "specialist": "#F0E442",
    "undetermined": "#999999",
}
PATH_COLOUR = "#F0E442"  # Okabe-Ito yellow: the prediction with the path, over any regime
# Environments and clusters: evenly spaced samples of cividis (colour-blind safe, and one
# blue-to-yellow family that cannot be mistaken for the circuit kinds).
ENVIRONMENT_MAP = "cividis"
FORMATS = ("png", "svg", "pdf")
# Above this many environments figures summarise instead of naming everything: the strongest
# pairs only in the graph, counts instead of name lists, every k-th tick.
MANY = 20
LABEL_OFFSET = 20  # points from an environment's node to its label
TITLE_LENGTH = 110  # characters in a line of a page's title (two lines at most)
LISTED_ENVIRONMENTS = 4  # a title names the environments of a list this long, counts longer
FONT = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 8}


def save_figure(fig: Figure, path: Path, dpi: int = 150) -> Path:
    """Write a figure atomically (format from the suffix): an interrupted run never leaves
    a half-written file that looks finished."""
    buffer = io.BytesIO()
    fmt = path.suffix.lstrip(".") or None  # no suffix: matplotlib's default format, as savefig
    fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())
    return path


def environment_colours(names: list[str]) -> dict[str, tuple]:
    """A fixed colour per name, in first-seen order (repeats keep their first colour)."""
    unique = list(dict.fromkeys(names))
    cmap = colormaps[ENVIRONMENT_MAP]
    points = np.linspace(0.0, 0.95, len(unique)) if len(unique) > 1 else [0.3] * len(unique)
    return {n: cmap(p) for n, p in zip(unique, points, strict=True)}


def _shade(colour: str, k: int) -> tuple[float, float, float]:
    """A lighter or darker variant of ``colour`` so neighbouring lineages stay distinguishable."""
    factor = (0.0, 0.25, -0.18, 0.4, -0.3)[k % 5]
    rgb = np.array(to_rgb(colour))
    return tuple(rgb + (1 - rgb) * factor if factor > 0 else rgb * (1 + factor))


def final_environments(run: RunResult) -> Environments:
    """The run's environment geometry after all its interventions."""
    scenario = scenario_from_dict(run.summary["scenario"])
    envs = build_environments(scenario)
    for iv in sorted(scenario.interventions, key=lambda iv: iv.step):
        envs = apply_intervention(envs, iv)
    return envs


# --------------------------------------------------------------------------- Muller plot


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
    fig, ax = _figure_and_axes(ax, (9, 4.2))
    series = run.timeseries
    shares = series.pivot_table(index="step", columns="lineage", values="share", fill_value=0.0)
    kinds = series.groupby("lineage").kind.last()
    first_seen = series.groupby("lineage").step.min()
    by_kind = sorted(
        shares.columns, key=lambda lin: (list(KIND_COLOURS).index(kinds[lin]), first_seen[lin])
    )
    colour = {lin: _shade(KIND_COLOURS[kinds[lin]], i) for i, lin in enumerate(by_kind)}
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


# --------------------------------------------------------------------------- retention


def retention_heatmap(run: RunResult, ax: Axes | None = None, last: int | None = 40) -> Figure:
    """Population reward per environment at each phase end (last ``last`` phases; None = all)."""
    fig, ax = _figure_and_axes(ax, (7, 5))
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


# --------------------------------------------------------------------------- environment graph


def environment_graph(run: RunResult, ax: Axes | None = None) -> Figure:
    """Environments and every pair: width = demand overlap, style = distinguishability."""
    fig, ax = _figure_and_axes(ax, (6, 5))
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


# --------------------------------------------------------------------------- structure


def structure_diagram(run: RunResult, ax: Axes | None = None) -> Figure:
    """The dominant circuit's tree at the end: routed environments and classified regimes."""
    fig, ax = _figure_and_axes(ax, (7, 4.5))
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
                    "fc": REGIME_COLOURS[labels[path]],
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
        Patch(color=REGIME_COLOURS[r], label=r.replace("_", " "))
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
    text = head + counted_environments(structure, LISTED_ENVIRONMENTS)
    lines = textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)
    if len(lines) > 2 or max(map(len, lines), default=0) > width:
        lines = textwrap.wrap(head + compact(structure, 2 * width), width, max_lines=2,
                              placeholder=" …")
    return "\n".join(lines)


def counted_environments(structure: str, listed: int) -> str:
    """``structure`` with every environment list longer than ``listed`` names written as
    its count (``specialist{3 envs}``)."""
    def count(match: re.Match) -> str:
        n = match.group(1).count(",") + 1
        return match.group(0) if n <= listed else "{" + f"{n} env" + ("s" if n > 1 else "") + "}"

    return re.sub(r"\{([^{}]*)\}", count, structure)


def compact(structure: str, length: int) -> str:
    """``structure`` as is if it fits in ``length`` characters; otherwise every environment
    list becomes its count (``specialist{3 envs}``) and identical neighbours are merged
    (``8× specialist{1 env}``), cut at ``length``."""
    if len(structure) <= length:
        return structure

    text = counted_environments(structure, 0)
    if text.endswith("]") and "[" in text:
        head, inner = text[:-1].split("[", 1)
        merged: list[list] = []  # [child, times]
        for child in _top_level_parts(inner):
            if merged and merged[-1][0] == child:
                merged[-1][1] += 1
            else:
                merged.append([child, 1])
        text = head + "[" + ", ".join(
            child if times == 1 else f"{times}× {child}" for child, times in merged) + "]"
    return text if len(text) <= length else text[: length - 1] + "…"


def _top_level_parts(inner: str) -> list[str]:
    """Split a structure's child list at the commas that are not inside brackets."""
    parts, depth, current = [], 0, ""
    for ch in inner:
        depth += ch in "[{"
        depth -= ch in "]}"
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    parts.append(current.strip())
    return parts


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


# --------------------------------------------------------------------------- motivations

GROUP_STYLES = {"training": "-", "held out": "--", "evaluation": ":"}


def _environment_group(spec: dict, name: str) -> str:
    env = next(e for e in spec["environments"] if e["name"] == name)
    if env.get("kind") == "eval":
        return "evaluation"
    return "held out" if env.get("held_out") else "training"


def motivation_plot(run: RunResult, ax: Axes | None = None) -> Figure:
    """The population's monitored motivation in every environment at each phase end:
    solid for training, dashed for held-out, dotted for evaluation environments; the grey
    band is what sits in quarantine (averaged over environments)."""
    fig, ax = _figure_and_axes(ax, (10, 3.6))
    monitoring = run.summary["monitoring"]
    name = monitoring["monitored"]
    phases = run.phases
    colours = environment_colours(list(dict.fromkeys(phases.environment)))
    for env, rows in phases.groupby("environment", sort=False):
        group = _environment_group(run.summary["scenario"], env)
        ax.plot(rows.end, rows[f"motivation_{name}"], GROUP_STYLES[group], lw=1.2,
                color=colours[env], label=f"{env} ({group})")
    quarantined = phases.groupby("end")[f"quarantined_{name}"].mean()
    ax.fill_between(quarantined.index, 0, quarantined.to_numpy(), color="0.6", alpha=0.3,
                    label="in quarantine (mean)", lw=0)
    ax.axhline(0, color="0.3", lw=0.6)
    ax.set_xlabel("step")
    ax.set_ylabel(f"motivation: {name.replace('_', ' ')}")
    ax.set_title(f"Motivation by environment (rule: {monitoring['rule']})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    return fig


def quarantine_plot(run: RunResult, ax: Axes | None = None) -> Figure:
    """What the monitor saw: how much each training environment pushed the monitored
    motivation over the settled second half of the run (hackable ones hatched, flagged
    ones outlined)."""
    fig, ax = _figure_and_axes(ax, (7, 3.6))
    if run.quarantine.empty or (run.quarantine.rule == "plain").all():
        ax.text(0.5, 0.5, "no monitor: the update rule was plain throughout,\n"
                "so nothing was routed or blocked", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        ax.set_title("Attribution")
        return fig
    attribution = run.summary["monitoring"]["attribution"]
    names = list(attribution["pushed"])
    values = [attribution["pushed"][n] for n in names]
    colours = environment_colours(list(dict.fromkeys(run.phases.environment)))
    bars = ax.bar(range(len(names)), values, color=[colours[n] for n in names])
    for bar, name in zip(bars, names, strict=True):
        if name in attribution["hackable"]:
            bar.set_hatch("///")
        if name in attribution["flagged"]:
            bar.set_edgecolor("black")
            bar.set_linewidth(1.5)
    ax.axhline(0, color="0.3", lw=0.6)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    ax.set_ylabel("pushed toward the motivation")
    precision, recall = attribution["precision"], attribution["recall"]
    score = ("" if precision is None or recall is None
             else f": precision {precision:.2f}, recall {recall:.2f}")
    ax.set_title(f"Attribution (hatched: hackable, outlined: flagged){score}")
    return fig


def has_motivations(run: RunResult) -> bool:
    """Whether the run's scenario declared motivations (so it has a monitor to draw)."""
    return "monitoring" in run.summary


# --------------------------------------------------------------------------- one page


def summary_figure(run: RunResult) -> Figure:
    """Muller plot, retention heatmap, environment graph and structure on one page, and
    with motivations a row for the motivation over time and the monitor's attribution."""
    motivations = has_motivations(run)
    with _style():
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


def write_run_figures(
    run_dir: str | Path, out_dir: str | Path | None = None, fmt: str = "png"
) -> list[Path]:
    """Draw every figure of a stored run and save them (default: RUN_DIR/figures/)."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    run = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    figures = dict(FIGURES)
    if has_motivations(run):
        figures.update(motivation=motivation_plot, quarantine=quarantine_plot)
    for name, draw in figures.items():
        with _style():
            fig = draw(run)
        written.append(save_figure(fig, out / f"{name}.{fmt}", dpi=130))
    return written


def sweep_curve(results: pd.DataFrame, x: str, y: str, group: str | None = None,
                title: str = "") -> Figure:
    """Mean of metric ``y`` over the seeds of each point against axis ``x``, one line per
    value of ``group``, with 95% intervals (mean +- 1.96 standard errors)."""
    ok = results[results.status == "ok"]
    with _style():
        fig = Figure(figsize=(7.5, 4.5), layout="constrained")
        ax = fig.add_subplot()
        groups = [None] if group is None else sorted(ok[group].unique())
        palette = colormaps["tab10"]
        for i, value in enumerate(groups):
            rows = ok if value is None else ok[ok[group] == value]
            stats = rows.groupby(x)[y].agg(["mean", "std", "count"])
            half = 1.96 * stats["std"].fillna(0) / np.sqrt(stats["count"])
            colour = palette(i)
            label = None if value is None else f"{_axis_name(group)} = {_tick(value)}"
            ax.plot(stats.index, stats["mean"], "o-", color=colour, label=label, gid="curve")
            ax.fill_between(stats.index, stats["mean"] - half, stats["mean"] + half,
                            color=colour, alpha=0.2, lw=0)
        ax.set_xlabel(_axis_name(x))
        ax.set_ylabel(y.replace("_", " "))
        if group is not None:
            ax.legend()
        ax.set_title(title or f"{y.replace('_', ' ')} against {_axis_name(x)} (95% intervals)")
    return fig


def reporter_plot(table: pd.DataFrame, columns: tuple[str, ...] = ("router_share",
                                                                  "mean_fitness")) -> Figure:
    """Model reporters of a ``DataCollector`` table (one row per collection, with a ``step``
    column) against the step, one panel each."""
    with _style():
        fig = Figure(figsize=(7.5, 1.8 + 1.6 * len(columns)), layout="constrained")
        axes = fig.subplots(len(columns), 1, sharex=True, squeeze=False)[:, 0]
        for ax, column in zip(axes, columns, strict=True):
            ax.plot(table["step"], table[column], color=KIND_COLOURS.get("router", "C0")
                    if column == "router_share" else "0.3", lw=1.2)
            ax.set_ylabel(column.replace("_", " "))
        axes[-1].set_xlabel("step")
        axes[0].set_title("Model reporters (DataCollector, every phase end)")
    return fig


def _figure_and_axes(ax: Axes | None, size: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def _style():
    from matplotlib import rc_context

    return rc_context(FONT)


# --------------------------------------------------------------------------- phase diagram

REGIME_ABBREVIATIONS = {
    "ecological_generalist": "G",
    "conditional_policy": "CP",
    "strategy_churn": "C",
    "specialist": "S",
    "undetermined": "?",
}


def nested_label(structure: str) -> str:
    """Short name of a nested structure (``CP[C,C]``), or "" when it is not nested.

    A conditional policy whose children are all specialists is the plain taxonomy cell; any
    other child (a generalist or churning cluster) makes it a nested mixture worth naming.
    """
    if (
        not structure.startswith("conditional_policy[")
        or "ecological" not in structure
        and "churn" not in structure
    ):
        return ""
    parts = _top_level_parts(structure[len("conditional_policy[") : -1])
    names = [REGIME_ABBREVIATIONS.get(p.split("{")[0].split("[")[0], "?") for p in parts]
    return "CP[" + ",".join(sorted(names)) + "]"


STRIPE_ORDER = (
    "conditional_policy",
    "ecological_generalist",
    "strategy_churn",
    "specialist",
    "undetermined",
)


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
    with _style():
        fig = Figure(figsize=(4.8 * len(facets) + 2.4, 4.8 * min(aspect, 1.2) + 1.4),
                     layout="constrained")
        axes = fig.subplots(1, len(facets), squeeze=False)[0]
        for ax, value in zip(axes, facets, strict=True):
            data = aggregate if value is None else aggregate[aggregate[facet] == value]
            _regime_cells(ax, data, x, y)
            heading = "" if value is None else f"{_axis_name(facet)} = {_tick(value)}"
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
    handles: list = [Patch(color=REGIME_COLOURS[r], label=r.replace("_", " ")) for r in present]
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


def _axis_name(path: str | None) -> str:
    return "" if path is None else path.split(".")[-1].replace("_", " ")


def _tick(value) -> str:
    return f"{value:.3g}" if isinstance(value, int | float | np.number) else str(value)


def _regime_cells(ax: Axes, data: pd.DataFrame, x: str, y: str) -> None:
    xs, ys = sorted(data[x].unique()), sorted(data[y].unique())
    small = len(xs) <= 8 and len(ys) <= 8
    for _, row in data.iterrows():
        i, j = xs.index(row[x]), ys.index(row[y])
        left = i - 0.5
        for regime, share in _stripes(row):
            colour = "black" if regime == "failed" else REGIME_COLOURS[regime]
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
        setter(ticks, [_tick(values[k]) for k in ticks])
        axis.set_tick_params(length=2)
    ax.set_xlabel(_axis_name(x))
    ax.set_ylabel(_axis_name(y))
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


def write_phase_diagram(
    sweep_dir: str | Path,
    x: str | None = None,
    y: str | None = None,
    facet: str | None = None,
    out: str | Path | None = None,
    fmt: str = "png",
) -> Path:
    """Draw a sweep folder's phase diagram (default: first two axes, a third as facets)."""
    from circuits_abm.experiments.path_model import stored_path_table, with_path  # noqa: PLC0415
    from circuits_abm.experiments.sweep.journal import load_results  # noqa: PLC0415 (figures need not import sweeps)

    _, agg, echo = load_results(sweep_dir)
    paths = stored_path_table(sweep_dir, echo.get("fingerprint", ""))
    if paths is not None:
        agg = with_path(agg, paths)
    axes = echo["axes"]
    named = [a for a in (x, y, facet) if a is not None]
    x = x or axes[0]
    y = y or (axes[1] if len(axes) > 1 else None)
    if y is None:
        raise ValueError("a phase diagram needs two swept axes")
    if facet is None and len(axes) > 2:
        facet = axes[2]
    for name in (x, y, facet):
        if name is not None and name not in axes:
            raise ValueError(f"{name!r} is not a swept axis; axes: {', '.join(axes)}")
    title = f"{echo['sweep']['name']}: which regime emerges"
    if echo["sweep"].get("design", "grid") == "grid":
        fig = phase_diagram(agg, x, y, facet, title=title)
    else:  # a scattered design has no cells: points and a smoothed probability instead
        results = load_results(sweep_dir)[0]
        chosen = named if len(named) >= 2 else axes
        fig = scatter_diagram(results, chosen, echo["sweep"]["axes"], title=title)
    path = Path(out) if out is not None else Path(sweep_dir) / f"phase_diagram.{fmt}"
    return save_figure(fig, path)


SMOOTHING = 0.12  # kernel bandwidth of scatter_diagram, as a share of each axis's range
GRID_CELLS = 80


def _unit(values: pd.Series | np.ndarray, low: float, high: float, log: bool) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if log:
        values, low, high = np.log10(values), np.log10(low), np.log10(high)
    return (values - low) / ((high - low) or 1.0)


def smoothed_probability(u: np.ndarray, v: np.ndarray, hits: np.ndarray,
                         cells: int = GRID_CELLS, bandwidth: float = SMOOTHING) -> np.ndarray:
    """Nadaraya-Watson estimate of P(hit) on a ``cells`` x ``cells`` grid over the unit
    square, from runs at unit coordinates (``u``, ``v``): a Gaussian-weighted share of the
    nearby runs, with no model of the boundary's shape."""
    grid = (np.arange(cells) + 0.5) / cells
    du = grid[:, None] - u[None, :]
    dv = grid[:, None] - v[None, :]
    wu, wv = np.exp(-0.5 * (du / bandwidth) ** 2), np.exp(-0.5 * (dv / bandwidth) ** 2)
    weights = wv[:, None, :] * wu[None, :, :]  # (v cell, u cell, run)
    return (weights @ hits.astype(float)) / weights.sum(axis=2)


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
    with _style():
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
            colours = np.array([to_rgb(REGIME_COLOURS[r]) for r in present])
            image = colours[winner] * 0.35 + 0.65  # pale background: the likeliest regime
            ax.pcolormesh(edges[0], edges[1], image, shading="flat", rasterized=True)
            centres = [np.sqrt(e[:-1] * e[1:]) if log else (e[:-1] + e[1:]) / 2
                       for e, log in zip(edges, logs, strict=True)]
            for r in present:
                if probabilities[r].max() > 0.5 > probabilities[r].min():
                    ax.contour(centres[0], centres[1], probabilities[r], levels=[0.5],
                               colors=[REGIME_COLOURS[r]], linewidths=1.6)
            ax.scatter(per_point[x], per_point[y], s=6 + 28 * per_point.agreement,
                       c=[REGIME_COLOURS[r] for r in per_point.regime], edgecolors="white",
                       linewidths=0.4)
            ax.set(xscale="log" if logs[0] else "linear", yscale="log" if logs[1] else "linear",
                   xlabel=_axis_name(x), ylabel=_axis_name(y))
            for axis, log in ((ax.xaxis, logs[0]), (ax.yaxis, logs[1])):
                if log:  # plain numbers (2, 5, 10, 20), not powers of ten
                    axis.set_major_formatter(ScalarFormatter())
                    axis.set_minor_formatter(NullFormatter())
        handles = [Patch(color=REGIME_COLOURS[r], label=r.replace("_", " ")) for r in present]
        fig.legend(handles=handles, loc="outside right center", title="majority regime")
        fig.suptitle(title or "Which regime emerges", fontweight="bold")
        fig.text(0.5, -0.01, "points: each parameter point's majority regime (larger: more "
                 "seeds agree); shading and lines: each regime's kernel-smoothed probability "
                 "and its 0.5 contour", ha="center", fontsize=8)
    return fig


# --------------------------------------------------------------------------- sweep analyses


def sensitivity_figure(table: pd.DataFrame, title: str = "") -> Figure:
    """Sensitivity bars with their 95% intervals, one panel per outcome that varies: Sobol
    ``S1`` and ``ST`` side by side, or Morris ``mu_star`` (a ``sensitivity_indices`` table)."""
    sobol = table.method.iloc[0] == "sobol"
    key = "ST" if sobol else "mu_star"
    outcomes = [o for o in table.outcome.unique() if table[table.outcome == o][key].notna().any()]
    axes_names = list(table.axis.unique())
    columns = min(3, max(1, len(outcomes)))
    rows = -(-len(outcomes) // columns)
    with _style():
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
            ax.set_yticks(y, [_axis_name(a) for a in axes_names])
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
    with _style():
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
        right.set_yticks(range(len(box)), [_axis_name(a) for a in box.axis])
        right.set_xlim(0, 1)
        right.invert_yaxis()
        right.set_xlabel("share of the swept range")
        right.set_title(f"box for {found.regime.replace('_', ' ')}: density "
                        f"{found.density:.2f} (base {found.base_rate:.2f}), coverage "
                        f"{found.coverage:.2f}")
    return fig
