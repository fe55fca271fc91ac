"""A plain, per-circuit reference implementation of fitness, selection and learning.

Written for reading, not speed: one recursive walk per circuit, Python loops over
environments and children.  The tests check the fast population-wide step
(``CircuitsModel.select_and_learn``) against it, and the benchmark reports the speed
ratio.  It mutates the same node arrays in place, so either can run on a model.
"""

from __future__ import annotations

import math

import numpy as np

from circuits_abm.engine.circuits import Mechanism, Node, Router
from circuits_abm.engine.model import CircuitsModel
from circuits_abm.engine.rules import FIXED_TARGET_RULES
from circuits_abm.engine.schedule import Phase


def route(router: Router, cue: np.ndarray) -> list[float]:
    """Softmax of ``sharpness * <key_j, cue>`` over the router's children."""
    logits = [router.sharpness * float(child.key @ cue) for child in router.children]
    top = max(logits)
    weights = [math.exp(v - top) for v in logits]
    total = sum(weights)
    return [w / total for w in weights]


def metric(envs, e: int) -> np.ndarray:
    """The reward metric ``A_e`` of environment ``e`` as a matrix, written out from the
    model's definition: identity on capability; on each motivation's pathways ``upkeep I +
    g g^T`` (``[[1 + upkeep, 1], [1, 1 + upkeep]]`` for two pathways of gain 1); zero rows
    and columns where the environment does not name the motivation."""
    size = envs.demands.shape[1]
    matrix = np.eye(size)
    group, gain, upkeep = envs.metric.group, envs.metric.gain, envs.metric.upkeep
    for k in range(size):
        for j in range(size):
            if group[k] >= 0 and group[k] == group[j]:
                matrix[k, j] = gain[k] * gain[j] + (upkeep[k] if k == j else 0.0)
    mask = envs.relevance[e]
    return matrix * mask[:, None] * mask[None, :]


def value(node: Node, demand: np.ndarray, cue: np.ndarray, a: np.ndarray) -> float:
    """Expected reward of a subtree in one environment (``a``: its reward metric)."""
    if isinstance(node, Mechanism):
        theta = node.theta + node.quarantine  # a quarantine module counts while it is there
        return float(theta @ demand) - 0.5 * float(theta @ a @ theta)
    probs = route(node, cue)
    return sum(p * value(c, demand, cue, a) for p, c in zip(probs, node.children, strict=True))


def cost(node: Node, model: CircuitsModel) -> float:
    """The structural cost of a tree: per mechanism, and per unit of sharpness of each router."""
    costs = model.spec.costs
    if isinstance(node, Mechanism):
        return costs.per_mechanism
    return costs.per_sharpness * node.sharpness + sum(cost(c, model) for c in node.children)


def reference_select_and_learn(model: CircuitsModel, phase: Phase, standard_noise: np.ndarray):
    """Same contract as ``CircuitsModel.select_and_learn``, one circuit at a time."""
    spec, envs = model.spec, model.environments
    active = [int(e) for e in phase.active]
    mix = [float(phase.weights[e]) for e in active]
    fitness = []
    for circuit in model.circuits:
        reward = sum(
            m * value(circuit.root, envs.demands[e], envs.cues[e], metric(envs, e))
            for e, m in zip(active, mix, strict=True)
        )
        fitness.append(reward - cost(circuit.root, model))
    mean = sum(x * f for x, f in zip(model.shares, fitness, strict=True))
    grown = [
        x * math.exp(spec.selection.strength * (f - mean))
        for x, f in zip(model.shares, fitness, strict=True)
    ]
    total = sum(grown)
    model.shares = np.array([g / total for g in grown])
    noise_rows = iter(standard_noise)
    for share, circuit in zip(model.shares, model.circuits, strict=True):
        weight = share**spec.learning.gamma
        _learn(circuit.root, [1.0] * len(active), active, mix, weight, model, noise_rows)
    return np.array(fitness)


def _learn(node, path, active, mix, weight, model, noise_rows) -> None:
    """Learn one subtree whose root is reached with probability ``path[a]`` in env ``a``."""
    spec, envs = model.spec, model.environments
    if isinstance(node, Mechanism):
        rule = getattr(spec.circuits, node.rule)
        noise = spec.learning.noise * next(noise_rows)
        delta = np.zeros_like(node.theta)
        current = node.theta + node.quarantine
        for a, e in enumerate(active):
            target = (model.fixed_targets[FIXED_TARGET_RULES.index(node.rule)]
                      if node.rule in FIXED_TARGET_RULES else envs.demands[e])
            delta += mix[a] * path[a] * (target + noise - metric(envs, e) @ current)
        delta *= rule.learning_rate * weight
        if model.update_rule in ("block", "route"):
            along = float(delta @ model.monitor)
            delta -= along * model.monitor  # blocked, or ...
            if model.update_rule == "route":
                node.quarantine += along * model.monitor  # ... routed into quarantine
                size = float(np.linalg.norm(node.quarantine))
                if size > model.capacity:  # ... up to its capacity; the rest is learned
                    delta += node.quarantine * (1.0 - model.capacity / size)
                    node.quarantine *= model.capacity / size
        node.theta += delta
        node.theta -= rule.consolidation * weight * node.theta
        return
    cues = [envs.cues[e] for e in active]
    probs = [route(node, q) for q in cues]
    child_values = [
        [value(c, envs.demands[e], cues[a], metric(envs, e)) for c in node.children]
        for a, e in enumerate(active)
    ]
    key_steps = []
    for j, child in enumerate(node.children):
        step = np.zeros_like(child.key)
        for a in range(len(active)):
            mean = sum(p * v for p, v in zip(probs[a], child_values[a], strict=True))
            step += mix[a] * path[a] * probs[a][j] * (child_values[a][j] - mean) * cues[a]
        key_steps.append(spec.circuits.router.key_learning_rate * weight * node.sharpness * step)
    for j, child in enumerate(node.children):
        _learn(
            child,
            [path[a] * probs[a][j] for a in range(len(active))],
            active,
            mix,
            weight,
            model,
            noise_rows,
        )
    for child, step in zip(node.children, key_steps, strict=True):
        child.key += step
        child.key /= max(float(np.linalg.norm(child.key)), 1e-12)
