"""A theory of the regime boundaries: which structure should win, from a scenario alone.

Selection is an exponential replicator, so over a long run a circuit's log share grows by
``strength`` times the sum of its fitness: the structure with the highest *long-run mean
fitness* takes over.  This module computes that mean, in closed form up to linear solves,
for every candidate structure, and predicts the regime tree the classifier should read
(``docs/theory.md`` has the derivation).  It never runs the simulation.

The pieces:

* **The schedule as a Markov chain** (``schedule_chain``).  A *slot* is what a phase
  trains (an environment or a mixture); cycles, uniform draws and walks are transition
  matrices between slots.  Fixed phase lengths become states ``(slot, step in phase)``,
  geometric ones a chain that leaves its slot with probability ``1/tau`` per step.
* **A mechanism's learning as a Markov jump linear system** (``leaf_statistics``).  In
  state ``s`` a mechanism sees exposure ``x_s`` (the routed weight of what is trained) and
  moves ``theta <- a_s theta + b v_s + b x_s xi`` with ``a_s = (1 - c)(1 - eta x_s)`` and
  ``b = (1 - c) eta``.  The stationary first moments (per state) and second moments (one
  number per state) solve two linear systems; the mean reward follows from them, and so do
  the parameters at each phase end, which give the recency bias the classifier will see.
  Vectors are kept as coefficients over the demand vectors, with the demand Gram as inner
  product, so nothing depends on how the Gram matrix was factorised.
* **Candidates** (``predict``).  One shared mechanism (each learning rule the scenario
  can reach), and, if routers can arise, a router over every partition of the training
  environments (every partition up to six environments, cuts of a similarity dendrogram
  beyond), each part served by its best mechanism.  Routing uses contrast keys (a part's
  mean cue minus the mean cue) at the sharpness routers are born with (or, on request, the
  sharpness that maximises reward minus its cost, or the keys that noiseless key learning
  settles on); misrouted steps teach the wrong child.
* **Labels.**  A part with one environment is a ``specialist``; a mechanism serving several
  is a ``strategy_churn`` or ``ecological_generalist`` by its predicted recency bias, with
  the classifier's own thresholds (the theory predicts what the classifier will measure).

What the theory leaves out, on purpose: the path (variation must find a structure, and with
``gamma > 0`` a newborn router learns at its share to the power gamma; ``assembly`` models
how often runs reach a predicted router and keep it), selection among near-identical
variants (which trims the noise a little), and nested routers (a flat router over a finer
partition stands in for them).  ``docs/theory.md`` compares it with sweeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache, cached_property
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
from circuits_abm.engine.environments import Environments, apply_intervention, build_environments
from circuits_abm.engine.loading import scenario_from_dict
from circuits_abm.engine.rules import LETTER_RULES, REGISTRY, RULES, fixed_target_weights
from circuits_abm.engine.scenario import Scenario

EXACT_PARTITIONS_UP_TO = 6  # Bell(6) = 203 partitions; beyond, dendrogram cuts
SHARPNESS_GRID = 24  # sharpness values tried per router with sharpness="optimal"
MAX_ASSEMBLY_PARTS = 8  # the split path is traced for predicted routers up to this size


# --------------------------------------------------------------------------- the schedule


@dataclass(frozen=True)
class ScheduleChain:
    """The schedule as a stationary Markov chain.

    ``mix[i]`` is what slot ``i`` trains (weights over environments, summing to 1);
    ``slot_transition[i, j]`` the probability that a phase of slot ``j`` follows one of
    ``i``, ``slot_stationary`` how often each slot is trained; phases last ``tau`` steps, or
    a geometric number of steps with mean ``tau`` when ``geometric``.  The step-level chain
    (``slot``, ``transition``, ``stationary``, ``end``) is built on demand.
    """

    labels: tuple[str, ...]
    mix: np.ndarray
    slot_transition: np.ndarray
    slot_stationary: np.ndarray
    tau: int
    geometric: bool

    @property
    def slot_frequency(self) -> np.ndarray:
        """Share of phases (hence of classifier measurements) in each slot."""
        return self.slot_stationary

    @cached_property
    def _steps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        k, tau = len(self.labels), self.tau
        if self.geometric:
            switch = 1.0 / tau
            transition = (1.0 - switch) * np.eye(k) + switch * self.slot_transition
            return np.arange(k), transition, self.slot_stationary, np.full(k, switch)
        states = k * tau
        transition = np.zeros((states, states))
        for i in range(k):
            for u in range(tau - 1):
                transition[i * tau + u, i * tau + u + 1] = 1.0
            transition[i * tau + tau - 1, np.arange(k) * tau] = self.slot_transition[i]
        end = np.tile((np.arange(tau) == tau - 1).astype(float), k)
        return (np.repeat(np.arange(k), tau), transition,
                np.repeat(self.slot_stationary / tau, tau), end)

    @property
    def slot(self) -> np.ndarray:
        """Slot of each step state: ``(slot, step in phase)`` for fixed phases."""
        return self._steps[0]

    @property
    def transition(self) -> np.ndarray:
        """Step-to-step transition matrix between step states."""
        return self._steps[1]

    @property
    def stationary(self) -> np.ndarray:
        """How often the chain is in each step state."""
        return self._steps[2]

    @property
    def end(self) -> np.ndarray:
        """Probability that a phase ends after a step in each state (where the classifier
        measures)."""
        return self._steps[3]


def schedule_chain(spec: Scenario, envs: Environments) -> ScheduleChain:
    """The stationary chain of ``spec``'s schedule (a ``sequence`` holds its last phase)."""
    labels, slot_transition, slot_stationary = _slots(spec, envs)
    mix = np.array([_slot_weights(spec, envs, label) for label in labels])
    geometric = spec.schedule.phase_length_distribution == "geometric"
    return ScheduleChain(tuple(labels), mix, slot_transition, slot_stationary,
                         spec.schedule.phase_length, geometric)


