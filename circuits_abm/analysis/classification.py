"""Regime classification from a run's trajectory (its ``phases`` table), never its parameters.

The classifier looks at a *window* at the end of the run: the last quarter of the phases,
and at least ``MIN_WINDOW_PHASES`` of them.  It takes the structure that dominates at the end
and classifies it recursively:

* a **router** whose routing is informative about the environments it serves is a
  ``conditional_policy``; each child is classified on the environments routed to it;
* a **mechanism** (or a router that does not route informatively, which acts as one
  mixture) serving several environments is an ``ecological_generalist`` if its performance
  does not depend on what was trained last, ``strategy_churn`` if it is good mainly on
  the objective just trained;
* a child that serves a single environment is a ``specialist``;
* anything the evidence does not settle is ``undetermined``, never a forced label.

Metrics (all read from the trajectory):

* **routing information**: mutual information between the environment and the child a
  router sends it to, over the log of the number of environments it serves (1 = each
  environment has its own child, 0 = routing ignores the environment);
* **recency bias**: reward on the objective just trained minus the mean reward on the
  node's other environments, divided by 1, the spread between a specialist at its best
  (reward 1/2 on unit-norm demands) and on an orthogonal objective (-1/2);
* **switch drop**: how much the population's reward on the previous objective falls
  during the next phase (churn forgets at every switch), on the same scale;
* **lineage turnover**: the fraction of phase ends in the window at which the dominant
  lineage changed;
* **stability**: the fraction of window phases in which the final dominant structure was
  dominant; **structure share**: its mean share there;
* **held-out reward**: the population's mean reward on held-out environments;
* **mean fitness**: the population's share-weighted fitness, averaged over the window's
  steps (what selection acts on, and what the theory predicts).

Thresholds and why (tested on hand-built trajectories in ``tests/test_classification.py``):

* ``INFORMATIVE = 0.5``: routing resolves at least half of the environment's entropy.
  Working conditional policies measure 0.95-1.0 and uninformative routers 0-0.2, so the
  cut sits in the wide empty middle.
* ``CHURN = 0.3`` and ``GENERALIST = 0.15`` (recency bias): a churning mechanism is
  re-tuned within a phase, so its bias approaches the distance between objectives (0.5-0.9
  at sharing <= 0.5); a generalist's stays within noise of 0 (|bias| < 0.05).  Between the
  two cuts the node is ``undetermined``.
* ``STABLE = 0.5``: if the final structure dominated less than half the window, nothing
  structural is claimed (unless recency says churn, which *is* instability).
* ``MIN_WINDOW_PHASES = 8``, and a node needs ``MIN_NODE_PHASES = 4`` phases training one
  of its environments to be classified by recency.

Confidence is the product of stability and the node's margin past its threshold
(clipped to [0, 1]) for every label, so a label that barely passed, or a structure that held
in only part of the window, reports a low confidence.  Churn is the one label that survives
an unstable structure (instability is what churn is), but its confidence still pays for it:
churn read from a window where one partition held 40% of the time reports at most 0.4.
A specialist has no threshold of its own; its confidence is the stability.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from circuits_abm.regimes import CHURN as CHURN_LABEL
from circuits_abm.regimes import CONDITIONAL, SPECIALIST, UNDETERMINED
from circuits_abm.regimes import GENERALIST as GENERALIST_LABEL

RECENCY_SCALE = 1.0
WINDOW_FRACTION = 0.25
MIN_WINDOW_PHASES = 8
MIN_NODE_PHASES = 4
INFORMATIVE = 0.5
CHURN = 0.3
GENERALIST = 0.15
STABLE = 0.5



@dataclass
class Node:
    """One node of a classification tree."""

    label: str
    path: str
    environments: list[str]
    confidence: float
    metrics: dict[str, float] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The node and its subtree as JSON-able dicts (label, path, environments, metrics)."""
        return {
            "label": self.label,
            "path": self.path,
            "environments": self.environments,
            "confidence": round(self.confidence, 4),
            "metrics": {
                k: (round(float(v), 4) if np.isfinite(v) else None) for k, v in self.metrics.items()
            },
            "children": [c.to_dict() for c in self.children],
        }

    def structure(self) -> str:
        """One line, e.g. ``conditional_policy[ecological_generalist{a,b}, specialist{c}]``."""
        if self.children:
            return f"{self.label}[{', '.join(c.structure() for c in self.children)}]"
        return f"{self.label}{{{','.join(self.environments)}}}"

    def canonical(self) -> str:
        """The structure with children sorted and directly nested conditional policies merged.

        ``R[a, R[b, c]]`` and ``R[c, b, a]`` route every environment to the same kind of
        child, so they compare equal; nesting *between* regimes (a conditional policy of
        churners) is kept.
        """
        if not self.children:
            return self.structure()
        parts = sorted(_flattened_children(self))
        return f"{self.label}[{', '.join(parts)}]"


