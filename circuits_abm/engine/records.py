"""Records of a run: a per-lineage time series and a per-phase retention table.

* ``timeseries``: one row per (record step, lineage) — its share, kind, structure, number of
  near-identical variants — plus the population's mean fitness.  Recorded at every phase
  end by default (cheap), or every N steps.
* ``phases``: one row per (phase, environment) at the end of every phase — the population's
  reward in that environment *as if it were presented now* (the retention matrix, held-out
  environments included), the dominant lineage, its structure and reward, and its routing
  table: for each of its mechanisms (by tree path), the probability of being routed to in
  that environment, and that mechanism's own reward there.  ``structure_share`` is the
  total share of all circuits with the dominant lineage's structure (lineages that
  converge on the same structure count together there), ``router_share`` that of all
  circuits whose root is a router.  With declared motivations, ``motivation_<name>`` is the
  population's share-weighted, routed component of the mechanisms' parameters along that
  motivation in each environment (what stays after a discard), and ``quarantined_<name>``
  the same for the quarantine modules.
* ``quarantine``: one row per phase with declared motivations: what the phase trained, what
  the monitor saw (``routed``: the share-weighted component of every update along the
  monitored direction, summed over the phase's steps; positive when training pushed toward
  the motivation), and the share-weighted norm of the quarantine modules at the phase's end.
  ``population_capability`` in the phases table is the population's reward on the
  capability part of the demands alone.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from circuits_abm.engine import learning, linalg

if TYPE_CHECKING:
    from circuits_abm.engine.model import CircuitsModel
    from circuits_abm.engine.schedule import Phase


def lineage_table(model: CircuitsModel) -> list[dict]:
    """Shares aggregated by lineage, largest first, each with its largest circuit's index."""
    lineages: dict[int, dict] = {}
    shares = model.shares.tolist()
    for i, (circuit, share) in enumerate(zip(model.circuits, shares, strict=True)):
        entry = lineages.get(circuit.lineage)
        if entry is None:
            lineages[circuit.lineage] = {
                "lineage": circuit.lineage,
                "share": share,
                "variants": 1,
                "representative": i,
            }
        else:
            entry["share"] += share
            entry["variants"] += 1
            if share > shares[entry["representative"]]:
                entry["representative"] = i
    return sorted(lineages.values(), key=lambda e: (-e["share"], e["lineage"]))


