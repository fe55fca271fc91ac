"""The reduced model of the step: the model's own step for batches of one-level circuits.

The path model (``circuits_abm.analysis.assembly``) follows a resident and one newborn
through thousands of steps, in hundreds of replicates that each train their own sampled
schedule.  The engine's compiled step works on one population that trains one phase at a
time, so the path model needs the step written for a *batch*: here, for circuits whose
root is a lone mechanism or a router over mechanisms (the flat routers the path model
uses), with a leading batch axis on every array and a row of training weights per batch
entry.

It is the model's step, not a simplification of it: the reward metric of each environment
(motivation pathways included), routing by softmax, the structural costs, learning
weighted by ``share ** gamma``, the fixed targets of the fixed-target rules, the learning
noise, the keys' policy-gradient step, and the monitor's update rule (``block``, ``route``
with its quarantine module and capacity, ``watch``).  ``tests/test_reduced_step.py`` checks
it against the per-circuit reference (``circuits_abm.engine.reference``) on the same
population to 1e-12.  What it leaves out: nested routers, and a monitor whose direction is
redrawn each phase (``monitor.noise``).

The path model runs the step compiled, one replicate at a time
(``circuits_abm.analysis.reduced_kernels``, built from ``StepModel.compiled``); the tests
check the kernels against ``evaluate`` and ``learn`` here to 1e-12.  This module is the
readable definition in between: the reference checks it, and it checks the kernels.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

from circuits_abm.analysis.moments import Rule
from circuits_abm.engine.environments import Environments
from circuits_abm.engine.kernels import UPDATE_RULES
from circuits_abm.engine.monitoring import monitor_direction
from circuits_abm.engine.scenario import Scenario


class Circuits(NamedTuple):
    """A batch of one-level circuits of one shape: ``theta`` and ``quarantine`` are
    ``(batch, mechanisms, dimensions)``; ``keys`` is ``(batch, mechanisms, cue dimensions)``
    for routers and None for lone mechanisms."""

    theta: np.ndarray
    quarantine: np.ndarray
    keys: np.ndarray | None


@dataclass(frozen=True)
class StepModel:
    """Everything one step of a scenario reads, over its environments ``envs``."""

    demands: np.ndarray  # (environments, dimensions), motivation pathways included
    metrics: np.ndarray  # (environments, dimensions, dimensions): each reward metric A_e
    cues: np.ndarray  # (environments, cue dimensions)
    sharpness: float  # a router's sharpness (its value at birth)
    key_rate: float  # the keys' learning rate
    per_mechanism: float
    per_sharpness: float
    noise: float
    gamma: float
    strength: float
    update_rule: str  # the monitor's rule: plain, block, route or watch
    monitor: np.ndarray  # the monitored direction (dimensions,)
    capacity: float  # of a quarantine module (inf: none)

    @classmethod
    def of(cls, spec: Scenario, envs: Environments) -> StepModel:
        """The step of ``spec`` over the geometry ``envs``."""
        metric = envs.metric.matrix()
        mask = envs.relevance
        router = spec.circuits.router
        capacity = spec.monitor.capacity
        return cls(
            demands=envs.demands,
            metrics=metric[None] * mask[:, :, None] * mask[:, None, :],
            cues=envs.cues,
            sharpness=router.initial_sharpness,
            key_rate=router.key_learning_rate,
            per_mechanism=spec.costs.per_mechanism,
            per_sharpness=spec.costs.per_sharpness,
            noise=spec.learning.noise,
            gamma=spec.learning.gamma,
            strength=spec.selection.strength,
            update_rule=spec.monitor.rule,
            monitor=monitor_direction(spec, envs),
            capacity=float("inf") if capacity is None else float(capacity),
        )

    def values(self, theta: np.ndarray) -> np.ndarray:
        """``(batch, mechanisms, environments)``: each mechanism's expected reward in each
        environment, ``theta . d_e - theta A_e theta / 2``."""
        if self.euclidean:
            quadratic = (theta**2).sum(axis=-1, keepdims=True)
        else:
            quadratic = (self.metric_times(theta) * theta[:, :, None, :]).sum(axis=-1)
        return theta @ self.demands.T - 0.5 * quadratic

    @cached_property
    def euclidean(self) -> bool:
        """Whether every environment's reward metric is the identity (no motivations): the
        step then skips the matrix products."""
        return bool(np.array_equal(self.metrics, np.broadcast_to(
            np.eye(self.metrics.shape[1]), self.metrics.shape)))

    def metric_times(self, theta: np.ndarray) -> np.ndarray:
        """``(batch, mechanisms, environments, dimensions)``: ``A_e theta`` (each metric is
        symmetric)."""
        return np.tensordot(theta, self.metrics, axes=([2], [2]))

    def routing(self, keys: np.ndarray | None, batch: int) -> np.ndarray:
        """``(batch, mechanisms, environments)``: the probability that each environment is
        routed to each mechanism (ones for a lone mechanism)."""
        if keys is None:
            return np.ones((batch, 1, len(self.cues)))
        logits = self.sharpness * keys @ self.cues.T
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return weights / weights.sum(axis=1, keepdims=True)

    def cost(self, circuits: Circuits) -> float:
        """The structural cost: per mechanism, and per unit of a router's sharpness."""
        mechanisms = circuits.theta.shape[1]
        if circuits.keys is None:
            return self.per_mechanism
        return mechanisms * self.per_mechanism + self.per_sharpness * self.sharpness

    def evaluate(self, circuits: Circuits, weights: np.ndarray):
        """Fitness ``(batch,)`` of each circuit when it trains ``weights`` ``(batch,
        environments)``, with the routing and the mechanisms' values it came from."""
        values = self.values(circuits.theta + circuits.quarantine)
        routed = self.routing(circuits.keys, len(values))
        fitness = (weights[:, None, :] * routed * values).sum(axis=(1, 2))
        return fitness - self.cost(circuits), routed, values

    def learn(self, rule: Rule, circuits: Circuits, weights: np.ndarray,
              routed: np.ndarray, values: np.ndarray, learning_weight: np.ndarray,
              standard_noise: np.ndarray) -> Circuits:
        """One learning step of every mechanism (and, for routers, of the keys) under
        ``rule`` (the theory's ``moments.Rule``, as ``Problem.rules`` holds it).

        ``learning_weight`` is ``share ** gamma`` per circuit; ``standard_noise`` one
        standard normal vector per mechanism, scaled here by the noise level."""
        theta, quarantine = circuits.theta, circuits.quarantine
        path = weights[:, None, :] * routed  # (batch, mechanisms, environments)
        exposure = path.sum(axis=-1)
        if rule.target is None:  # the demand of what each mechanism is trained on
            target = path @ self.demands
        else:  # a fixed target, given as weights over the environments' demands
            target = exposure[..., None] * (rule.target @ self.demands)
        if self.euclidean:
            pull = exposure[..., None] * (theta + quarantine)
        else:
            pull = (path[..., None] * self.metric_times(theta + quarantine)).sum(axis=2)
        scale = (rule.learning_rate * learning_weight)[:, None, None]
        delta = scale * (target + exposure[..., None] * self.noise * standard_noise - pull)
        delta, quarantine = self.monitored(delta, quarantine)
        theta = theta + delta
        theta = theta - (rule.consolidation * learning_weight)[:, None, None] * theta
        keys = circuits.keys
        if keys is not None:
            step = (self.key_rate * self.sharpness * learning_weight)[:, None, None]
            keys = key_step(keys, routed, values, weights, self.cues, step)
        return Circuits(theta, quarantine, keys)

    def compiled(self, rule: Rule) -> tuple:
        """The constants of the step under ``rule``, as ``reduced_kernels`` takes them."""
        has_target = rule.target is not None
        target = rule.target @ self.demands if has_target else np.zeros(self.demands.shape[1])
        return (np.ascontiguousarray(self.demands, dtype=float),
                np.ascontiguousarray(self.metrics, dtype=float), self.euclidean,
                np.ascontiguousarray(self.cues, dtype=float), float(self.sharpness),
                float(self.per_mechanism), float(self.per_sharpness * self.sharpness),
                has_target, np.ascontiguousarray(target, dtype=float),
                float(rule.learning_rate), float(rule.consolidation), float(self.noise),
                UPDATE_RULES[self.update_rule], np.ascontiguousarray(self.monitor, dtype=float),
                float(self.capacity), float(self.key_rate * self.sharpness))

    def monitored(self, delta: np.ndarray, quarantine: np.ndarray):
        """The monitor's update rule on a batch of updates: ``block`` removes their part
        along the monitored direction, ``route`` moves it into the quarantine module (what
        exceeds its capacity is learned after all); ``plain`` and ``watch`` change
        nothing."""
        if self.update_rule not in ("block", "route"):
            return delta, quarantine
        u = self.monitor
        along = delta @ u
        delta = delta - along[..., None] * u
        if self.update_rule == "block":
            return delta, quarantine
        quarantine = quarantine + along[..., None] * u
        size = np.linalg.norm(quarantine, axis=-1, keepdims=True)
        over = size > self.capacity
        kept = np.where(over, self.capacity / np.where(over, size, 1.0), 1.0)
        delta = delta + quarantine * (1.0 - kept)
        return delta, quarantine * kept


def key_step(keys: np.ndarray, routed: np.ndarray, values: np.ndarray, weights: np.ndarray,
             cues: np.ndarray, step) -> np.ndarray:
    """The model's policy-gradient step on one-level routers' keys, then back to unit
    length: ``dk_j = step * sum_e w_e p_j(e) (V_j(e) - V(e)) q_e``, with ``V(e)`` the
    router's routed value and ``step`` the key learning rate times the sharpness (times
    the learning weight)."""
    router_value = (routed * values).sum(axis=1, keepdims=True)
    keys = keys + (step * weights[:, None, :] * routed * (values - router_value)) @ cues
    return keys / np.maximum(np.linalg.norm(keys, axis=-1, keepdims=True), 1e-12)


def replicate(shares: np.ndarray, fitness: np.ndarray, strength: float) -> np.ndarray:
    """The model's replicator over the last axis: ``x_i exp(s (f_i - mean f))``,
    renormalised."""
    mean = (shares * fitness).sum(axis=-1, keepdims=True)
    grown = shares * np.exp(np.clip(strength * (fitness - mean), -50.0, 50.0))
    return grown / grown.sum(axis=-1, keepdims=True)