def _flattened_children(node: Node) -> list[str]:
    out = []
    for child in node.children:
        if child.label == CONDITIONAL == node.label:
            out.extend(_flattened_children(child))
        else:
            out.append(child.canonical())
    return out


@dataclass
class Classification:
    """The result: the root label, the one-line structure, the tree and run-level metrics.

    Attributes
    ----------
    tree
        The classified structure: a ``Node`` per router part, each with its label,
        environments, confidence and metrics (routing information, recency bias, ...).
    window
        The first and last phase of the end window the labels were read from.
    dominant_structure
        The dominant circuit's structure at the end, in the circuit grammar (``R[n,g]``).
    """

    tree: Node
    window: tuple[int, int]
    dominant_structure: str

    @property
    def regime(self) -> str:
        """The root label: the regime of the structure that dominates at the end."""
        return self.tree.label

    @property
    def structure(self) -> str:
        """The whole tree on one line (see ``Node.structure``)."""
        return self.tree.structure()

    @property
    def confidence(self) -> float:
        """The root label's confidence in [0, 1]: stability times the margin past its
        threshold."""
        return self.tree.confidence

    @property
    def canonical(self) -> str:
        """The tree's canonical string (see ``Node.canonical``): equal for equivalent trees."""
        return self.tree.canonical()

    def to_dict(self) -> dict[str, Any]:
        """The classification as a JSON-able dict (what ``summary.json`` stores)."""
        return {
            "regime": self.regime,
            "structure": self.structure,
            "canonical": self.canonical,
            "window_phases": list(self.window),
            "dominant_structure": self.dominant_structure,
            "tree": self.tree.to_dict(),
        }


# --------------------------------------------------------------------------- windows


def end_window(phases: pd.DataFrame, fraction: float = WINDOW_FRACTION) -> pd.DataFrame:
    """Rows of the last ``fraction`` of phases (at least MIN_WINDOW_PHASES, if there are)."""
    last = int(phases.phase.max())
    size = max(MIN_WINDOW_PHASES, int(round(fraction * (last + 1))))
    return phases[phases.phase > last - size]


@dataclass(frozen=True)
class PhaseView:
    """One phase end, parsed: what was trained, and the dominant circuit's tables."""

    phase: int
    trained: dict[str, float]  # training weight of each environment in this phase
    structure: str
    lineage: int
    structure_share: float
    routing: dict[str, dict[str, float]]  # env -> mechanism path -> probability
    rewards: dict[str, dict[str, float]]  # env -> mechanism path -> reward
    population: dict[str, float]  # env -> population reward


def phase_views(rows: pd.DataFrame) -> list[PhaseView]:
    """One ``PhaseView`` per phase of a phases table (rows for every environment).

    The columns are read into Python lists once: reading a pandas row at a time cost more
    than the classification itself."""
    column = {name: rows[name].tolist() for name in (
        "environment", "training_weight", "dominant_structure", "dominant_lineage",
        "structure_share", "routing", "mechanism_rewards", "population_reward")}
    views = []
    for phase, positions in sorted(rows.groupby("phase").indices.items()):
        def values(name: str, positions=positions) -> list:
            return [column[name][i] for i in positions]

        envs = values("environment")
        first = positions[0]
        weights = dict(zip(envs, values("training_weight"), strict=True))
        views.append(
            PhaseView(
                phase=int(phase),
                trained={e: w for e, w in weights.items() if w > 0},
                structure=str(column["dominant_structure"][first]),
                lineage=int(column["dominant_lineage"][first]),
                structure_share=float(column["structure_share"][first]),
                routing=dict(zip(envs, values("routing"), strict=True)),
                rewards=dict(zip(envs, values("mechanism_rewards"), strict=True)),
                population=dict(zip(envs, values("population_reward"), strict=True)),
            )
        )
    return views


