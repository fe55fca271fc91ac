"""Figures of the comparison with trained networks (docs/neural.md): how often canonical
scenarios give their expected structure before and after their interventions, and
forgetting and transfer against task similarity."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import colormaps

from circuits_abm.analysis.rates import half_width
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
    return float(values.mean()), half_width(values)


def forgetting_figure(tables) -> Figure:
    """Four panels (``experiments.forgetting.Tables``): forgetting in overparameterised
    linear regression against the subspaces' angle (trained, with the closed form);
    forgetting in the teacher-student network against its teachers' feature similarity;
    then forgetting and transfer of each learner against the teachers' overlap.  Means
    over seeds with 95% intervals."""
    linear, features, sequences = tables
    palette = colormaps["tab10"]
    with style():
        fig = Figure(figsize=(12, 8.5), layout="constrained")
        (first, student), (second, third) = fig.subplots(2, 2)
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
        stats = features.groupby("similarity").forgetting.apply(_mean_and_interval)
        student.errorbar(list(stats.index), [m for m, _ in stats], yerr=[h for _, h in stats],
                         fmt="o-", color=palette(4), capsize=3, ms=4)
        student.set_xlabel("feature similarity of the two teachers")
        student.set_ylabel("forgetting of teacher A")
        student.set_title("teacher-student, two erf units (Lee, Goldt and Saxe)")
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


def gradient_routing_figure(angles: pd.DataFrame, absorption: pd.DataFrame) -> Figure:
    """Four panels (``experiments.neural_routing``): the held-out motivation after training
    against the monitor's angle under each rule, in the network and in the agent-based
    model, with the first-order prediction ``plain * sin^2(angle)`` dashed; how much it grew
    from the first reading to the end; and absorption (the share of the behaviour the
    discard removes against the share of examples labelled, the diagonal being the null).
    Means over seeds with 95% intervals."""
    palette = colormaps["tab10"]
    colours = {"plain": palette(7), "block": palette(3), "route": palette(2)}
    with style():
        fig = Figure(figsize=(12, 8.5), layout="constrained")
        axes = fig.subplots(2, 2)
        learners = list(dict.fromkeys(angles.learner))
        for ax, learner in zip(axes[0], learners, strict=True):
            mine = angles[angles.learner == learner]
            for rule, rows in mine.groupby("rule", sort=False):
                stats = rows.groupby("angle").held_out.apply(_mean_and_interval)
                ax.errorbar(list(stats.index), [m for m, _ in stats],
                            yerr=[h for _, h in stats], fmt="o-", color=colours[rule],
                            label=rule, capsize=3, ms=4)
            plain = mine[mine.rule == "plain"].groupby("angle").held_out.mean()
            ax.plot(plain.index, plain * np.sin(np.radians(plain.index)) ** 2, "--",
                    color="black", lw=1, label="plain × sin²(angle)")
            ax.axhline(0, color="0.5", lw=0.6)
            ax.set_xlabel("monitor angle (degrees)")
            ax.set_ylabel("held-out motivation after the discard")
            ax.set_title(learner)
            ax.legend(fontsize=8)
        growth = axes[1, 0]
        for i, learner in enumerate(learners):
            for rule, marker in (("block", "o"), ("route", "s")):
                rows = angles[(angles.learner == learner) & (angles.rule == rule)]
                stats = (rows.held_out - rows.held_out_early).groupby(rows.angle).apply(
                    _mean_and_interval)
                growth.errorbar(list(stats.index), [m for m, _ in stats],
                                yerr=[h for _, h in stats], fmt=marker + ("-" if i else ":"),
                                color=colours[rule], capsize=3, ms=4,
                                label=f"{rule}, {learner}")
        growth.axhline(0, color="0.5", lw=0.6)
        growth.set_xlabel("monitor angle (degrees)")
        growth.set_ylabel("held-out motivation: end − first reading")
        growth.set_title("does the leak grow with training?")
        growth.legend(fontsize=8)
        absorbed = axes[1, 1]
        for i, (d, rows) in enumerate(absorption.groupby("distinguishability")):
            stats = rows.groupby("labelled").removed.apply(_mean_and_interval)
            absorbed.errorbar(list(stats.index), [m for m, _ in stats],
                              yerr=[h for _, h in stats], fmt="o-", color=palette(i),
                              label=f"distinguishability {d:g}", capsize=3, ms=4)
        absorbed.plot([0, 1], [0, 1], "--", color="black", lw=1, label="removed = labelled")
        absorbed.set_xlabel("share of the paying examples labelled (routed)")
        absorbed.set_ylabel("share of the behaviour the discard removes")
        absorbed.set_title("absorption (network)")
        absorbed.legend(fontsize=8)
        fig.suptitle("Gradient routing: a monitored direction, blocked or routed",
                     fontweight="bold")
    return fig
