"""The recovery loop against the rules that never stop training (docs/motivations.md,
"The recovery loop").

``scenarios/recovery_loop.toml``: reward seeking starts to pay in two RL environments at
step 1500.  Arms, each on the same derived seeds:

* the scenario under ``plain``, ``block`` and ``route`` with no loop (``route`` discards its
  modules at the end);
* the recovery loop (``monitor.restart_lag``, run by ``circuits_abm.experiments.runs.run``)
  under ``watch`` (plain learning with a monitor-only alarm) and under ``route``, restarting
  ``lag`` steps before the alarm for each of ``LAGS``.

Read at the end: the motivation in the held-out deployment environment (after any discard),
the capability kept, the alarm's step and whether the probe flagged exactly the two
environments that pay.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from circuits_abm.analysis.rates import half_width, wilson
from circuits_abm.engine.loading import load_scenario, override
from circuits_abm.experiments.executors import map_in_processes
from circuits_abm.experiments.runs import run as run_agents
from circuits_abm.experiments.sweep.design import derive_seed

SCENARIO = "recovery_loop"
LAGS = (0, 300, 1500)
LOOPS = ("watch", "route")
BASELINES = ("plain", "block", "route")


def arm_run(rule: str, lag: int | None, seed: int) -> dict[str, Any]:
    """The scenario under ``rule``, with the recovery loop restarting ``lag`` steps before
    the alarm, or (``lag`` None) with no loop and no alarm."""
    changes: dict[str, Any] = {"monitor.rule": rule, "monitor.restart_lag": lag}
    if lag is None:
        changes["monitor.alarm"] = None
    result = run_agents(override(load_scenario(SCENARIO), changes), seed=seed, progress=False)
    monitoring = result.summary["monitoring"]
    recovery = monitoring.get("recovery", {})
    return {"rule": rule, "lag": lag, "seed": seed,
            "held_out": float(monitoring["motivation"]["held_out"]),
            "capability": float(monitoring["capability_final"]),
            "alarm_step": recovery.get("alarm_step"),
            "flagged": ",".join(recovery.get("flagged", [])),
            "restart_step": recovery.get("restart_step")}


def experiment(seeds: int = 20, workers: int = 1, root_seed: int = 2026,
               progress: bool = True) -> pd.DataFrame:
    """Every arm on the same derived seeds: a row per run."""
    seed_list = [derive_seed(root_seed, {"experiment": "recovery"}, r) for r in range(seeds)]
    arms = [(rule, None) for rule in BASELINES] + [(rule, lag) for rule in LOOPS
                                                   for lag in LAGS]
    return pd.DataFrame(map_in_processes(arm_run, [(*arm, s) for arm in arms
                                                   for s in seed_list],
                                         workers, "recovery loop", "run", progress))


EXACT = "rl_hack_code,rl_hack_math"  # what the probe should flag: the environments that pay


def table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per arm: mean held-out motivation and capability with 95% half-widths, the alarm's
    median step, and how often the probe flagged exactly the paying environments."""
    rows = []
    for (rule, lag), arm in runs.groupby(["rule", "lag"], dropna=False, sort=False):
        n = len(arm)
        row: dict[str, Any] = {"rule": rule, "lag": lag, "runs": n}
        for column in ("held_out", "capability"):
            row[column] = arm[column].mean()
            row[f"{column}_half"] = half_width(arm[column])
        if not pd.isna(lag):
            row["alarm_step"] = arm.alarm_step.median()
            row["exact"] = int((arm.flagged == EXACT).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(runs: pd.DataFrame) -> str:
    """The table for docs/motivations.md."""
    lines = [f"`scenarios/recovery_loop.toml`, {runs.seed.nunique()} seeds per arm. Held-out "
             "motivation after any discard, and capability, at the end (mean ± 95% interval).",
             "", "| arm | alarm step (median) | probe flagged the two paying environments "
             "| held-out motivation | capability |", "|---|---|---|---|---|"]
    for r in table(runs).itertuples():
        if pd.isna(r.lag):
            arm, alarm, exact = f"{r.rule}, no loop", "", ""
        else:
            interval = wilson(int(r.exact), r.runs)
            arm = f"{r.rule} + recovery, restart {int(r.lag)} steps before the alarm"
            alarm = f"{r.alarm_step:.0f}"
            exact = f"{int(r.exact)}/{r.runs} [{interval.low:.2f}, {interval.high:.2f}]"
        lines.append(f"| {arm} | {alarm} | {exact} | {r.held_out:.3f} ± {r.held_out_half:.3f} "
                     f"| {r.capability:.4f} ± {r.capability_half:.4f} |")
    return "\n".join(lines)