# --------------------------------------------------------------------------- metrics


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
    return _mutual_information(table) / np.log(len(routing))


def _mutual_information(table: np.ndarray) -> float:
    """MI (nats) of a (environments x children) routing table, environments equally likely."""
    rows = table / np.maximum(table.sum(axis=1, keepdims=True), 1e-300)
    joint = rows / len(rows)
    child = joint.sum(axis=0)
    _, columns = np.nonzero(joint > 0)  # the joint's nonzero cells, row by row
    cells = joint[joint > 0]
    outer = ((1.0 / len(rows)) * child)[columns]  # P(env) P(child) of each cell
    return max(0.0, float(np.sum(cells * np.log(cells / outer))))


def routing_determinism(table: np.ndarray) -> float:
    """Share of a router's routing entropy that the environment explains: I(env; child) / H(child).

    1 when each environment goes to one child for sure (even an uneven split such as one
    environment versus three), 0 when routing ignores the environment.
    """
    child = (table / np.maximum(table.sum(axis=1, keepdims=True), 1e-300)).mean(axis=0)
    child = child[child > 0]
    entropy = float(-(child * np.log(child)).sum())
    return _mutual_information(table) / entropy if entropy > 1e-12 else 0.0


def _prefix(path: str, depth: int | None) -> str:
    return path if depth is None else ".".join(path.split(".")[:depth])


def final_routing_information(phases: pd.DataFrame) -> float:
    """Whole-tree routing information of the dominant circuit at the last phase (training envs)."""
    last = phases[(phases.phase == phases.phase.max()) & ~phases.held_out]
    return routing_information(list(last.routing))


def recency_bias(phases: pd.DataFrame) -> float:
    """Mean recency bias of the dominant circuit over the phases in ``phases`` (training envs)."""
    training = phases[~phases.held_out]
    values = []
    for _, rows in training.groupby("phase"):
        current = rows[rows.training_weight > 0]
        others = rows[rows.training_weight == 0]
        if len(current) and len(others):
            values.append(current.dominant_reward.mean() - others.dominant_reward.mean())
    return float(np.mean(values)) / RECENCY_SCALE if values else 0.0


def switch_drop(views: list[PhaseView]) -> float:
    """Mean fall of the population's reward on the previous objective across a switch."""
    drops = []
    for before, after in zip(views, views[1:], strict=False):
        left = [e for e in before.trained if e not in after.trained]
        drops.extend(before.population[e] - after.population[e] for e in left)
    return float(np.mean(drops)) / RECENCY_SCALE if drops else 0.0


def lineage_turnover(views: list[PhaseView]) -> float:
    """The fraction of consecutive phase ends at which the dominant lineage changed."""
    changes = [a.lineage != b.lineage for a, b in zip(views, views[1:], strict=False)]
    return float(np.mean(changes)) if changes else 0.0


def _subtree_table(
    view: PhaseView, path: str, envs: list[str], kind: str
) -> dict[str, dict[str, float]]:
    """Per env: routing (conditional on reaching ``path``) or reward of leaves under ``path``."""
    out = {}
    for env in envs:
        routed = {p: v for p, v in view.routing[env].items() if _under(p, path)}
        if kind == "routing":
            total = sum(routed.values())
            out[env] = {
                p: (v / total if total > 0 else 1.0 / len(routed)) for p, v in routed.items()
            }
        else:
            out[env] = {p: view.rewards[env][p] for p in routed}
    return out


def _under(leaf: str, path: str) -> bool:
    return path == "root" or leaf == path or leaf.startswith(path + ".")


def _subtree_reward(view: PhaseView, path: str, env: str) -> float:
    """Expected reward in ``env`` of the subtree at ``path`` (routing given it is reached)."""
    routing = _subtree_table(view, path, [env], "routing")[env]
    return sum(p * view.rewards[env][leaf] for leaf, p in routing.items())


