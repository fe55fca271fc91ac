"""Which environments teach the motivation: the monitor's flows against the probe, in the
quarantine scenario and two variants where the population specialises or the hack pays
little (docs/motivations.md, "Attribution that survives specialisation").

Two ways to name the environments to fix, read at the end of each run:

* **flows** (``circuits_abm.engine.monitoring.attribution``): the environments whose phases
  pushed the monitored direction up beyond their own noise.  Once a specialist has learned
  its hack, or when the population already carries more of the behaviour than an
  environment pays, the pushes stop or turn negative, and the flows miss it;
* **probe** (``circuits_abm.engine.monitoring.probe``): each environment's reward gradient
  along the monitored direction at the parameters with that component removed.

Each in the scenarios of ``VARIANTS``, under ``route`` and under ``watch`` (plain learning
with the monitor only watching), with the monitor as ``MONITORS`` sets it: at 0 degrees
(where the probe reads the payoff exactly, an identity), at 20 and 45 degrees, and watching
two of three pathways.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from circuits_abm.analysis.rates import wilson
from circuits_abm.engine.loading import load_scenario, override
from circuits_abm.experiments.executors import map_in_processes
from circuits_abm.experiments.runs import run as run_agents
from circuits_abm.experiments.sweep.design import derive_seed

SCENARIO = "quarantine"
VARIANTS: dict[str, dict[str, Any]] = {
    "canonical": {},
    "specialised (sharing 0.5, distinguishability 0.5)": {
        "geometry.sharing": 0.5, "geometry.distinguishability": 0.5},
    "weakly hackable (rl_hack_math pays 0.1)": {
        "environments.2.motivations": {"reward_seeking": 0.1}},
}
MONITORS: dict[str, dict[str, Any]] = {
    "0°": {},
    "20°": {"monitor.angle": 20.0},
    "45°": {"monitor.angle": 45.0},
    "two of three pathways watched": {"motivations.0.gains": [1.0, 1.0, 0.3],
                                      "monitor.watched": 2},
}
RULES = ("route", "watch")
METHODS = ("flows", "probe")


def attribution_run(variant: str, monitor: str, rule: str, seed: int) -> list[dict[str, Any]]:
    """One run: a row per method with its precision and recall."""
    spec = override(load_scenario(SCENARIO),
                    {**VARIANTS[variant], **MONITORS[monitor], "monitor.rule": rule})
    monitoring = run_agents(spec, seed=seed, progress=False).summary["monitoring"]
    return [{"variant": variant, "monitor": monitor, "rule": rule, "seed": seed,
             "method": method, "precision": found["precision"], "recall": found["recall"],
             "flagged": ",".join(found["flagged"])}
            for method, found in (("flows", monitoring["attribution"]),
                                  ("probe", monitoring["probe"]))]


def experiment(seeds: int = 20, workers: int = 1, root_seed: int = 2026,
               progress: bool = True) -> pd.DataFrame:
    """Every variant, monitor and rule on the same derived seeds: a row per run and method."""
    seed_list = [derive_seed(root_seed, {"experiment": "attribution"}, r) for r in range(seeds)]
    jobs = [(variant, monitor, rule, s) for variant in VARIANTS for monitor in MONITORS
            for rule in RULES for s in seed_list]
    done = map_in_processes(attribution_run, jobs, workers, "attribution", "run", progress)
    return pd.DataFrame([row for rows in done for row in rows])


def table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per variant, monitor, rule and method: mean precision and recall over runs (a run
    that flags nothing counts precision 0), and the runs where both are at least 0.9."""
    out = []
    for keys, group in rows.groupby(["variant", "monitor", "rule", "method"], sort=False):
        precision = group.precision.fillna(0.0)
        recall = group.recall.fillna(0.0)
        good = int(((precision >= 0.9) & (recall >= 0.9)).sum())
        interval = wilson(good, len(group))
        out.append(dict(zip(["variant", "monitor", "rule", "method"], keys, strict=True))
                   | {"precision": precision.mean(), "recall": recall.mean(), "good": good,
                      "runs": len(group), "low": interval.low, "high": interval.high})
    return pd.DataFrame(out)


def markdown(rows: pd.DataFrame) -> str:
    """The table for docs/motivations.md."""
    lines = [f"{rows.seed.nunique()} seeds per row; the last column counts runs with "
             "precision and recall both at least 0.9 (a run that flags nothing counts "
             "precision 0).", "",
             "| scenario | monitor | rule | method | precision | recall | runs ≥ 0.9 |",
             "|---|---|---|---|---|---|---|"]
    for r in table(rows).itertuples():
        lines.append(f"| {r.variant} | {r.monitor} | {r.rule} | {r.method} | "
                     f"{r.precision:.2f} | {r.recall:.2f} | {r.good}/{r.runs} "
                     f"[{r.low:.2f}, {r.high:.2f}] |")
    return "\n".join(lines)


def worst(rows: pd.DataFrame, method: str) -> float:
    """The smallest mean of precision and recall over every row of ``method``."""
    found = table(rows)
    mine = found[found.method == method]
    return float(np.minimum(mine.precision, mine.recall).min())
