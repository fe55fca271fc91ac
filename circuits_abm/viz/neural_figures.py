"""Figures of the comparison with trained networks (docs/neural.md): how often canonical
scenarios give their expected structure before and after their interventions, and
forgetting and transfer against task similarity."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import colormaps

from circuits_abm.viz.style import Figure, style


def stage_rates_figure(rates: pd.DataFrame, title: str = "") -> Figure:
    """For each scenario, the rate at which runs gave the expected structure before the
    interventions and at the end, one bar per learner, with Wilson 95% intervals
    (``experiments.neural.stage_rates``)."""
    scenarios = list(dict.fromkeys(rates.scenario))
    learners = list(dict.fromkeys(rates.learner))
    palette = colormaps["tab10"]
    with style():
        fig = Figure(figsize=(4.2 * len(scenarios) + 1.5, 3.8), layout="constrained")
        axes = fig.subplots(1, len(scenarios), squeeze=False)[0]
        for ax, name in zip(axes, scenarios, strict=True):
            part = rates[rates.scenario == name]
            stages = list(dict.fromkeys(part.stage))
            width = 0.8 / len(learners)
            for i, learner in enumerate(learners):
                rows = part[part.learner == learner].set_index("stage").reindex(stages)
                xs = np.arange(len(stages)) + (i - (len(learners) - 1) / 2) * width
                ax.bar(xs, rows.rate, width, color=palette(i), label=learner, gid="rate")
                ax.errorbar(xs, rows.rate, yerr=[rows.rate - rows.low, rows.high - rows.rate],
                            fmt="none", ecolor="black", capsize=3, lw=1)
            ax.set_xticks(range(len(stages)), [f"expected {s}" for s in stages])
            ax.set_ylim(0, 1.05)
            ax.set_title(name)
            ax.set_ylabel("share of runs")
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center")
        fig.suptitle(title or "Expected structure before and after the interventions",
                     fontweight="bold")
    return fig


def _mean_and_interval(values: pd.Series) -> tuple[float, float]:
    """Mean and the half-width of its 95% interval (1.96 standard errors)."""
    return float(values.mean()), float(1.96 * values.std(ddof=1) / np.sqrt(len(values)))


def forgetting_figure(linear: pd.DataFrame, sequences: pd.DataFrame) -> Figure:
    """Three panels (``experiments.forgetting``): forgetting in overparameterised linear
    regression against the subspaces' angle (trained, with the closed form), then
    forgetting and transfer of each learner against the teachers' overlap; means over
    seeds with 95% intervals."""
    palette = colormaps["tab10"]
    with style():
        fig = Figure(figsize=(15, 4.2), layout="constrained")
        first, second, third = fig.subplots(1, 3)
        stats = linear.groupby("angle").forgetting.apply(_mean_and_interval)
        angles = list(stats.index)
        first.errorbar(angles, [m for m, _ in stats], yerr=[h for _, h in stats], fmt="o",
                       color=palette(0), label="trained (gradient descent)", capsize=3)
        first.plot(angles, linear.groupby("angle").closed_form.mean(), color="black", lw=1,
                   label="closed form")
        first.set_xlabel("angle between the tasks' data subspaces (degrees)")
        first.set_ylabel("forgetting of task A")
        first.set_title("overparameterised regression (Evron et al.)")
        first.legend(fontsize=8)
        for ax, column, label in ((second, "forgetting", "forgetting of a"),
                                  (third, "transfer", "reward on b before training it")):
            for i, (learner, rows) in enumerate(sequences.groupby("learner", sort=False)):
                stats = rows.groupby("sharing")[column].apply(_mean_and_interval)
                ax.errorbar(list(stats.index), [m for m, _ in stats],
                            yerr=[h for _, h in stats], fmt="o-", color=palette(i + 1),
                            label=learner, capsize=3, ms=4)
            ax.set_xlabel("sharing (overlap of the two teachers)")
            ax.set_ylabel(label)
            ax.axhline(0, color="0.5", lw=0.6)
        second.set_title("a then b: forgetting")
        third.set_title("a then b: transfer")
        second.legend(fontsize=8)
        fig.suptitle("Forgetting against task similarity", fontweight="bold")
    return fig