def _children_of(leaves: list[str], path: str) -> list[str]:
    """Child paths of the router at ``path``, from the mechanism paths below it."""
    depth = 0 if path == "root" else len(path.split("."))
    return sorted(
        {
            ".".join(leaf.split(".")[: depth + 1])
            for leaf in leaves
            if _under(leaf, path) and leaf != path
        },
        key=lambda p: [int(x) for x in p.split(".")],
    )


# --------------------------------------------------------------------------- partitions


@dataclass(frozen=True)
class Split:
    """How one phase's dominant circuit partitions a set of environments by routing.

    ``path`` is the node serving ``envs``; ``parts`` is empty when the node acts as one unit
    (a mechanism, or a router that does not route these environments informatively).
    Routers that send all of ``envs`` to the same child are passed through.
    ``information`` is the routing determinism of the split (see ``routing_determinism``).
    """

    envs: tuple[str, ...]
    path: str
    parts: tuple[Split, ...]
    information: float

    def signature(self) -> str:
        """Canonical nested partition, e.g. ``[{a,b}|{c}]``: independent of rules and order."""
        if not self.parts:
            return "{" + ",".join(self.envs) + "}"
        return "[" + "|".join(sorted(p.signature() for p in self.parts)) + "]"

    def find(self, envs: tuple[str, ...]) -> Split:
        """The part of this split (itself or a descendant) that serves exactly ``envs``."""
        if self.envs == envs:
            return self
        for part in self.parts:
            if set(envs) <= set(part.envs):
                return part.find(envs)
        raise KeyError(envs)


def partition(view: PhaseView, envs: tuple[str, ...], path: str = "root") -> Split:
    """The routing partition of ``envs`` below ``path`` in one phase's dominant circuit."""
    children = _children_of(sorted(view.routing[envs[0]]), path)
    if not children or len(envs) == 1:
        return Split(envs, path, (), 0.0)
    table = _subtree_table(view, path, list(envs), "routing")
    matrix = np.array(
        [[sum(v for p, v in table[e].items() if _under(p, c)) for c in children] for e in envs]
    )
    chosen = [children[int(np.argmax(row))] for row in matrix]
    if len(set(chosen)) == 1:
        return partition(view, envs, chosen[0])
    information = routing_determinism(matrix)
    if information < INFORMATIVE:
        return Split(envs, path, (), information)
    parts = tuple(
        partition(view, tuple(e for e, c in zip(envs, chosen, strict=True) if c == child), child)
        for child in sorted(set(chosen), key=children.index)
    )
    return Split(envs, path, parts, information)


# --------------------------------------------------------------------------- classification


def classify(phases: pd.DataFrame) -> Classification:
    """Classify a run from its trajectory: the ``phases`` table, never its parameters.

    The structure that dominates the last quarter of the phases is labelled recursively: a
    router that routes informatively is a ``conditional_policy`` over its children; a part
    serving several environments is an ``ecological_generalist`` or ``strategy_churn`` by
    whether its reward depends on what was trained last; one environment is a
    ``specialist``; evidence that settles nothing gives ``undetermined``.  The module
    docstring gives each threshold and its reason.

    Parameters
    ----------
    phases
        A run's phases table (``RunResult.phases``), one row per phase and environment.

    Returns
    -------
    Classification

    Examples
    --------
    >>> import circuits_abm as ca
    >>> result = ca.run("standard", seed=1, steps=600, progress=False)
    >>> found = ca.classify(result.phases)
    >>> found.structure == result.structure  # what the run recorded in its summary
    True
    >>> 0.0 <= found.confidence <= 1.0
    True
    """
    views = phase_views(end_window(phases))
    training = tuple(sorted(_training_envs(phases)))
    splits = [partition(v, training) for v in views]
    signatures = [s.signature() for s in splits]
    counts = {sig: signatures.count(sig) for sig in signatures}
    mode = max(reversed(signatures), key=counts.get)  # ties go to the most recent
    matching = [(v, s) for v, s, sig in zip(views, splits, signatures, strict=True) if sig == mode]
    stability = len(matching) / len(views)
    root = _label(matching[-1][1], matching, stability)
    held = sorted(set(phases.environment[phases.held_out]))
    root.metrics.update(_run_metrics(views, matching, training, held, stability))
    window = end_window(phases)
    if "router_share" in phases:  # tables recorded by the model have it
        root.metrics["router_share"] = float(window.groupby("phase").router_share.first().mean())
    if "phase_mean_fitness" in phases:
        root.metrics["mean_fitness"] = time_weighted_fitness(window)
    if stability < STABLE and root.label != CHURN_LABEL:
        root = Node(UNDETERMINED, "root", list(training), 0.0, root.metrics)
    return Classification(root, (views[0].phase, views[-1].phase), matching[-1][0].structure)


