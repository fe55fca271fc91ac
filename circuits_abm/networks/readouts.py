"""A trained network's scores as the run tables the agent-based model writes, in its schema,
so that ``classify``, ``figures run`` and every analysis read a neural run unchanged.

The network is one circuit that never dies (share 1, lineage 0).  Its experts are the
mechanisms: their paths (``0``, ``1``, ... or ``g.k`` for the two-level mixture), the gate's
mean probability of reaching each in every environment (``routing``) and each expert's own
reward there (``mechanism_rewards``).  ``population_reward`` and ``dominant_reward`` are
the network's ``R_e``: the retention matrix, scored at every phase end.  There are no
structural costs, so the phase's fitness is the reward on its objective at its end.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import pandas as pd

from circuits_abm.analysis.classification import end_window
from circuits_abm.engine.monitoring import readings_at_the_end
from circuits_abm.engine.scenario import Scenario
from circuits_abm.networks.settings import NeuralSettings
from circuits_abm.networks.tasks import Tasks
from circuits_abm.networks.training import Scores


def kind_of(settings: NeuralSettings) -> str:
    """The network's kind in the records: a router when it has a gate."""
    return "naive" if settings.arch == "mlp" else "router"


def phase_rows(settings: NeuralSettings, tasks: Tasks, scores: Scores) -> pd.DataFrame:
    """The phases table: one row per phase end and environment."""
    paths, structure, kind = settings.paths(), settings.structure(), kind_of(settings)
    router_share = 0.0 if settings.arch == "mlp" else 1.0
    rows = []
    for i, phase in enumerate(tasks.phases):
        weights = phase.weights / phase.weights.sum()
        fitness = float(np.dot(weights, scores.reward[i]))
        for e, name in enumerate(tasks.names):
            reward = float(scores.reward[i, e])
            rows.append({
                "phase": phase.index,
                "start": phase.start,
                "end": phase.end,
                "trained": phase.label,
                "training_weight": float(phase.weights[e]),
                "environment": name,
                "held_out": bool(tasks.held_out[e]),
                "population_reward": reward,
                "dominant_reward": reward,
                "dominant_lineage": 0,
                "dominant_share": 1.0,
                "dominant_variants": 1,
                "dominant_structure": structure,
                "dominant_kind": kind,
                "structure_share": 1.0,
                "routing": {p: round(float(v), 6)
                            for p, v in zip(paths, scores.routing[i, e], strict=True)},
                "mechanism_rewards": {p: round(float(v), 6)
                                      for p, v in zip(paths, scores.expert_reward[i, e],
                                                      strict=True)},
                "router_share": router_share,
                "circuits": 1,
                "phase_mean_fitness": fitness,
                **motivation_fields(tasks, scores, i, e),
            })
    return pd.DataFrame(rows)


def motivation_fields(tasks: Tasks, scores: Scores, phase: int, env: int) -> dict[str, float]:
    """With declared motivations, the columns the agent-based records add: the reward on
    the capability alone, the mean behaviour per motivation, and what sits in quarantine
    (nothing: networks learn by the plain rule)."""
    if not tasks.motivations:
        return {}
    fields = {"population_capability": float(scores.capability[phase, env])}
    for k, name in enumerate(tasks.motivations):
        fields[f"motivation_{name}"] = float(scores.motivation[phase, env, k])
        fields[f"quarantined_{name}"] = 0.0
    return fields


def monitoring(spec: Scenario, phases: pd.DataFrame) -> dict[str, Any]:
    """The summary's ``monitoring`` entry, as an agent-based run writes it under the plain
    rule: the monitored motivation at the last phase end in every environment, its mean
    over training, held-out and evaluation environments, and the capability over the last
    phases.  Nothing is routed, so there is no alarm and no attribution."""
    window = end_window(phases)
    return {
        "rule": "plain", "monitored": spec.monitored, "alarm_step": None, "halted": False,
        "attribution": None, **readings_at_the_end(spec, phases),
        "capability": float(window[~window.held_out].population_capability.mean()),
    }


def timeseries_rows(settings: NeuralSettings, tasks: Tasks, phases: pd.DataFrame) -> pd.DataFrame:
    """The time series: the one circuit at every phase end."""
    fitness = phases.groupby("phase").phase_mean_fitness.first()
    return pd.DataFrame([{
        "step": phase.end,
        "phase": phase.index,
        "environment": phase.label,
        "lineage": 0,
        "parent_lineage": -1,
        "kind": kind_of(settings),
        "structure": settings.structure(),
        "share": 1.0,
        "variants": 1,
        "mean_fitness": float(fitness[phase.index]),
    } for phase in tasks.phases])


def network_summary(settings: NeuralSettings, params: dict) -> dict[str, Any]:
    """What a summary says of the network: the settings, and the final population as one
    circuit (its experts' parameter counts instead of agent-based parameters)."""
    count = int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(params)))
    return {
        "model": {"kind": "neural", **settings.model_dump(), "parameters": count},
        "final_population": [{
            "id": 0, "lineage": 0, "parent_lineage": -1, "born": 0, "share": 1.0,
            "kind": kind_of(settings), "structure": settings.structure(),
            "mechanisms": [{"rule": "gradient descent", "path": p} for p in settings.paths()],
            "sharpness": [],
        }],
    }

