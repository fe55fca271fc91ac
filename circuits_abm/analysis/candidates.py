"""The structures the theory compares, and the long-run fitness of each
(``circuits_abm.analysis.theory`` picks the best; docs/theory.md has the derivation).

One shared mechanism (each learning rule the scenario can reach), and routers over a
partition of the training environments, each part served by its best mechanism.  Routing
uses contrast keys (a part's mean cue minus the mean cue) at the sharpness routers are
born with (or, on request, the sharpness that maximises reward minus its cost, or the keys
that noiseless key learning settles on); misrouted steps teach the wrong child.  A part
with one environment is a ``specialist``; a mechanism serving several is labelled
``strategy_churn`` or ``ecological_generalist`` by its predicted recency bias, with the
classifier's own thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

from circuits_abm.analysis.classification import (
    CHURN,
    CHURN_LABEL,
    CONDITIONAL,
    GENERALIST,
    GENERALIST_LABEL,
    SPECIALIST,
    UNDETERMINED,
)
from circuits_abm.analysis.moments import (
    LeafStatistics,
    Rule,
    recency_bias,
    routed_drive,
    rule_statistics,
    schedule_chain,
)
from circuits_abm.engine.environments import Environments
from circuits_abm.engine.rules import LETTER_RULES, REGISTRY, RULES, fixed_target_weights
from circuits_abm.engine.scenario import Scenario

SHARPNESS_GRID = 24  # sharpness values tried per router with sharpness="optimal"


@dataclass(frozen=True)
class Part:
    """One part of a candidate: the environments a mechanism serves, its best rule, the
    reward it brings in (per step, routed), its predicted recency bias and label."""

    environments: tuple[str, ...]
    rule: str
    reward: float
    recency_bias: float
    label: str

    def canonical(self) -> str:
        """The classifier's canonical string for this part, e.g. ``specialist{a}``."""
        return f"{self.label}{{{','.join(sorted(self.environments))}}}"


@dataclass(frozen=True)
class Candidate:
    """A structure and its predicted long-run mean fitness per step."""

    parts: tuple[Part, ...]
    sharpness: float  # of the router (0 for one mechanism)
    fitness: float

    @property
    def is_router(self) -> bool:
        """Whether the candidate routes between two or more parts."""
        return len(self.parts) > 1

    def canonical(self) -> str:
        """The classifier's canonical structure string for this candidate."""
        if not self.is_router:
            return self.parts[0].canonical()
        return f"{CONDITIONAL}[{', '.join(sorted(p.canonical() for p in self.parts))}]"

    @property
    def regime(self) -> str:
        """The regime the classifier would give this candidate."""
        return CONDITIONAL if self.is_router else self.parts[0].label

    def to_dict(self) -> dict[str, Any]:
        """The candidate as a JSON-able dict (structure, fitness and its terms)."""
        return {
            "structure": self.canonical(),
            "fitness": round(self.fitness, 6),
            "sharpness": round(self.sharpness, 4),
            "parts": [
                {
                    "environments": list(p.environments),
                    "rule": p.rule,
                    "reward": round(p.reward, 6),
                    "recency_bias": None if np.isnan(p.recency_bias) else round(p.recency_bias, 4),
                    "label": p.label,
                }
                for p in self.parts
            ],
        }


class Problem:
    """Everything the candidates of one scenario share: geometry, chain, rules, costs."""

    def __init__(self, spec: Scenario, envs: Environments, sharpness: str = "birth",
                 keys: str = "birth"):
        self.spec = spec
        self.envs = envs
        self.chain = schedule_chain(spec, envs)
        self.gram = envs.demand_overlap
        self.noise = spec.learning.noise
        self.training = tuple(int(i) for i in envs.training)
        self.rules = [learning_rule(spec, envs, name) for name in reachable_rules(spec)]
        router = spec.circuits.router
        if sharpness == "birth":
            self.sharpness = np.array([router.initial_sharpness])
        elif sharpness == "optimal":
            cap = router.max_sharpness
            self.sharpness = np.concatenate([[0.0], np.geomspace(0.25, cap, SHARPNESS_GRID - 1)])
        else:
            raise ValueError(f"sharpness must be 'birth' or 'optimal' (got {sharpness!r})")
        if keys not in ("birth", "learned"):
            raise ValueError(f"keys must be 'birth' or 'learned' (got {keys!r})")
        # how often each environment is trained, which weighs it in key learning
        self.trained = self.chain.slot_stationary @ self.chain.mix if keys == "learned" else None
        self._leaves: dict[tuple, tuple[Rule, LeafStatistics]] = {}

    def best_leaf(self, routed: np.ndarray) -> tuple[Rule, LeafStatistics]:
        """The rule whose mechanism earns most at this routing (memoised)."""
        key = tuple(np.round(routed, 12))
        if key not in self._leaves:
            drive = routed_drive(self.chain, routed, self.gram)
            options = [
                (rule, rule_statistics(self.chain, rule, drive, self.gram, self.noise))
                for rule in self.rules
            ]
            self._leaves[key] = max(options, key=lambda pair: pair[1].reward)
        return self._leaves[key]

    def part(self, block: tuple[int, ...], routed: np.ndarray) -> Part:
        """The best leaf for the environments in ``block`` given the routing probabilities
        ``routed``, labelled by its predicted recency bias."""
        rule, stats = self.best_leaf(routed)
        bias = recency_bias(self.chain, stats, self.gram, block)
        names = tuple(self.envs.names[e] for e in block)
        return Part(names, rule.name, stats.reward, bias, _label(len(block), bias))

    def candidate(self, blocks: tuple[tuple[int, ...], ...]) -> Candidate:
        """The best sharpness for a router over ``blocks`` (one block: one mechanism)."""
        costs = self.spec.costs
        if len(blocks) == 1:
            part = self.part(blocks[0], np.ones(self.envs.size))
            return Candidate((part,), 0.0, part.reward - costs.per_mechanism)
        best = None
        for beta in self.sharpness:
            routed = routing(self.envs.cues, blocks, self.training, beta, self.trained)
            parts = tuple(self.part(block, routed[j]) for j, block in enumerate(blocks))
            fitness = sum(p.reward for p in parts) - len(blocks) * costs.per_mechanism
            fitness -= costs.per_sharpness * beta
            if best is None or fitness > best.fitness:
                best = Candidate(parts, float(beta), float(fitness))
        return best


