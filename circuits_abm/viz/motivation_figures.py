"""Figures of a run with declared motivations.

* ``motivation_plot``: the population's motivation over time in training, held-out and
  evaluation environments, with what sits in quarantine;
* ``quarantine_plot``: which environments pushed the quarantine (hackable ones marked)
  and the modules' norm over time;
* ``evasion_figure``: the "forbidden technique" figure, leak against training time under
  each rule at several monitor angles (``circuits_abm.experiments.evasion``);
* ``capacity_figure``: what a cramped quarantine module lets through
  (``circuits_abm.experiments.module_capacity``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes

from circuits_abm.analysis.rates import half_width
from circuits_abm.experiments.runs import RunResult
from circuits_abm.viz.style import Figure, environment_colours, figure_and_axes, style

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
    fig, ax = figure_and_axes(ax, (10, 3.6))
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
    fig, ax = figure_and_axes(ax, (7, 3.6))
    if run.quarantine.empty or (run.quarantine.rule == "plain").all():
        ax.text(0.5, 0.5, "no monitor: the update rule was plain throughout,\n"
                "so nothing was routed or blocked", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        ax.set_title("Attribution")
        return fig
    attribution = run.summary["monitoring"]["attribution"]
    names = sorted(attribution["pushed"])  # a stored summary's keys come back sorted
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


def evasion_figure(leaks: pd.DataFrame, predicted: dict[float, dict[str, float]]) -> Figure:
    """One panel per monitor angle: the held-out motivation left in the parameters against
    training steps (log scale) under plain, block and route, the mean over seeds with its
    95% band, and dashed at the right the end levels that the geometry predicts
    (``predicted[angle][rule]`` times plain learning's end level)."""
    palette = colormaps["tab10"]
    colours = {"plain": palette(7), "block": palette(3), "route": palette(2)}
    angles = sorted(leaks.angle.unique())
    with style():
        fig = Figure(figsize=(4.2 * len(angles), 3.9), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(angles), sharey=True))
        for ax, angle in zip(axes, angles, strict=True):
            mine = leaks[leaks.angle == angle]
            plain_end = mine[(mine.rule == "plain") & (mine.step == mine.step.max())].leak.mean()
            for rule, rows in mine.groupby("rule", sort=False):
                stats = rows.groupby("step").leak.agg(["mean", half_width])
                half = stats["half_width"]
                ax.plot(stats.index, stats["mean"], "o-", ms=3, color=colours[rule], label=rule)
                ax.fill_between(stats.index, stats["mean"] - half, stats["mean"] + half,
                                color=colours[rule], alpha=0.2, lw=0)
                if rule != "plain":
                    ax.axhline(plain_end * predicted[angle][rule], ls="--", lw=1,
                               color=colours[rule])
            ax.axhline(0, color="0.5", lw=0.6)
            ax.set_xscale("log")
            ax.set_xlabel("training steps")
            ax.set_title(f"monitor at {angle:g}°")
        axes[0].set_ylabel("held-out motivation left in the parameters")
        axes[0].plot([], [], "--", color="black", lw=1, label="predicted end level")
        axes[0].legend(fontsize=8, loc="center right")
        fig.suptitle("Evasion over training: a third, weak pathway the monitor does not watch",
                     fontweight="bold")
    return fig


def capacity_figure(table: pd.DataFrame, plain: float) -> Figure:
    """The held-out motivation after the discard against the module's capacity (log
    scale; the uncapped module at the right edge), with 95% intervals, plain learning's
    level, and the overflow bound ``plain - sqrt(2) c`` dashed."""
    capped = table[table.capacity.notna()]
    uncapped = table[table.capacity.isna()]
    edge = float(capped.capacity.max()) * 2.5
    with style():
        fig = Figure(figsize=(6.4, 4.2), layout="constrained")
        ax = fig.subplots()
        ax.errorbar(list(capped.capacity) + [edge] * len(uncapped),
                    list(capped.held_out) + list(uncapped.held_out),
                    yerr=list(capped.half_width) + list(uncapped.half_width),
                    fmt="o-", color=colormaps["tab10"](2), capsize=3, label="route, measured")
        grid = np.geomspace(float(capped.capacity.min()), edge, 100)
        ax.plot(grid, np.maximum(0.0, plain - np.sqrt(2.0) * grid), "--", color="black", lw=1,
                label="bound: plain − √2 · capacity")
        ax.axhline(plain, color=colormaps["tab10"](7), lw=1, label="plain learning")
        ax.set_xscale("log")
        ticks = list(capped.capacity) + [edge]
        ax.set_xticks(ticks, [f"{c:g}" for c in capped.capacity] + ["no cap"])
        ax.minorticks_off()
        ax.set_xlabel("quarantine module capacity (norm)")
        ax.set_ylabel("held-out motivation after the discard")
        ax.legend(fontsize=8)
        ax.set_title("A cramped module overflows into the parameters")
    return fig
