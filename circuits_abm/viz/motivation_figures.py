"""Figures of a run with declared motivations.

* ``motivation_plot``: the population's motivation over time in training, held-out and
  evaluation environments, with what sits in quarantine;
* ``quarantine_plot``: which environments pushed the quarantine (hackable ones marked)
  and the modules' norm over time.
"""

from __future__ import annotations

from matplotlib.axes import Axes

from circuits_abm.experiments.runs import RunResult
from circuits_abm.viz.style import Figure, environment_colours, figure_and_axes

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
