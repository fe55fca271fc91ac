"""A monitor that errs both ways (docs/motivations.md, "A noisy monitor").

The quarantine scenario under ``block`` and ``route`` with ``monitor.noise`` at each of
``NOISES``: every phase the monitor reads its direction afresh with an error, so it catches
some skill (false positives) and misses some behaviour (false negatives).  Against plain
learning on the same derived seeds: the motivation left in the held-out deployment
environment after the discard, and the capability lost.

Derived before the runs.  One reading keeps ``1 / (1 + noise^2)`` of the behaviour's
direction (``circuits_abm.engine.monitoring.noisy_direction``), which suggests that a
monitor that routes would leave ``noise^2 / (1 + noise^2)`` of the behaviour.  A block
whose direction moves each phase has plain learning's optimum as its only fixed point (the
only point every projection leaves in place), so its leak should tend to plain learning's
with training, at any noise.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from circuits_abm.analysis.rates import half_width
from circuits_abm.experiments.executors import map_in_processes
from circuits_abm.experiments.module_capacity import quarantine_readings
from circuits_abm.experiments.sweep.design import derive_seed

NOISES = (0.25, 0.5, 1.0, 2.0)
RULES = ("block", "route")


def noise_run(rule: str, noise: float, seed: int) -> dict[str, Any]:
    """One run under ``rule`` with the monitor's ``noise`` (``quarantine_readings``)."""
    return {"rule": rule, "noise": noise, "seed": seed,
            **quarantine_readings({"monitor.rule": rule, "monitor.noise": noise}, seed)}


def experiment(seeds: int = 20, workers: int = 1, root_seed: int = 2026,
               progress: bool = True) -> pd.DataFrame:
    """Plain learning, and block and route at every noise, on the same derived seeds."""
    seed_list = [derive_seed(root_seed, {"experiment": "monitor noise"}, r) for r in range(seeds)]
    jobs = [("plain", 0.0, s) for s in seed_list]
    jobs += [(rule, noise, s) for rule in RULES for noise in NOISES for s in seed_list]
    return pd.DataFrame(map_in_processes(noise_run, jobs, workers, "monitor noise", "run",
                                         progress))


def table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per rule and noise: the leak over plain learning's (ratio of means) beside the
    per-reading prediction, and the capability lost against plain learning on the same
    seed (mean, 95% half-width, and the runs that lose more than 0.02)."""
    plain = runs[runs.rule == "plain"].set_index("seed")
    rows = []
    for (rule, noise), arm in runs[runs.rule != "plain"].groupby(["rule", "noise"], sort=False):
        arm = arm.set_index("seed")
        lost = plain.capability.loc[arm.index] - arm.capability
        rows.append({"rule": rule, "noise": noise, "leak": arm.held_out.mean(),
                     "ratio": arm.held_out.mean() / plain.held_out.mean(),
                     "predicted": noise**2 / (1 + noise**2) if rule == "route" else 1.0,
                     "lost": lost.mean(), "lost_half": half_width(lost),
                     "losing": int((lost > 0.02).sum()), "runs": len(arm)})
    return pd.DataFrame(rows)


def markdown(runs: pd.DataFrame) -> str:
    """The table for docs/motivations.md."""
    plain = runs[runs.rule == "plain"]
    lines = [f"Quarantine scenario, {plain.seed.nunique()} seeds per point; plain learning "
             f"leaves {plain.held_out.mean():.3f} in deployment and keeps capability "
             f"{plain.capability.mean():.3f}. Predicted leak: route `noise²/(1 + noise²)`, "
             "block 1 (both relative to plain learning).", "",
             "| rule | noise | held-out motivation | leak / plain | predicted | capability lost "
             "| runs losing > 0.02 |", "|---|---|---|---|---|---|---|"]
    for r in table(runs).itertuples():
        lines.append(f"| {r.rule} | {r.noise:g} | {r.leak:.3f} | {r.ratio:.2f} | "
                     f"{r.predicted:.2f} | {r.lost:.3f} ± {r.lost_half:.3f} | "
                     f"{r.losing}/{r.runs} |")
    return "\n".join(lines)
