"""Training schedule: which objective (or mixture of objectives) each phase trains on.

The whole schedule is drawn once, up front, from the model's random generator, so a run is
reproducible and the schedule can be inspected or plotted before anything else happens.
A phase carries a weight vector over environments: one-hot for an ordinary phase, several
non-zero weights for a mixture phase (a batch that mixes objectives).  Held-out
environments never get weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuits_abm.engine.environments import Environments
from circuits_abm.engine.scenario import Scenario


@dataclass(frozen=True)
class Phase:
    """A stretch of consecutive steps that train on the same objective mix."""

    index: int
    start: int
    length: int
    label: str
    weights: np.ndarray

    @property
    def end(self) -> int:
        """First step after the phase."""
        return self.start + self.length

    @property
    def active(self) -> np.ndarray:
        """Indices of the environments this phase trains on."""
        return np.flatnonzero(self.weights)


def build_schedule(
    scenario: Scenario, envs: Environments, steps: int, rng: np.random.Generator
) -> list[Phase]:
    """Phases covering ``steps`` steps, following the scenario's order and phase lengths."""
    labels = _label_stream(scenario, envs, rng)
    phases: list[Phase] = []
    start = 0
    while start < steps:
        label = next(labels)
        length = min(_phase_length(scenario, rng), steps - start)
        phases.append(Phase(len(phases), start, length, label, _weights(scenario, envs, label)))
        start += length
    return phases


def _phase_length(scenario: Scenario, rng: np.random.Generator) -> int:
    tau = scenario.schedule.phase_length
    if scenario.schedule.phase_length_distribution == "geometric":
        return int(rng.geometric(1.0 / tau))
    return tau


def _weights(scenario: Scenario, envs: Environments, label: str) -> np.ndarray:
    weights = np.zeros(envs.size)
    mixture = scenario.schedule.mixtures.get(label)
    if mixture is None:
        weights[envs.index(label)] = 1.0
    else:
        for name, w in mixture.items():
            weights[envs.index(name)] = w
        weights /= weights.sum()
    return weights


def _label_stream(scenario: Scenario, envs: Environments, rng: np.random.Generator):
    """Endless generator of phase labels (environment or mixture names)."""
    sched = scenario.schedule
    training = [envs.names[i] for i in envs.training]
    order = sched.order
    if order in ("cycle", "sequence"):
        items = list(sched.sequence or training)
        if sched.start is not None:  # validation keeps it among the items
            k = items.index(sched.start)
            items = items[k:] + items[:k]
        if order == "cycle":
            while True:
                yield from items
        yield from items
        while True:  # a finished sequence holds its last phase
            yield items[-1]
    if order == "uniform":
        while True:
            yield training[int(rng.integers(len(training)))]
    yield from random_walk(envs, sched.start or training[0], rng)


def random_walk(envs: Environments, start: str, rng: np.random.Generator):
    """Weighted random walk over training environments (edge weights = transition weights)."""
    graph = envs.graph.subgraph(envs.names[i] for i in envs.training)
    neighbours = {
        node: (
            list(graph.neighbors(node)),
            np.array([graph[node][m]["weight"] for m in graph.neighbors(node)]),
        )
        for node in graph.nodes
    }
    current = start
    while True:
        yield current
        names, weights = neighbours[current]
        current = names[int(rng.choice(len(names), p=weights / weights.sum()))]


def stationary_distribution(envs: Environments) -> dict[str, float]:
    """Stationary distribution of the weighted walk: node strength over total strength."""
    graph = envs.graph.subgraph(envs.names[i] for i in envs.training)
    strength = dict(graph.degree(weight="weight"))
    total = sum(strength.values())
    return {node: strength[node] / total for node in graph.nodes}