def _slots(spec: Scenario, envs: Environments) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Slot labels, slot-to-slot transition matrix at a phase switch, stationary law."""
    schedule = spec.schedule
    training = [envs.names[i] for i in envs.training]
    if schedule.order == "sequence":
        return [schedule.sequence[-1]], np.ones((1, 1)), np.ones(1)
    if schedule.order == "cycle":
        items = list(schedule.sequence or training)
        k = len(items)
        return items, np.roll(np.eye(k), 1, axis=1), np.full(k, 1.0 / k)
    k = len(training)
    if schedule.order == "uniform":
        return training, np.full((k, k), 1.0 / k), np.full(k, 1.0 / k)
    graph = envs.graph.subgraph(training)
    weights = np.zeros((k, k))
    for a, b, data in graph.edges(data=True):
        weights[training.index(a), training.index(b)] = data["weight"]
        weights[training.index(b), training.index(a)] = data["weight"]
    strength = weights.sum(axis=1)
    return training, weights / strength[:, None], strength / strength.sum()


def _slot_weights(spec: Scenario, envs: Environments, label: str) -> np.ndarray:
    weights = np.zeros(envs.size)
    mixture = spec.schedule.mixtures.get(label)
    if mixture is None:
        weights[envs.index(label)] = 1.0
        return weights
    for name, w in mixture.items():
        weights[envs.index(name)] = w
    return weights / weights.sum()


# --------------------------------------------------------------------------- one mechanism


@dataclass(frozen=True)
class Rule:
    """A mechanism learning rule: rate, consolidation, and its fixed target if it has one."""

    name: str
    learning_rate: float
    consolidation: float
    target: np.ndarray | None = None  # demand coefficients of a fixed-target rule's target


@dataclass(frozen=True)
class LeafStatistics:
    """Stationary statistics of one mechanism: its mean reward per step (routed share only)
    and, per slot, the mean of its parameters after the last step of a phase (as demand
    coefficients)."""

    reward: float
    end_mean: np.ndarray


def leaf_statistics(
    chain: ScheduleChain,
    rule: Rule,
    routed: np.ndarray,
    gram: np.ndarray,
    noise: float,
) -> LeafStatistics:
    """Solve the mechanism's moment equations (see the module docstring).

    ``routed[e]`` is the probability that the mechanism is routed to in environment ``e``
    (1 for a lone mechanism).  Fixed phase lengths are solved slot by slot
    (``phase_statistics``, a system the size of the number of slots), geometric ones
    on the step-level chain (``step_statistics``); the two agree where both apply.
    """
    if chain.geometric:
        return step_statistics(chain, rule, routed, gram, noise)
    return phase_statistics(chain, rule, routed, gram, noise)


def _inputs(mix: np.ndarray, rule: Rule, routed: np.ndarray):
    """Per row of ``mix``: the routed demand ``r``, the exposure ``x`` and the target ``v``."""
    reward_vec = mix * routed[None, :]
    exposure = reward_vec.sum(axis=1)
    fixed = rule.target is not None  # a weighted optimiser learns toward its fixed target
    target = exposure[:, None] * rule.target[None, :] if fixed else reward_vec
    return reward_vec, exposure, target


def step_statistics(chain: ScheduleChain, rule: Rule, routed: np.ndarray, gram: np.ndarray,
                    noise: float) -> LeafStatistics:
    """The moment equations on the step-level chain.  With ``mu_s = E[theta 1{state s}]``
    and ``q_s = E[|theta|^2 1{state s}]`` before a step's learning:

    ``mu = P^T (A mu + b Pi V)`` and
    ``q = P^T (A^2 q + 2 A b <mu, V> + Pi b^2 (|V|^2 + D x^2 sigma^2))``,

    and the mean reward is ``sum_s <mu_s, r_s> - x_s q_s / 2`` with ``r_s`` the routed
    demand of state ``s``.  ``D`` (noise dimensions) is the number of environments."""
    reward_vec, exposure, target = _inputs(chain.mix[chain.slot], rule, routed)
    c, eta = rule.consolidation, rule.learning_rate
    a = (1.0 - c) * (1.0 - eta * exposure)
    b = (1.0 - c) * eta
    pi = chain.stationary
    pt = chain.transition.T
    n_states = len(pi)
    mu = np.linalg.solve(np.eye(n_states) - pt * a[None, :], b * pt @ (pi[:, None] * target))
    mu_target = np.einsum("sn,nm,sm->s", mu, gram, target)
    target_norm = np.einsum("sn,nm,sm->s", target, gram, target)
    dims = gram.shape[0]
    source = 2 * a * b * mu_target + pi * b**2 * (target_norm + dims * exposure**2 * noise**2)
    q = np.linalg.solve(np.eye(n_states) - pt * (a**2)[None, :], pt @ source)
    reward = float(np.einsum("sn,nm,sm->", mu, gram, reward_vec) - 0.5 * exposure @ q)
    after = a[:, None] * mu + b * pi[:, None] * target  # E[theta after the step; state s]
    weight = chain.end * pi
    slots = len(chain.labels)
    end_mean = np.zeros((slots, gram.shape[0]))
    np.add.at(end_mean, chain.slot, chain.end[:, None] * after)
    norm = np.bincount(chain.slot, weight, minlength=slots)
    return LeafStatistics(reward, end_mean / np.maximum(norm, 1e-300)[:, None])


def phase_statistics(chain: ScheduleChain, rule: Rule, routed: np.ndarray, gram: np.ndarray,
                     noise: float) -> LeafStatistics:
    """The moment equations for fixed phases of ``tau`` steps, one unknown per slot.

    Within a phase of slot ``i`` the conditional mean follows ``m_{u+1} = a_i m_u + b v_i``,
    so ``m_u = a_i^u m_0 + g_u v_i`` with ``g_{u+1} = a_i g_u + b``.  A phase of ``j`` starts
    from the end of the phase before it, drawn by the reversed chain
    ``R_ji = pi_i T_ij / pi_j``: ``m_0 = R (a^tau m_0 + g_tau v)``, one ``slots x slots``
    solve.  Second moments follow the same way with ``a^2`` and the cross and noise terms,
    and the per-step sums over a phase are accumulated along ``u``."""
    reward_vec, exposure, target = _inputs(chain.mix, rule, routed)
    c, eta = rule.consolidation, rule.learning_rate
    a = (1.0 - c) * (1.0 - eta * exposure)  # (slots,)
    b = (1.0 - c) * eta
    pi = chain.slot_stationary
    reverse = (chain.slot_transition * pi[:, None]).T / np.maximum(pi[:, None], 1e-300)
    tau, slots = chain.tau, len(pi)
    # per-slot sums along the phase of a^u, g_u, a^(2u) and the second-moment drive h_u
    power, g = np.ones(slots), np.zeros(slots)
    sum_power, sum_g = np.zeros(slots), np.zeros(slots)
    for _ in range(tau):
        sum_power += power
        sum_g += g
        power, g = power * a, a * g + b
    end_power, end_g = power, g  # a^tau and g_tau
    eye = np.eye(slots)
    m0 = _solve(eye - reverse * end_power[None, :], reverse @ (end_g[:, None] * target))
    m_end = end_power[:, None] * m0 + end_g[:, None] * target
    m0_target = np.einsum("kn,nm,km->k", m0, gram, target)
    m0_reward = np.einsum("kn,nm,km->k", m0, gram, reward_vec)
    target_norm = np.einsum("kn,nm,km->k", target, gram, target)
    target_reward = np.einsum("kn,nm,km->k", target, gram, reward_vec)
    drive = b**2 * (target_norm + gram.shape[0] * exposure**2 * noise**2)
    power, g, h = np.ones(slots), np.zeros(slots), np.zeros(slots)
    square_power, sum_square_power, sum_h = np.ones(slots), np.zeros(slots), np.zeros(slots)
    for _ in range(tau):
        sum_square_power += square_power
        sum_h += h
        h = a**2 * h + 2 * a * b * (power * m0_target + g * target_norm) + drive
        power, g, square_power = power * a, a * g + b, square_power * a**2
    q0 = _solve(eye - reverse * square_power[None, :], reverse @ h)
    sum_mean_reward = m0_reward * sum_power + target_reward * sum_g
    sum_square = q0 * sum_square_power + sum_h
    reward = float(pi @ (sum_mean_reward - 0.5 * exposure * sum_square) / tau)
    return LeafStatistics(reward, m_end)


def _solve(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``matrix^-1 rhs``; least squares when a mechanism is never exposed (singular)."""
    try:
        return np.linalg.solve(matrix, rhs)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(matrix, rhs, rcond=None)[0]


