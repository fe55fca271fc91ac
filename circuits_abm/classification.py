"""Metrics that read a run's trajectory (its ``phases`` table), never the scenario's parameters.

* **routing information**: mutual information between the environment and the child a
  router sends it to, divided by the log of the number of environments (1 = every
  environment gets its own child for sure, 0 = routing ignores the environment);
* **recency bias**: the dominant circuit's reward on the objective just trained minus its
  mean reward on the other training objectives, divided by 1, the spread between a
  specialist at its best (reward 1/2 on unit-norm demands) and the same specialist on an
  orthogonal objective (-1/2).  About 0 for a generalist or a working conditional
  policy; near 1 for a circuit re-tuned to whatever it saw last (strategy churn).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

RECENCY_SCALE = 1.0


def end_window(phases: pd.DataFrame, fraction: float = 0.25) -> pd.DataFrame:
    """The rows of the last ``fraction`` of phases (the window regimes are read from)."""
    last = phases.phase.max()
    first = last - max(1, int(round(fraction * (last + 1)))) + 1
    return phases[phases.phase >= first]


def routing_information(routing: list[dict[str, float]], depth: int | None = None) -> float:
    """Normalised MI between environments (rows, equally likely) and routed subtrees.

    ``routing`` holds, per environment, the probability of each mechanism (by tree path,
    e.g. ``"1.0"``); mechanisms are grouped into subtrees by the first ``depth`` steps of
    their path (None: each mechanism on its own, i.e. routing through the whole tree).
    A lone mechanism (path ``root``) carries no routing information.
    """
    if len(routing) < 2:
        return 0.0
    groups = sorted({_prefix(path, depth) for row in routing for path in row})
    table = np.array(
        [
            [sum(p for path, p in row.items() if _prefix(path, depth) == g) for g in groups]
            for row in routing
        ]
    )
    joint = table / len(routing)
    child = joint.sum(axis=0)
    env = joint.sum(axis=1)
    mask = joint > 0
    outer = env[:, None] * child[None, :]
    info = float(np.sum(joint[mask] * np.log(joint[mask] / outer[mask])))
    return max(0.0, info / np.log(len(routing)))


def _prefix(path: str, depth: int | None) -> str:
    return path if depth is None else ".".join(path.split(".")[:depth])


def final_routing_information(phases: pd.DataFrame) -> float:
    """Whole-tree routing information of the dominant circuit at the last phase (training envs)."""
    last = phases[(phases.phase == phases.phase.max()) & ~phases.held_out]
    return routing_information([json.loads(r) for r in last.routing])


def recency_bias(phases: pd.DataFrame) -> float:
    """Mean recency bias of the dominant circuit over the phases in ``phases``."""
    training = phases[~phases.held_out]
    values = []
    for _, rows in training.groupby("phase"):
        current = rows[rows.training_weight > 0]
        others = rows[rows.training_weight == 0]
        if len(current) and len(others):
            values.append(current.dominant_reward.mean() - others.dominant_reward.mean())
    return float(np.mean(values)) / RECENCY_SCALE if values else 0.0
