"""Gradient routing in a network beside the agent-based model (docs/neural.md, experiment c).

Two parts, each over derived seeds:

* **The monitor's angle.** The quarantine scenario trained into a network
  (``circuits_abm.networks.gradient_routing``) and run by the agent-based model under the
  rules ``plain``, ``block`` and ``route`` at each angle of ``ANGLES``: the motivation left
  in the held-out deployment environment after training (after the adapter or quarantine
  module is discarded), early in training and at the end, and the capability kept.  Every
  rule and angle runs on the same seeds, so they compare paired.
* **Absorption.** Routing by labelled data: a share ``labelled`` of the examples from the
  environments that pay for the motivation goes into the adapter, the rest into the first
  layer.  The share of the behaviour that the discard removes, against plain learning on
  the same seed, is compared with the share of examples labelled.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from circuits_abm.analysis.rates import half_width, wilson
from circuits_abm.engine.loading import load_scenario, override
from circuits_abm.experiments.executors import map_in_processes
from circuits_abm.experiments.runs import run as run_agents
from circuits_abm.experiments.sweep.design import derive_seed

SCENARIO = "quarantine"
ANGLES = (0.0, 10.0, 20.0, 30.0, 45.0, 90.0)
RULES = ("plain", "block", "route")
STEPS = 3000
# Readings every 300 steps: a whole number of the scenario's 12-step cycle through its four
# training environments, so every reading follows the same environment.
CHECKPOINTS = 10
LABELLED = (0.1, 0.25, 0.5, 1.0)
DISTINGUISHABILITIES = (0.5, 1.0)


def network_angle_run(rule: str, angle: float, seed: int) -> dict[str, Any]:
    """The network under ``rule`` with the monitor at ``angle``: the deployment
    environment's behaviour change after the discard, at the first reading and at the end,
    and the capability kept in the training environments."""
    from circuits_abm.networks import gradient_routing as gr  # noqa: PLC0415 (loads JAX)

    tasks = gr.routing_tasks(load_scenario(SCENARIO), STEPS, np.random.default_rng(seed))
    readings = gr.train(tasks, rule, angle, seed, checkpoints=CHECKPOINTS)
    deployment = tasks.held_out
    return {"learner": "network", "rule": rule, "angle": angle, "seed": seed,
            "held_out_early": float(readings.behaviour_discarded[0, deployment].mean()),
            "held_out": float(readings.behaviour_discarded[-1, deployment].mean()),
            "capability": float(readings.capability_discarded[-1, ~deployment].mean())}


def agents_angle_run(rule: str, angle: float, seed: int) -> dict[str, Any]:
    """The agent-based model under ``rule`` at ``angle``, read the same way: the held-out
    motivation early (the first phase end at or after the network's first reading) and
    at the end (after the discard), and the capability."""
    spec = override(load_scenario(SCENARIO), {"monitor.rule": rule, "monitor.angle": angle})
    result = run_agents(spec, seed=seed, steps=STEPS, progress=False)
    column = f"motivation_{spec.monitored}"
    held = result.phases[result.phases.held_out]
    early = held[held.end >= STEPS // CHECKPOINTS].groupby("phase")[column].mean()
    monitoring = result.summary["monitoring"]
    return {"learner": "agent-based model", "rule": rule, "angle": angle, "seed": seed,
            "held_out_early": float(early.iloc[0]),
            "held_out": float(monitoring["motivation"]["held_out"]),
            "capability": float(monitoring["capability"])}


def absorption_runs(distinguishability: float, seed: int) -> list[dict[str, Any]]:
    """Plain learning and routing by data at every share of ``LABELLED``, on one seed of the
    quarantine scenario at ``distinguishability``: the behaviour change in the paying
    environments and in deployment, with the adapter and after its discard."""
    from circuits_abm.networks import gradient_routing as gr  # noqa: PLC0415 (loads JAX)

    spec = override(load_scenario(SCENARIO),
                    {"geometry.distinguishability": distinguishability})
    tasks = gr.routing_tasks(spec, STEPS, np.random.default_rng(seed))
    paying = tasks.pays > 0
    plain = gr.train(tasks, "plain", 0.0, seed, checkpoints=CHECKPOINTS)
    rows = []
    for share in LABELLED:
        routed = gr.train(tasks, "data", 0.0, seed, labelled=share, checkpoints=CHECKPOINTS)
        rows.append({
            "distinguishability": distinguishability, "labelled": share, "seed": seed,
            "plain_paying": float(plain.behaviour[-1, paying].mean()),
            "plain_deployment": float(plain.behaviour[-1, tasks.held_out].mean()),
            "paying": float(routed.behaviour[-1, paying].mean()),
            "paying_discarded": float(routed.behaviour_discarded[-1, paying].mean()),
            "deployment_discarded": float(routed.behaviour_discarded[-1, tasks.held_out].mean()),
        })
    return rows


def angle_tasks(seeds: int, root_seed: int = 2026) -> list[tuple[str, float, int]]:
    """``(rule, angle, seed)`` for every rule, angle and derived seed.  One seed list serves
    every rule and angle: runs compare paired, and plain learning (which ignores the
    monitor) is the same run at every angle."""
    return [(rule, angle, derive_seed(root_seed, {"experiment": "monitor angle"}, r))
            for rule in RULES for angle in ANGLES for r in range(seeds)]


def experiment(seeds: int = 20, workers: int = 1, root_seed: int = 2026,
               progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both parts over ``seeds`` derived seeds per point; returns the angle table (a row
    per learner, rule, angle and seed) and the absorption table (a row per
    distinguishability, labelled share and seed)."""
    tasks = angle_tasks(seeds, root_seed)
    network = map_in_processes(network_angle_run, tasks, workers, "network, monitor angle",
                               "run", progress)
    agents = map_in_processes(agents_angle_run, tasks, workers, "agent-based, monitor angle",
                              "run", progress)
    absorbed = map_in_processes(
        absorption_runs, [(d, derive_seed(root_seed, {"distinguishability": d}, r))
                          for d in DISTINGUISHABILITIES for r in range(seeds)],
        workers, "network, absorption", "seed", progress)
    angles = pd.DataFrame(network + agents)
    absorption = pd.DataFrame([row for rows in absorbed for row in rows])
    # Per seed only where plain learning's behaviour is far from 0 (it is, in the paying
    # environments); the spread to deployment can be near 0, so it is compared as means.
    absorption["removed"] = 1 - absorption.paying_discarded / absorption.plain_paying
    return angles, absorption


def first_order_leak(plain: float, angle: float) -> float:
    """The leak that a linear, one-step argument predicts for ``block`` and ``route``: the
    behaviour's gradient keeps the part ``sin^2(angle)`` of itself along the behaviour
    once its part along the monitor is removed, so a learner that stops when the reward gap
    closes leaks ``plain * sin^2(angle)``."""
    return plain * float(np.sin(np.radians(angle)) ** 2)


def _paired(angles: pd.DataFrame, learner: str, angle: float) -> pd.DataFrame:
    """The learner's runs at one angle, a row per seed and a column per rule."""
    rows = angles[(angles.learner == learner) & (angles.angle == angle)]
    return rows.pivot_table(index="seed", columns="rule", values="held_out")


def summary(angles: pd.DataFrame, absorption: pd.DataFrame) -> dict[str, Any]:
    """The counted claims: ``angle_claims`` per learner, and, for the network, how often
    the discard removes more of the behaviour than the share of examples labelled
    (absorption), per distinguishability and share."""
    return {
        **angle_claims(angles),
        "absorption": {
            f"d={d:g}, labelled={share:g}": wilson(int((rows.removed > share).sum()),
                                                   len(rows)).text()
            for (d, share), rows in absorption.groupby(["distinguishability", "labelled"])
        },
    }


def angle_claims(angles: pd.DataFrame) -> dict[str, Any]:
    """Per learner: how often blocking leaks more than routing (paired by seed, at 10 to 30
    degrees), and how often the held-out motivation grows from the first reading to the end
    under each rule (the evasion that training teaches)."""
    found: dict[str, Any] = {}
    for learner in dict.fromkeys(angles.learner):
        mine = angles[angles.learner == learner]
        pairs = pd.concat([_paired(angles, learner, a) for a in (10.0, 20.0, 30.0)])
        grows = {}
        for rule in ("block", "route"):
            rows = mine[(mine.rule == rule) & mine.angle.between(10.0, 30.0)]
            grows[rule] = wilson(int((rows.held_out > rows.held_out_early).sum()),
                                 len(rows)).text()
        found[learner] = {
            "block_leaks_more": wilson(int((pairs.block > pairs.route).sum()),
                                       len(pairs)).text(),
            "leak_grows": grows,
        }
    return found


def _cell(values: pd.Series) -> str:
    """Mean ± the half-width of its 95% interval."""
    return f"{values.mean():.3f} ± {half_width(values):.3f}"


def markdown(angles: pd.DataFrame, absorption: pd.DataFrame) -> str:
    """The measured tables (means over seeds with 95% intervals) and the counted claims of
    ``summary``."""
    seeds = int(angles.groupby(["learner", "rule", "angle"]).size().min())
    lines = [f"Held-out motivation after training (after the discard), {seeds} seeds per "
             "point; in brackets the first-order prediction `plain × sin²(angle)`.", "",
             "| angle | learner | plain | block | route | capability kept, route − plain |",
             "|---|---|---|---|---|---|"]
    for (angle, learner), rows in angles.groupby(["angle", "learner"], sort=True):
        by_rule = {rule: rows[rows.rule == rule].set_index("seed") for rule in RULES}
        plain = by_rule["plain"].held_out.mean()
        guess = f" ({first_order_leak(plain, angle):.3f})"
        kept = by_rule["route"].capability - by_rule["plain"].capability
        lines.append(f"| {angle:g}° | {learner} | {_cell(by_rule['plain'].held_out)} | "
                     f"{_cell(by_rule['block'].held_out)}{guess} | "
                     f"{_cell(by_rule['route'].held_out)}{guess} | {_cell(kept)} |")
    lines += ["", f"Absorption in the network ({seeds} seeds per point): the share of plain "
              "learning's behaviour in the paying environments that the discard removes "
              "(1 = all of it; the null of equal learning speeds is the labelled share), and "
              "the behaviour in deployment under plain learning and after the discard.", "",
              "| distinguishability | labelled | removed (paying) | deployment, plain | "
              "deployment, routed |", "|---|---|---|---|---|"]
    for (d, share), rows in absorption.groupby(["distinguishability", "labelled"]):
        lines.append(f"| {d:g} | {share:g} | {_cell(rows.removed)} | "
                     f"{_cell(rows.plain_deployment)} | {_cell(rows.deployment_discarded)} |")
    found = summary(angles, absorption)
    for learner in dict.fromkeys(angles.learner):
        claims = found[learner]
        lines += ["", f"{learner[0].upper()}{learner[1:]}: blocking leaks more than routing "
                  f"(paired by seed, 10° to 30°) in {claims['block_leaks_more']} of the runs; "
                  f"the leak grows from the first reading to the end in "
                  f"{claims['leak_grows']['block']} of the runs under block and "
                  f"{claims['leak_grows']['route']} under route."]
    cells = "; ".join(f"{key}: {value}" for key, value in found["absorption"].items())
    lines += ["", f"The discard removes more than the labelled share in: {cells}."]
    return "\n".join(lines)