def recency_bias(chain: ScheduleChain, stats: LeafStatistics, gram: np.ndarray,
                 block: tuple[int, ...]) -> float:
    """The recency bias the classifier would measure for a mechanism serving ``block``:
    at each phase end, reward on the block's trained environments minus the mean on its
    others (the squared-norm terms cancel), averaged over phases; NaN if no phase trains
    part of the block while leaving another part out."""
    frequency = chain.slot_frequency
    biases, weights = [], []
    for i in range(len(chain.labels)):
        trained = [e for e in block if chain.mix[i, e] > 0]
        others = [e for e in block if chain.mix[i, e] == 0]
        if trained and others and frequency[i] > 0:
            fit = stats.end_mean[i] @ gram  # <theta_end, d_e> for every e
            biases.append(fit[trained].mean() - fit[others].mean())
            weights.append(frequency[i])
    return float(np.average(biases, weights=weights)) if biases else float("nan")


# --------------------------------------------------------------------------- candidates


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


@dataclass(frozen=True)
class Prediction:
    """The predicted regime: the best candidate, its margin, and every distinct rival.

    ``print(prediction)`` (or ``describe``) explains it: each part's rule and reward,
    the margin, and the nearest rivals.  ``critical_environments`` is set when
    ``predict`` was asked for it; ``assembly_valley`` is the deepest fitness dip on the
    cheapest path of variation steps that assembles a predicted router (None without one).
    """

    best: Candidate
    rivals: tuple[Candidate, ...]  # the best candidate of every other canonical structure
    critical_environments: int | None = None
    assembly_valley: float | None = None  # see split_path; None when no router is predicted
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def structure(self) -> str:
        """The canonical structure string of the fittest candidate."""
        return self.best.canonical()

    @property
    def regime(self) -> str:
        """The regime of the fittest candidate."""
        return self.best.regime

    @property
    def margin(self) -> float:
        """Fitness per step by which the best beats the best different structure."""
        return self.best.fitness - self.rivals[0].fitness if self.rivals else float("inf")

    @property
    def recency_margin(self) -> float:
        """Smallest distance of a predicted recency bias from the classifier's thresholds
        (infinite when no part is labelled by recency)."""
        distances = [
            min(abs(p.recency_bias - CHURN), abs(abs(p.recency_bias) - GENERALIST))
            for p in self.best.parts
            if len(p.environments) > 1 and not np.isnan(p.recency_bias)
        ]
        return min(distances, default=float("inf"))

    def to_dict(self) -> dict[str, Any]:
        """The prediction as a JSON-able dict (what ``summary.json`` stores)."""
        return {
            "regime": self.regime,
            "structure": self.structure,
            "fitness": round(self.best.fitness, 6),
            "margin": None if np.isinf(self.margin) else round(self.margin, 6),
            "recency_margin": (
                None if np.isinf(self.recency_margin) else round(self.recency_margin, 4)
            ),
            "critical_environments": self.critical_environments,
            "assembly_valley": (
                None if self.assembly_valley is None else round(self.assembly_valley, 6)
            ),
            "best": self.best.to_dict(),
            "rivals": [c.to_dict() for c in self.rivals],
            "notes": list(self.notes),
        }

    def describe(self, title: str = "", rivals: int = 4) -> str:
        """A few readable lines: the structure, each part's rule, reward and label, the
        margin over the next ``rivals`` structures, and the notes (what `predict` prints)."""
        title = title or "predicted"
        best = self.best
        lines = [f"{title}: {self.structure}"]
        router = f" (a router at sharpness {best.sharpness:g})" if best.is_router else ""
        lines.append(f"  long-run mean fitness {best.fitness:.4f} per step{router}")
        for part in best.parts:
            bias = (
                "" if np.isnan(part.recency_bias)
                else f", recency bias {part.recency_bias:+.2f}"
            )
            lines.append(
                f"    {{{','.join(part.environments)}}}: {part.rule} rule, "
                f"reward {part.reward:.4f}/step{bias} -> {part.label}"
            )
        if self.rivals:
            lines.append(f"  margin {self.margin:.4f} per step over the next structure")
            lines.extend(
                f"    {c.fitness:.4f}  {c.canonical()}" for c in self.rivals[:rivals]
            )
        if self.assembly_valley is not None:
            valley = self.assembly_valley
            lines.append(
                "  assembly by splits: " + (
                    "uphill all the way" if valley == 0 else
                    f"through a fitness valley {valley:.4f} deep "
                    "(the deeper, the rarer it is found)"
                )
            )
        if np.isfinite(self.recency_margin):
            lines.append(f"  nearest recency threshold: {self.recency_margin:.3f} away")
        if self.critical_environments is not None:
            lines.append(
                "  critical number of environments at this global geometry: "
                f"{self.critical_environments} (from there on, one mechanism beats one "
                "specialist per environment)"
            )
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.describe()

    def __repr__(self) -> str:
        return (
            f"Prediction({self.structure}, fitness={self.best.fitness:.4f}, "
            f"margin={self.margin:.4f})"
        )


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
        self.rules = [_rule(spec, envs, name) for name in reachable_rules(spec)]
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
            options = [
                (rule, leaf_statistics(self.chain, rule, routed, self.gram, self.noise))
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


def _rule(spec: Scenario, envs: Environments, name: str) -> Rule:
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
    start = spec.population.initial or ["R[n]"]
    splits = spec.variation.rate > 0 and spec.variation.operators.get("split", 0) > 0
    return splits or any("R[" in text for text in start)


# --------------------------------------------------------------------------- partitions


def set_partitions(items: tuple[int, ...]):
    """Every partition of ``items`` into non-empty blocks (Bell-number many)."""
    if not items:
        yield ()
        return
    first, rest = items[0], items[1:]
    for partition in set_partitions(rest):
        for i in range(len(partition)):
            yield partition[:i] + ((first, *partition[i]),) + partition[i + 1:]
        yield ((first,), *partition)


def candidate_partitions(problem: Problem) -> list[tuple[tuple[int, ...], ...]]:
    """Partitions of the training environments to evaluate: all of them for up to
    ``EXACT_PARTITIONS_UP_TO`` environments; beyond, the cuts of an average-linkage
    dendrogram on demand-plus-cue similarity (environments that share demands or cannot
    be told apart go together first), into 1, 2, ..., N parts."""
    training = problem.training
    if len(training) <= EXACT_PARTITIONS_UP_TO:
        partitions = [tuple(sorted(tuple(sorted(b)) for b in p)) for p in set_partitions(training)]
        return sorted(set(partitions), key=lambda p: (len(p), p))
    from scipy.cluster.hierarchy import fcluster, linkage  # noqa: PLC0415
    from scipy.spatial.distance import squareform  # noqa: PLC0415

    idx = list(training)
    similarity = problem.gram[np.ix_(idx, idx)] + problem.envs.cue_similarity[np.ix_(idx, idx)]
    distance = np.clip(2.0 - similarity, 0.0, None)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    partitions = set()
    for k in range(1, len(idx) + 1):
        labels = fcluster(tree, k, criterion="maxclust")
        blocks = [tuple(sorted(e for e, lab in zip(idx, labels, strict=True) if lab == c))
                  for c in sorted(set(labels))]
        partitions.add(tuple(sorted(blocks)))
    partitions.add(tuple((e,) for e in idx))
    return sorted(partitions, key=lambda p: (len(p), p))


# --------------------------------------------------------------------------- prediction


def predict(
    spec: Scenario, at: str = "end", critical: bool = False, sharpness: str = "birth",
    keys: str = "birth",
) -> Prediction:
    """The regime the theory predicts for ``spec``, from its parameters alone.

    Every candidate structure (a single mechanism, or a router over a partition of the
    training environments, each part with its best learning rule) gets its long-run mean
    fitness in closed form; the fittest is the prediction, and each part is labelled as
    the classifier would label it (docs/theory.md derives the terms).

    Parameters
    ----------
    spec
        The scenario.
    at
        ``"end"`` (default): the geometry after every intervention; ``"start"``: before any.
    critical
        Also compute the critical number of environments of the scenario's global
        geometry (the smallest N at which a router beats a single mechanism).
    sharpness
        ``"birth"`` (default) evaluates routers at the sharpness they are born with,
        ``initial_sharpness``: the model changes it only by rare log-normal perturbations,
        and over a run it stays within about a factor of two.  ``"optimal"`` lets every
        router take the sharpness (up to ``max_sharpness``) that maximises its fitness:
        the limit if sharpness evolved freely.
    keys
        ``"birth"`` (default) routes with the contrast keys routers are born with.
        ``"learned"`` uses the keys noiseless key learning settles on (``learned_keys``):
        the limit if keys learned without gradient noise.  It rates routers over churning
        parts fairly (their contrast keys route poorly), and makes routing inside clusters
        of near-identical cues about as fit as churning there, which the simulation does
        not bear out (docs/theory.md, section 6).

    Returns
    -------
    Prediction
        ``regime``, ``structure``, ``margin`` over the best different structure, every
        rival, and notes on what the theory leaves out; ``print()`` it for a readable
        account.

    Examples
    --------
    >>> import circuits_abm as ca
    >>> prediction = ca.predict(ca.load_scenario("standard"))
    >>> prediction.regime
    'conditional_policy'
    >>> prediction.margin > 0
    True
    >>> similar = ca.override(ca.load_scenario("standard"), {"geometry.sharing": 0.95})
    >>> ca.predict(similar).regime
    'ecological_generalist'
    """
    envs = geometry_at(spec, at)
    problem = Problem(spec, envs, sharpness, keys)
    partitions = candidate_partitions(problem)
    if not routers_reachable(spec):
        partitions = [p for p in partitions if len(p) == 1]
    candidates = sorted((problem.candidate(p) for p in partitions), key=lambda c: -c.fitness)
    best, rivals, seen = candidates[0], [], {candidates[0].canonical()}
    for c in candidates[1:]:
        if c.canonical() not in seen:
            seen.add(c.canonical())
            rivals.append(c)
    notes = []
    if spec.motivations:
        notes.append("motivations and the monitor are not modelled: the prediction is for the "
                     "capability demands alone")
    if spec.learning.gamma > 0:
        notes.append(
            f"gamma = {spec.learning.gamma}: the prediction is for the steady state of a "
            "dominant circuit; a newborn router learns at share**gamma, which the theory "
            "does not model"
        )
    if keys == "learned":
        notes.append("keys: where noiseless key learning settles, an upper bound on routing")
    n_star = critical_environments(spec) if critical else None
    valley = None
    if best.is_router and len(best.parts) <= MAX_ASSEMBLY_PARTS:
        blocks = tuple(tuple(envs.index(n) for n in p.environments) for p in best.parts)
        valley = fitness_valley(split_path(spec, blocks, at, sharpness))
    return Prediction(best, tuple(rivals), n_star, valley, tuple(notes))


def geometry_at(spec: Scenario, at: str) -> Environments:
    """The environment geometry at the start of a run or after all its interventions."""
    if at not in ("start", "end"):
        raise ValueError(f"at must be 'start' or 'end' (got {at!r})")
    envs = build_environments(spec)
    if at == "end":
        for iv in sorted(spec.interventions, key=lambda iv: iv.step):
            envs = apply_intervention(envs, iv)
    return envs


# --------------------------------------------------------------------------- assembly


def split_path(spec: Scenario, blocks: tuple[tuple[int, ...], ...], at: str = "end",
               sharpness: str = "birth") -> list[float]:
    """Fitness along the cheapest way variation can build a router over ``blocks``
    (``split_path_blocks``).  A path that first goes down crosses a *fitness valley*:
    selection removes the intermediate routers, so variation rarely assembles the router
    even when it is the best structure.  Routers on the path keep the keys they are born
    with: an intermediate must survive selection before its keys can learn.  Returns the
    fitness of each structure on the path."""
    problem = Problem(spec, geometry_at(spec, at), sharpness)
    return [problem.candidate(b).fitness for b in split_path_blocks(problem, blocks)]


def split_path_blocks(problem: Problem, blocks: tuple[tuple[int, ...], ...]
                      ) -> list[tuple[tuple[int, ...], ...]]:
    """The partitions along the cheapest way to a router over ``blocks``: start from one
    shared mechanism and split off one part at a time (as the ``split`` operator does,
    keyed on one context against the rest), always taking the split that leaves the
    fittest structure.  The part still to be split is always the last block."""
    rest = tuple(sorted(e for block in blocks for e in block))
    done: tuple[tuple[int, ...], ...] = ()
    remaining = [tuple(sorted(b)) for b in blocks]
    path = [(rest,)]
    while len(remaining) > 1:
        options = []
        for part in remaining:
            left = tuple(e for e in rest if e not in part)
            options.append((problem.candidate((*done, part, left)).fitness, part, left))
        _, part, rest = max(options)
        done += (part,)
        remaining.remove(part)
        path.append((*done, rest))
    return path


def fitness_valley(path: list[float]) -> float:
    """How far the path dips below its start before it first climbs back above it (0 when it
    never dips)."""
    start, lowest = path[0], path[0]
    for value in path[1:]:
        if value >= start:
            break
        lowest = min(lowest, value)
    return start - lowest


# --------------------------------------------------------------------------- critical N


def homogeneous_variant(spec: Scenario, n: int) -> Scenario:
    """``spec`` with ``n`` interchangeable environments at its global sharing and
    distinguishability (a walk becomes a walk on the complete graph, a sequence a cycle)."""
    data = spec.model_dump(mode="json")
    names = [f"e{i:02d}" for i in range(n)]
    data["environments"] = [{"name": name} for name in names]
    data["edges"] = []
    data["interventions"] = []
    data["geometry"] = {
        "sharing": spec.geometry.sharing,
        "distinguishability": spec.geometry.distinguishability,
    }
    schedule = data["schedule"]
    schedule.update(sequence=None, start=None, mixtures={})
    if schedule["order"] == "sequence":
        schedule["order"] = "cycle"
    if schedule["order"] == "walk":
        data["edges"] = [{"source": a, "target": b} for i, a in enumerate(names)
                         for b in names[i + 1:]]
    data["circuits"]["weighted"]["weights"] = None
    data["population"]["initial"] = None
    return scenario_from_dict(data, source=f"{spec.name} with {n} environments")


def specialists_minus_one_mechanism(spec: Scenario, n: int) -> float:
    """Fitness of one specialist per environment minus that of the best single mechanism,
    in the homogeneous variant with ``n`` environments.  By symmetry every specialist earns
    the same, so one is solved and multiplied."""
    variant = homogeneous_variant(spec, n)
    problem = Problem(variant, build_environments(variant))
    blocks = tuple((e,) for e in problem.training)
    costs = variant.costs
    best = -np.inf
    for beta in problem.sharpness:
        routed = routing(problem.envs.cues, blocks, problem.training, beta, problem.trained)
        _, stats = problem.best_leaf(routed[0])
        fitness = n * stats.reward - n * costs.per_mechanism - costs.per_sharpness * beta
        best = max(best, fitness)
    return best - problem.candidate((problem.training,)).fitness


@cache
def _critical(spec_json: str, largest: int) -> int | None:
    spec = Scenario.model_validate_json(spec_json)
    if not routers_reachable(spec):
        return None
    if spec.geometry.sharing < 0:  # n vectors can conflict pairwise by at most -1/(n-1)
        largest = min(largest, int(1 + 1 / -spec.geometry.sharing))
    gap = lambda n: specialists_minus_one_mechanism(spec, n)  # noqa: E731
    if gap(2) <= 0:
        return 2
    if gap(largest) > 0:
        return None
    low, high = 2, largest  # gap(low) > 0 >= gap(high)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if gap(mid) > 0 else (low, mid)
    return high


def critical_environments(spec: Scenario, largest: int = 64) -> int | None:
    """The critical number of environments: the smallest N at which, with N interchangeable
    environments at the scenario's global geometry, one specialist per environment no
    longer beats the best single mechanism (costs grow with N, the loss from sharing one
    mechanism does not).  2 if specialists never win, None if they still win at ``largest``
    (or no router can arise; with negative global sharing, ``largest`` shrinks to the most
    environments that can all conflict that much).  Found by bisection, assuming one
    crossing."""
    return _critical(spec.model_dump_json(), largest)