def routing(cues: np.ndarray, blocks, among: tuple[int, ...], sharpness: float,
            trained: np.ndarray | None = None) -> np.ndarray:
    """Routing probabilities ``(parts, environments)`` of a router over ``blocks``.

    Without ``trained``, the router has the keys it is born with: *contrast keys*, each
    part's mean cue minus the mean cue of everything routed (``among``), normalised (the
    direction the ``split`` operator starts from).  With ``trained`` (how often each
    environment is trained), the keys are those key learning settles on (``learned_keys``).
    """
    keys = contrast_keys(cues, blocks, among)
    if trained is not None:
        keys = learned_keys(cues, blocks, trained, sharpness, keys)
    logits = sharpness * (keys @ cues.T)
    logits -= logits.max(axis=0, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=0, keepdims=True)


def contrast_keys(cues: np.ndarray, blocks, among: tuple[int, ...]) -> np.ndarray:
    """Each part's mean cue minus the mean cue of ``among``, normalised (zero if equal)."""
    centre = cues[list(among)].mean(axis=0)
    keys = []
    for block in blocks:
        direction = cues[list(block)].mean(axis=0) - centre
        norm = np.linalg.norm(direction)
        keys.append(direction / norm if norm > 1e-9 else np.zeros_like(direction))
    return np.array(keys)


def learned_keys(cues: np.ndarray, blocks, trained: np.ndarray, sharpness: float,
                 start: np.ndarray) -> np.ndarray:
    """The unit keys that key learning settles on, from the keys ``start``.

    Keys climb the policy gradient of the router's expected reward.  When each part's
    mechanism is the one tuned to its environments, the step for key ``j`` in environment
    ``e`` is ``beta p_j (V_j - V_mean) q_e``; with the value gaps taken equal across
    environments, that is (up to a positive factor per environment) the gradient of
    ``sum_e trained_e log p_part(e)(e)``: the expected log-probability of sending each
    trained environment to its own part.  Its maximum over unit keys at this sharpness is
    found by L-BFGS from ``start`` (a few iterations).  Routing stays as born where there
    is nothing to learn from: no sharpness, or a part whose contrast key is zero.
    """
    if sharpness <= 0 or not np.all(np.linalg.norm(start, axis=1) > 0.5):
        return start
    seen = np.flatnonzero(trained > 0)
    q, w = cues[seen], trained[seen] / trained[seen].sum()
    target = np.array([[float(e in block) for e in seen] for block in blocks])

    def loss(x: np.ndarray) -> tuple[float, np.ndarray]:
        v = x.reshape(start.shape)
        norm = np.linalg.norm(v, axis=1, keepdims=True)
        keys = v / norm
        logits = sharpness * keys @ q.T
        log_p = logits - logsumexp(logits, axis=0)
        grad_keys = -sharpness * ((target - np.exp(log_p)) * w) @ q
        grad = (grad_keys - (grad_keys * keys).sum(axis=1, keepdims=True) * keys) / norm
        return float(-(target * log_p * w).sum()), grad.ravel()

    result = minimize(loss, start.ravel(), jac=True, method="L-BFGS-B",
                      options={"gtol": 1e-10, "maxiter": 200})
    v = result.x.reshape(start.shape)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _label(size: int, bias: float) -> str:
    if size == 1:
        return SPECIALIST
    if np.isnan(bias):
        return UNDETERMINED
    if bias >= CHURN:
        return CHURN_LABEL
    if abs(bias) <= GENERALIST:
        return GENERALIST_LABEL
    return UNDETERMINED


def learning_rule(spec: Scenario, envs: Environments, name: str) -> Rule:
    """The learning rule ``name`` of ``spec``: its constants, and for a fixed-target rule
    its target as weights over the environments of ``envs``."""
    constants = getattr(spec.circuits, name)
    target = None
    if REGISTRY[name].fixed_target:
        target = fixed_target_weights(constants.weights, envs)
    return Rule(name, constants.learning_rate, constants.consolidation, target)


def reachable_rules(spec: Scenario) -> list[str]:
    """Learning rules the population can ever hold: those it starts with, all of them if
    ``switch_rule`` can fire, and naive if ``add_child`` can."""
    start = spec.population.initial or ["R[n]", "n", "w", "g"]
    found = {LETTER_RULES[ch] for text in start for ch in text if ch in LETTER_RULES}
    operators = spec.variation.operators
    rate = spec.variation.rate
    if rate > 0 and operators.get("switch_rule", 0) > 0:
        found = set(RULES)
    if rate > 0 and operators.get("add_child", 0) > 0 and routers_reachable(spec):
        found.add("naive")
    return [r for r in RULES if r in found]


def routers_reachable(spec: Scenario) -> bool:
    """Whether a router can ever be in the population (at the start, or by ``split``)."""
    splits = spec.variation.rate > 0 and spec.variation.operators.get("split", 0) > 0
    return splits or starts_with_router(spec)


def starts_with_router(spec: Scenario) -> bool:
    """Whether the initial population holds a router (the default start does)."""
    return any("R[" in text for text in spec.population.initial or ["R[n]"])
