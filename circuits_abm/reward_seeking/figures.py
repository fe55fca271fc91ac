"""Figures of the reward-seeking model, drawn from the experiments' tables.

* ``single_heatmaps``: final propensity over the two normalised learnabilities, one
  panel per initial skill gap, the 0.5 contour drawn;
* ``homogeneous_curves``: final propensity against N for several priors, and the
  critical diversity N* against the prior per learnability ratio (log axes);
* ``heterogeneous_scaling``: N* against the prior per geometry, median and
  interquartile range over resamples, with the fitted log-log slope in the legend;
* ``crosscheck_figure``: the agent-based generalist's final share beside the mean-field
  propensity, both against N.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from circuits_abm.viz.style import Figure, style

# Okabe-Ito, colour-blind safe, one colour per series.
SERIES = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]


def single_heatmaps(table: pd.DataFrame) -> Figure:
    """One environment: where does reward seeking win (final propensity, α^z = 1)?"""
    gaps = sorted(table["skill_local"].unique())
    with style():
        fig = Figure(figsize=(3.6 * len(gaps) + 0.8, 3.6), layout="constrained")
        axes = fig.subplots(1, len(gaps), sharey=True, squeeze=False)[0]
        for ax, local in zip(axes, gaps, strict=True):
            grid = table[table["skill_local"] == local].pivot(
                index="alpha_l", columns="alpha_s", values="final_propensity")
            x, y = grid.columns.to_numpy(), grid.index.to_numpy()
            mesh = ax.pcolormesh(x, y, grid.to_numpy(), cmap="viridis", vmin=0, vmax=1,
                                 shading="nearest", rasterized=True)
            ax.contour(x, y, grid.to_numpy(), levels=[0.5], colors="white", linewidths=1.2)
            ax.set(xscale="log", yscale="log",
                   xlabel="reward-seeking skill learnability $\\alpha^S$",
                   title=f"initial skills S={table['skill_rs'].iloc[0]:g}, L={local:g}")
        axes[0].set_ylabel("local skill learnability $\\alpha^L$")
        fig.colorbar(mesh, ax=list(axes), label="final reward-seeking propensity")
        fig.suptitle("One environment: final propensity (white: 0.5)")
    return fig


def homogeneous_curves(table: pd.DataFrame, summary: pd.DataFrame, spec) -> Figure:
    """N identical environments: propensity against N, and N* against the prior."""
    ratio = spec.ratios[len(spec.ratios) // 2]
    with style():
        fig = Figure(figsize=(10, 4), layout="constrained")
        left, right = fig.subplots(1, 2)
        for colour, prior in zip(SERIES, sorted(spec.curve_priors, reverse=True), strict=False):
            rows = table[(table["ratio"] == ratio) & np.isclose(table["prior"], prior)]
            left.plot(rows["n"], rows["mean_propensity"], color=colour, label=f"prior {prior:g}")
            star = summary[(summary["ratio"] == ratio) & np.isclose(summary["prior"], prior)]
            if star["critical_n"].notna().all():
                left.axvline(star["critical_n"].iloc[0], color=colour, linestyle=":", lw=1)
        left.axhline(spec.threshold, color="grey", lw=0.8)
        left.set(xscale="log", xlabel="number of environments N", ylim=(-0.02, 1.02),
                 ylabel="final mean propensity",
                 title=f"propensity against N ($\\alpha^S/\\alpha^L$ = {ratio:g}; dotted: N*)")
        left.legend(loc="upper left")
        for colour, (value, rows) in zip(SERIES, summary.groupby("ratio"), strict=False):
            rows = rows.dropna(subset=["critical_n"]).sort_values("prior")
            slope = _slope_label(rows["prior"], rows["critical_n"])
            label = f"$\\alpha^S/\\alpha^L$ = {value:g}{slope}"
            right.plot(rows["prior"], rows["critical_n"], "o-", color=colour, ms=3, label=label)
        right.set(xscale="log", yscale="log", xlabel="prior propensity p₀",
                  ylabel="critical diversity N*", title="N* against the prior")
        right.legend()
        fig.suptitle(f"Homogeneous coupling (c_z={spec.transfer_z:g}, c_S={spec.transfer_s:g}, "
                     f"c_L={spec.transfer_l:g}; threshold {spec.threshold:g})")
    return fig


def heterogeneous_scaling(summary: pd.DataFrame, spec) -> Figure:
    """N* against the prior per geometry: median and interquartile range over resamples."""
    with style():
        fig = Figure(figsize=(5.5, 4.2), layout="constrained")
        ax = fig.add_subplot()
        for k, (geometry, rows) in enumerate(summary.groupby("geometry", sort=False)):
            rows = rows.sort_values("prior")
            shown = rows.dropna(subset=["median_n"])
            offset = 1.0 + 0.04 * (k - 1)  # side by side, so error bars do not hide each other
            ax.errorbar(shown["prior"] * offset, shown["median_n"],
                        yerr=[shown["median_n"] - shown["q25_n"],
                              shown["q75_n"].fillna(spec.n.high) - shown["median_n"]],
                        fmt="o-", ms=4, capsize=3, color=SERIES[k],
                        label=geometry + _slope_label(shown["prior"], shown["median_n"]))
        ax.set(xscale="log", yscale="log", xlabel="prior propensity p₀",
               ylabel="critical diversity N* (median, IQR)",
               title=f"Heterogeneous coupling: {spec.resamples} resamples per point")
        ax.axhline(spec.n.high, color="grey", lw=0.8, linestyle="--")
        ax.text(ax.get_xlim()[0], spec.n.high, " sweep limit", va="bottom", fontsize=8,
                color="grey")
        ax.legend(title="geometry (log-log slope)")
    return fig


def _slope_label(x, y) -> str:
    """`` (slope -1.02)``: the least-squares slope of log y on log x, if there are points."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2:
        return ""
    slope = np.polyfit(np.log(x), np.log(y), 1)[0]
    return f" (slope {slope:.2f})"


def crosscheck_figure(table: pd.DataFrame, spec) -> Figure:
    """Agent-based final share of the transferable mechanism beside the mean-field
    propensity, both against N (each seed a dot, their mean a line)."""
    abm = table[table["source"] == "agent-based"]
    field = table[table["source"] == "mean-field"].sort_values("n")
    mean = abm.groupby("n")["final"].mean()
    with style():
        fig = Figure(figsize=(9.5, 3.8), layout="constrained")
        left, right = fig.subplots(1, 2, sharey=True)
        jitter = np.random.default_rng(0).uniform(-0.04, 0.04, len(abm))
        left.scatter(abm["n"] * np.exp(jitter), abm["final"], s=12, color=SERIES[0], alpha=0.5,
                     label=f"one seed ({len(spec.seeds)} per N)")
        left.plot(mean.index, mean.to_numpy(), color=SERIES[0], label="mean over seeds")
        left.set(xscale="log", xlabel="number of environments N", ylim=(-0.04, 1.04),
                 ylabel="final share / propensity",
                 title="agent-based: generalist's share against N specialists")
        left.legend(loc="upper left")
        right.plot(field["n"], field["final"], color=SERIES[1])
        right.set(xscale="log", xlabel="number of environments N",
                  title=f"mean field: p (prior {spec.prior:g}, "
                        f"$\\alpha^S/\\alpha^L$ = {spec.ratio:g})")
        for ax in (left, right):
            ax.axhline(spec.threshold, color="grey", lw=0.8)
        fig.suptitle(f"Transferable mechanism against per-environment specialists "
                     f"(sharing {spec.sharing:g}, {spec.steps} steps, $\\gamma$ = {spec.gamma:g})")
    return fig