def evaluate_all(model: CircuitsModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Path probabilities, mechanism rewards and subtree values in *every* environment."""
    envs = model.environments
    _, path, rewards, values = learning.evaluate(model.layout, envs.demands, envs.cues,
                                                 envs.metric, envs.relevance)
    return path, rewards, values


def routing_table(model: CircuitsModel, circuit: int, path: np.ndarray, rewards: np.ndarray):
    """Per environment: {mechanism path: routed probability} and {mechanism path: reward},
    each rounded to 6 decimals and ordered by path."""
    layout = model.layout
    sorted_names, order = model.circuits[circuit].mechanisms_by_path
    leaves = layout.leaves_of(circuit)
    n = len(order)
    both = np.round(np.concatenate([path[layout.leaf_rows[leaves]][order],
                                    rewards[leaves][order]]), 6)
    routed, reward = both[:n].T.tolist(), both[n:].T.tolist()
    return [
        (dict(zip(sorted_names, routed_e, strict=True)),
         dict(zip(sorted_names, reward_e, strict=True)))
        for routed_e, reward_e in zip(routed, reward, strict=True)
    ]


class Recorder:
    """Collects rows during a run; ``tables`` turns them into DataFrames."""

    def __init__(self, model: CircuitsModel):
        self.model = model
        self.every = model.spec.records.every
        self.series_rows: list[dict] = []
        self.phase_rows: list[dict] = []
        self.quarantine_rows: list[dict] = []
        self._fitness_sum = 0.0
        self._fitness_steps = 0
        self._routed = 0.0

    def add_steps(self, mean_fitness: list[float], routed: list[float]) -> None:
        """Accumulate the mean fitness and monitored mass of steps that ended with nothing
        to record (a compiled stretch's steps before its last), in step order."""
        for fitness, mass in zip(mean_fitness, routed, strict=True):
            self._fitness_sum += fitness
            self._routed += mass
        self._fitness_steps += len(mean_fitness)

    def after_step(self, t: int, phase: Phase) -> None:
        """Accumulate this step's mean fitness, and record when a phase ends (or every N steps)."""
        model = self.model
        mean_fitness = model.mean_fitness
        self._fitness_sum += mean_fitness
        self._fitness_steps += 1
        self._routed += model.routed_mass
        phase_end = t == phase.end - 1
        if model.halted and not phase_end:  # an alarm stopped the run: keep what it saw
            phase, phase_end = replace(phase, length=t + 1 - phase.start), True
        if (self.every == "phase" and phase_end) or (
            self.every != "phase" and (t + 1) % self.every == 0
        ):
            self.record_series(t, phase, mean_fitness)
        if phase_end:
            self.record_phase(phase)
            if model.environments.motivations:
                self.record_quarantine(phase)

    def record_series(self, t: int, phase: Phase, mean_fitness: float) -> None:
        """One timeseries row per lineage alive at step ``t``."""
        model = self.model
        for entry in model.lineages():
            rep = model.circuits[entry["representative"]]
            self.series_rows.append(
                {
                    "step": t + 1,
                    "phase": phase.index,
                    "environment": phase.label,
                    "lineage": entry["lineage"],
                    "parent_lineage": rep.parent_lineage if rep.parent_lineage is not None else -1,
                    "kind": rep.kind,
                    "structure": rep.structure,
                    "share": entry["share"],
                    "variants": entry["variants"],
                    "mean_fitness": mean_fitness,
                }
            )

    def record_phase(self, phase: Phase) -> None:
        """One phases row per environment at the end of ``phase``: rewards, the dominant
        structure and its routing."""
        model = self.model
        envs = model.environments
        path, rewards, values = model.evaluation()
        circuit_values = values[: model.layout.n_circuits]
        population = linalg.weighted_rows(model.shares, circuit_values)
        dominant = model.lineages()[0]
        rep_index = dominant["representative"]
        rep = model.circuits[rep_index]
        tables = routing_table(model, rep_index, path, rewards)
        router_share = model.router_share
        structure_share = 0.0  # summed in circuit order, one float at a time
        for share, circuit in zip(model.shares.tolist(), model.circuits, strict=True):
            if circuit.structure == rep.structure:
                structure_share += share
        phase_fitness = self._fitness_sum / max(self._fitness_steps, 1)
        self._fitness_sum, self._fitness_steps = 0.0, 0
        motivations = population_motivations(model, path) if envs.motivations else {}
        motivations = {column: values.tolist() for column, values in motivations.items()}
        weights, held_out = phase.weights.tolist(), envs.held_out.tolist()
        population, dominant_reward = population.tolist(), circuit_values[rep_index].tolist()
        for e, name in enumerate(envs.names):
            routed, leaf_reward = tables[e]
            self.phase_rows.append(
                {
                    "phase": phase.index,
                    "start": phase.start,
                    "end": phase.end,
                    "trained": phase.label,
                    "training_weight": weights[e],
                    "environment": name,
                    "held_out": held_out[e],
                    "population_reward": population[e],
                    "dominant_reward": dominant_reward[e],
                    "dominant_lineage": dominant["lineage"],
                    "dominant_share": dominant["share"],
                    "dominant_variants": dominant["variants"],
                    "dominant_structure": rep.structure,
                    "dominant_kind": rep.kind,
                    "structure_share": structure_share,
                    "routing": routed,
                    "mechanism_rewards": leaf_reward,
                    "router_share": router_share,
                    "circuits": len(model.circuits),
                    "phase_mean_fitness": phase_fitness,
                    **{column: values[e] for column, values in motivations.items()},
                }
            )

    def record_quarantine(self, phase: Phase) -> None:
        """One quarantine row for ``phase``: the monitor's readings (scenarios with motivations)."""
        model = self.model
        self.quarantine_rows.append(
            {
                "phase": phase.index,
                "end": phase.end,
                "trained": phase.label,
                "rule": model.update_rule,
                "routed": self._routed,
                "module_norm": model.monitor_signal(),
            }
        )
        self._routed = 0.0

    def tables(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """The timeseries, phases and quarantine tables recorded so far."""
        quarantine = pd.DataFrame(self.quarantine_rows, columns=QUARANTINE_COLUMNS)
        return pd.DataFrame(self.series_rows), pd.DataFrame(self.phase_rows), quarantine


QUARANTINE_COLUMNS = ["phase", "end", "trained", "rule", "routed", "module_norm"]


def population_motivations(model: CircuitsModel, path: np.ndarray) -> dict[str, np.ndarray]:
    """Per declared motivation, in every environment: the share-weighted, routed behaviour
    of the mechanisms' parameters (the sum of its two pathways, ``motivation_<name>``) and
    of their quarantine modules (``quarantined_<name>``)."""
    envs, layout = model.environments, model.layout
    routed = path[layout.leaf_rows] * model.shares[layout.leaf_owner][:, None]  # (leaves, envs)
    width = envs.width
    theta = layout.effective_theta[:, :width]
    capability = (learning.leaf_rewards(theta, envs.capability, envs.metric.head(width),
                                        envs.relevance[:, :width])
                  * routed).sum(axis=0)
    out = {"population_capability": capability}
    for name in envs.motivations:
        out[f"motivation_{name}"] = linalg.weighted_rows(envs.behaviour(name, layout.theta),
                                                         routed)
        out[f"quarantined_{name}"] = linalg.weighted_rows(
            envs.behaviour(name, layout.quarantine), routed)
    return out
