"""A cramped quarantine module (docs/motivations.md, "Module capacity").

The quarantine scenario under ``route`` with the module's norm capped at each of
``CAPACITIES`` (``monitor.capacity``), on derived seeds: the motivation left in the
held-out deployment environment after the discard, and the capability kept.  What a full
module cannot take is learned by the mechanism's own parameters, so a cap lets part of the
behaviour through.

The bound, derived by hand before the runs: the parameters and the module together learn
like plain learning, and the module can hold at most ``c`` along the monitored direction
``u``.  A behaviour direction with ``g . u = sqrt 2`` (two pathways of gain 1, watched at
0 degrees) then leaves at least ``plain - sqrt(2) c`` in the parameters.  It is a lower
bound: a module that an opposite push has emptied refills from the next paying phase while
the overflow already learned stays where it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from circuits_abm.analysis.rates import half_width
from circuits_abm.engine.loading import load_scenario, override
from circuits_abm.experiments.executors import map_in_processes
from circuits_abm.experiments.runs import run as run_agents
from circuits_abm.experiments.sweep.design import derive_seed

SCENARIO = "quarantine"
CAPACITIES = (0.02, 0.05, 0.1, 0.2, 0.4, None)  # None: no cap; plain learning is run too


def quarantine_readings(changes: dict[str, Any], seed: int) -> dict[str, float]:
    """One run of the quarantine scenario with ``changes``: the held-out motivation after
    the discard, and the capability at the end."""
    result = run_agents(override(load_scenario(SCENARIO), changes), seed=seed, progress=False)
    monitoring = result.summary["monitoring"]
    return {"held_out": float(monitoring["motivation"]["held_out"]),
            "capability": float(monitoring["capability_final"])}


def capacity_run(rule: str, capacity: float | None, seed: int) -> dict[str, Any]:
    """One run under ``rule`` with the module capped at ``capacity`` (``quarantine_readings``)."""
    changes: dict[str, Any] = {"monitor.rule": rule}
    if capacity is not None:
        changes["monitor.capacity"] = capacity
    return {"rule": rule, "capacity": capacity, "seed": seed,
            **quarantine_readings(changes, seed)}


def experiment(seeds: int = 20, workers: int = 1, root_seed: int = 2026,
               progress: bool = True) -> pd.DataFrame:
    """Plain learning and ``route`` at every capacity, on the same derived seeds: a row
    per run."""
    seed_list = [derive_seed(root_seed, {"experiment": "module capacity"}, r)
                 for r in range(seeds)]
    jobs = [("plain", None, s) for s in seed_list]
    jobs += [("route", capacity, s) for capacity in CAPACITIES for s in seed_list]
    return pd.DataFrame(map_in_processes(capacity_run, jobs, workers, "module capacity", "run",
                                         progress))


def overflow_bound(plain: float, capacity: float | None) -> float:
    """The least behaviour a module of ``capacity`` lets through: ``plain - sqrt(2) c``,
    not below 0 (0 without a cap)."""
    return 0.0 if capacity is None else max(0.0, plain - np.sqrt(2.0) * capacity)


def table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per capacity: the held-out motivation's mean and 95% half-width over seeds, the
    bound from plain learning's mean, the runs at or above their own seed's bound (plain
    learning on the same seed), and the capability kept."""
    plain = runs[runs.rule == "plain"].set_index("seed").held_out
    routed = runs[runs.rule == "route"]
    rows = []
    for capacity in CAPACITIES:
        mine = (routed[routed.capacity.isna()] if capacity is None
                else routed[routed.capacity == capacity]).set_index("seed")
        paired = plain.loc[mine.index].map(lambda p, c=capacity: overflow_bound(p, c))
        rows.append({"capacity": capacity, "held_out": mine.held_out.mean(),
                     "half_width": half_width(mine.held_out),
                     "bound": overflow_bound(plain.mean(), capacity),
                     "above_bound": int((mine.held_out >= paired - 1e-9).sum()),
                     "runs": len(mine), "capability": mine.capability.mean()})
    return pd.DataFrame(rows)


def markdown(runs: pd.DataFrame) -> str:
    """The table for docs/motivations.md."""
    plain = runs[runs.rule == "plain"]
    lines = [f"Quarantine scenario under `route` at 0°, {plain.seed.nunique()} seeds per "
             f"capacity; plain learning leaves {plain.held_out.mean():.3f} and keeps "
             f"capability {plain.capability.mean():.4f}.", "",
             "| capacity | held-out motivation after the discard | bound plain − √2·c | "
             "runs at or above their seed's bound | capability |", "|---|---|---|---|---|"]
    for r in table(runs).itertuples():
        capacity = "no cap" if pd.isna(r.capacity) else f"{r.capacity:g}"
        lines.append(f"| {capacity} | {r.held_out:.3f} ± {r.half_width:.3f} | {r.bound:.3f} | "
                     f"{r.above_bound}/{r.runs} | {r.capability:.4f} |")
    return "\n".join(lines)