def time_weighted_fitness(window: pd.DataFrame) -> float:
    """The population's mean fitness over the window's steps: each phase's mean weighted
    by its length (``end - start``), so that under a geometric schedule a short phase counts
    for its few steps, not as much as a long one."""
    per_phase = window.groupby("phase")[["phase_mean_fitness", "start", "end"]].first()
    lengths = per_phase.end - per_phase.start
    return float((per_phase.phase_mean_fitness * lengths).sum() / lengths.sum())


def _training_envs(phases: pd.DataFrame) -> set[str]:
    return set(phases.environment[~phases.held_out])


def _run_metrics(views, matching, training, held, stability) -> dict[str, float]:
    metrics = {
        "stability": stability,
        "structure_share": float(np.mean([v.structure_share for v, _ in matching])),
        "lineage_turnover": lineage_turnover(views),
        "switch_drop": switch_drop(views),
        "population_reward": float(
            np.mean([np.mean([v.population[e] for e in training]) for v in views])
        ),
    }
    if held:
        metrics["held_out_reward"] = float(
            np.mean([np.mean([v.population[e] for e in held]) for v in views])
        )
    return metrics


def _label(split: Split, matching: list[tuple[PhaseView, Split]], stability: float) -> Node:
    """Label a node of the modal partition, reading its counterpart in every matching phase."""
    envs = list(split.envs)
    if split.parts:
        determinism = float(np.mean([s.find(split.envs).information for _, s in matching]))
        margin = min(1.0, (determinism - INFORMATIVE) / (1.0 - INFORMATIVE))
        information = float(
            np.mean([_split_information(v, s.find(split.envs)) for v, s in matching])
        )
        metrics = {"routing_determinism": determinism, "routing_information": information}
        node = Node(CONDITIONAL, split.path, envs, stability * margin, metrics)
        node.children = [_label(part, matching, stability) for part in split.parts]
        return node
    if len(envs) == 1:
        return Node(SPECIALIST, split.path, envs, stability, {})
    return _label_by_recency(split, matching, stability)


def _split_information(view: PhaseView, split: Split) -> float:
    """MI between a split's environments and its parts, over log of its environment count."""
    table = _subtree_table(view, split.path, list(split.envs), "routing")
    matrix = np.array(
        [
            [sum(v for p, v in table[e].items() if _under(p, part.path)) for part in split.parts]
            for e in split.envs
        ]
    )
    return _mutual_information(matrix) / np.log(len(split.envs))


def _label_by_recency(split: Split, matching, stability: float) -> Node:
    """A unit serving several environments: generalist if recency is low, churn if high."""
    biases, rewards = [], []
    for view, phase_split in matching:
        path = phase_split.find(split.envs).path
        reward = {e: _subtree_reward(view, path, e) for e in split.envs}
        rewards.append(np.mean(list(reward.values())))
        trained = [e for e in split.envs if e in view.trained]
        others = [e for e in split.envs if e not in view.trained]
        if trained and others:
            now = np.mean([reward[e] for e in trained])
            biases.append((now - np.mean([reward[e] for e in others])) / RECENCY_SCALE)
    bias = float(np.mean(biases)) if biases else float("nan")
    metrics = {"recency_bias": bias, "mean_reward": float(np.mean(rewards))}
    envs = list(split.envs)
    if len(biases) < MIN_NODE_PHASES:
        return Node(UNDETERMINED, split.path, envs, 0.0, metrics)
    if bias >= CHURN:
        margin = min(1.0, (bias - CHURN) / CHURN)
        return Node(CHURN_LABEL, split.path, envs, stability * margin, metrics)
    if abs(bias) <= GENERALIST:
        return Node(
            GENERALIST_LABEL, split.path, envs, stability * (1 - abs(bias) / GENERALIST), metrics
        )
    return Node(UNDETERMINED, split.path, envs, 0.0, metrics)
