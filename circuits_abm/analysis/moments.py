"""One mechanism's learning on the schedule, in closed form: the moments the theory's
fitness comes from (``circuits_abm.analysis.theory``; docs/theory.md has the derivation).

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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np
from numba import njit
from scipy import sparse

from circuits_abm.analysis.chain_systems import ChainSystem
from circuits_abm.engine.environments import Environments
from circuits_abm.engine.scenario import Scenario


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

    @cached_property
    def phase_system(self) -> ChainSystem:
        """The reversed slot chain ``R_ji = pi_i T_ij / pi_j``, which draws the phase before a
        phase of slot ``j``: the matrix of the fixed-phase moment equations."""
        pi = self.slot_stationary
        reverse = (self.slot_transition * pi[:, None]).T / np.maximum(pi[:, None], 1e-300)
        return ChainSystem.of(reverse)

    @cached_property
    def step_system(self) -> ChainSystem:
        """The transposed step chain, the matrix of the step-level moment equations
        (geometric phases: stay with probability ``1 - 1/tau``, else move by the slot chain)."""
        if self.geometric:
            switch = 1.0 / self.tau
            return ChainSystem.of(self.slot_transition.T, 1.0 - switch, switch)
        return ChainSystem.of(self.transition.T)

    @cached_property
    def sparse_mix(self) -> sparse.csr_array:
        """``mix`` as a sparse matrix: each slot trains one environment or a few."""
        return sparse.csr_array(self.mix)

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
    coefficients; computed on first use, since only the recency bias of a part that serves
    several environments reads it)."""

    reward: float
    phase_end: Callable[[], np.ndarray]

    @cached_property
    def end_mean(self) -> np.ndarray:
        """Per slot, the mean parameters after the last step of a phase."""
        return self.phase_end()


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
    return rule_statistics(chain, rule, routed_drive(chain, routed, gram), gram, noise)


def rule_statistics(chain: ScheduleChain, rule: Rule, drive: Drive, gram: np.ndarray,
                    noise: float) -> LeafStatistics:
    """``leaf_statistics`` from a routing's ``drive``, which every rule shares."""
    drive = drive.for_rule(rule, gram)
    if chain.geometric:
        return step_statistics(chain, rule, drive, gram, noise)
    return phase_statistics(chain, rule, drive, gram, noise)


class Drive(NamedTuple):
    """What a mechanism learns from in each slot (or step state), as demand coefficients:
    the routed demand ``reward`` (``r``), the exposure ``x``, and ``r`` times the demand
    Gram (``reward_image``), so that every inner product in the demand metric is a row-wise
    dot product.  The target ``v`` it moves toward is ``r`` itself, or for a fixed-target
    rule ``x`` times its target ``w`` (``direction``): then every mean it reaches is a
    multiple of ``w`` too, and is kept as one number per slot (``mean``)."""

    reward: np.ndarray
    exposure: np.ndarray
    reward_image: np.ndarray
    direction: np.ndarray | None = None  # w
    direction_norm: float = 0.0  # <w, w>
    along: np.ndarray | None = None  # <r_k, w> for every slot k

    def for_rule(self, rule: Rule, gram: np.ndarray) -> Drive:
        """The drive of ``rule``: a fixed-target rule moves toward its own target, at the
        same exposure."""
        if rule.target is None:
            return self
        image = gram @ rule.target
        return self._replace(direction=rule.target, direction_norm=float(rule.target @ image),
                             along=self.reward @ image)

    def rows(self, states: np.ndarray) -> Drive:
        """The drive of each step state, given the slot of each state."""
        along = None if self.along is None else self.along[states]
        return self._replace(reward=self.reward[states], exposure=self.exposure[states],
                             reward_image=self.reward_image[states], along=along)

    def mean(self, system: ChainSystem, d: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """``M`` with ``(I - K diag(d)) M = K diag(weights) v``: a matrix, one row per slot,
        or for a fixed target the multiples of ``w``."""
        if self.direction is None:
            return system.solve(d, system.apply(weights[:, None] * self.reward))
        return system.solve(d, system.apply(weights * self.exposure))

    def products(self, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row by row, ``<M_k, r_k>`` and ``<M_k, v_k>``."""
        if self.direction is None:
            with_reward = _dot_rows(mean, self.reward_image)
            return with_reward, with_reward
        return mean * self.along, mean * self.exposure * self.direction_norm

    def target_products(self) -> tuple[np.ndarray, np.ndarray]:
        """Row by row, ``<v_k, v_k>`` and ``<v_k, r_k>``."""
        if self.direction is None:
            norm = _dot_rows(self.reward, self.reward_image)
            return norm, norm
        return self.exposure**2 * self.direction_norm, self.exposure * self.along

    def combine(self, mean: np.ndarray, of_mean: np.ndarray, of_target: np.ndarray
                ) -> np.ndarray:
        """The matrix ``of_mean * M + of_target * v``, one row per slot."""
        if self.direction is None:
            return of_mean[:, None] * mean + of_target[:, None] * self.reward
        return np.multiply.outer(of_mean * mean + of_target * self.exposure, self.direction)


def routed_drive(chain: ScheduleChain, routed: np.ndarray, gram: np.ndarray) -> Drive:
    """Per slot: the routed demand ``r = mix * routed``, the exposure ``x = sum r`` and the
    target ``r`` of a rule that learns what it is routed.  ``r @ gram`` is computed as
    ``mix @ (routed gram)`` with ``mix`` sparse: O(slots x environments)."""
    reward = chain.mix * routed[None, :]
    return Drive(reward, reward.sum(axis=1), chain.sparse_mix @ (routed[:, None] * gram))


def _dot_rows(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``sum_j left[k, j] right[k, j]`` for every row ``k``."""
    return np.einsum("ij,ij->i", left, right)


def step_statistics(chain: ScheduleChain, rule: Rule, drive: Drive, gram: np.ndarray,
                    noise: float) -> LeafStatistics:
    """The moment equations on the step-level chain.  With ``mu_s = E[theta 1{state s}]``
    and ``q_s = E[|theta|^2 1{state s}]`` before a step's learning:

    ``mu = P^T (A mu + b Pi V)`` and
    ``q = P^T (A^2 q + 2 A b <mu, V> + Pi b^2 (|V|^2 + D x^2 sigma^2))``,

    and the mean reward is ``sum_s <mu_s, r_s> - x_s q_s / 2`` with ``r_s`` the routed
    demand of state ``s``.  ``D`` (noise dimensions) is the number of environments."""
    d = drive if len(chain.slot) == len(chain.labels) else drive.rows(chain.slot)  # 1 state a slot
    c, eta = rule.consolidation, rule.learning_rate
    a = (1.0 - c) * (1.0 - eta * d.exposure)
    b = (1.0 - c) * eta
    pi = chain.stationary
    system = chain.step_system
    mu = d.mean(system, a, b * pi)
    mu_reward, mu_target = d.products(mu)
    target_norm, _ = d.target_products()
    dims = gram.shape[0]
    source = 2 * a * b * mu_target + pi * b**2 * (target_norm + dims * d.exposure**2 * noise**2)
    q = system.solve(a**2, system.apply(source))
    reward = float(mu_reward.sum() - 0.5 * d.exposure @ q)

    def phase_end() -> np.ndarray:
        after = d.combine(mu, a, b * pi)  # E[theta after the step; state s]
        slots = len(chain.labels)
        end_mean = np.zeros((slots, gram.shape[0]))
        np.add.at(end_mean, chain.slot, chain.end[:, None] * after)
        norm = np.bincount(chain.slot, chain.end * pi, minlength=slots)
        return end_mean / np.maximum(norm, 1e-300)[:, None]

    return LeafStatistics(reward, phase_end)


def phase_statistics(chain: ScheduleChain, rule: Rule, drive: Drive, gram: np.ndarray,
                     noise: float) -> LeafStatistics:
    """The moment equations for fixed phases of ``tau`` steps, one unknown per slot.

    Within a phase of slot ``i`` the conditional mean follows ``m_{u+1} = a_i m_u + b v_i``,
    so ``m_u = a_i^u m_0 + g_u v_i`` with ``g_{u+1} = a_i g_u + b``.  A phase of ``j`` starts
    from the end of the phase before it, drawn by the reversed chain
    ``R_ji = pi_i T_ij / pi_j``: ``m_0 = R (a^tau m_0 + g_tau v)``, one ``slots x slots``
    system (``ScheduleChain.phase_system``).  Second moments follow the same way with
    ``a^2`` and the cross and noise terms; the sums along a phase are
    ``first_phase_sums`` and ``second_phase_sums``."""
    c, eta = rule.consolidation, rule.learning_rate
    a = (1.0 - c) * (1.0 - eta * drive.exposure)  # (slots,)
    b = (1.0 - c) * eta
    pi = chain.slot_stationary
    sum_power, sum_g, end_power, end_g = first_phase_sums(a, b, chain.tau)
    system = chain.phase_system
    m0 = drive.mean(system, end_power, end_g)
    m0_reward, m0_target = drive.products(m0)
    target_norm, target_reward = drive.target_products()
    noise_drive = b**2 * (target_norm + gram.shape[0] * drive.exposure**2 * noise**2)
    sum_square_power, sum_h, end_square_power, end_h = second_phase_sums(
        a, b, chain.tau, m0_target, target_norm, noise_drive)
    q0 = system.solve(end_square_power, system.apply(end_h))
    sum_mean_reward = m0_reward * sum_power + target_reward * sum_g
    sum_square = q0 * sum_square_power + sum_h
    reward = float(pi @ (sum_mean_reward - 0.5 * drive.exposure * sum_square) / chain.tau)
    return LeafStatistics(reward, lambda: drive.combine(m0, end_power, end_g))


def first_phase_sums(a: np.ndarray, b: float, tau: int):
    """Per slot, along a phase of ``tau`` steps (``u = 0 .. tau-1``): the sums of ``a^u``
    and of ``g_u`` (``g_0 = 0``, ``g_{u+1} = a g_u + b``), and ``a^tau``, ``g_tau``."""
    slots = len(a)
    sum_power, sum_g, end_power, end_g = (np.zeros(slots), np.zeros(slots),
                                          np.zeros(slots), np.zeros(slots))
    for i in range(slots):
        power, g = 1.0, 0.0
        for _ in range(tau):
            sum_power[i] += power
            sum_g[i] += g
            power, g = power * a[i], a[i] * g + b
        end_power[i], end_g[i] = power, g
    return sum_power, sum_g, end_power, end_g


def second_phase_sums(a, b, tau, m0_target, target_norm, noise_drive):
    """Per slot, along a phase: the sums of ``a^(2u)`` and of the second-moment drive
    ``h_u`` (``h_0 = 0``, ``h_{u+1} = a^2 h_u + 2 a b (a^u <m_0, v> + g_u |v|^2) +
    noise_drive``), and ``a^(2 tau)``, ``h_tau``."""
    slots = len(a)
    sum_square_power, sum_h, end_square_power, end_h = (np.zeros(slots), np.zeros(slots),
                                                        np.zeros(slots), np.zeros(slots))
    for i in range(slots):
        power, g, h, square_power = 1.0, 0.0, 0.0, 1.0
        for _ in range(tau):
            sum_square_power[i] += square_power
            sum_h[i] += h
            h = (a[i] ** 2 * h + 2 * a[i] * b * (power * m0_target[i] + g * target_norm[i])
                 + noise_drive[i])
            power, g, square_power = power * a[i], a[i] * g + b, square_power * a[i] ** 2
        end_square_power[i], end_h[i] = square_power, h
    return sum_square_power, sum_h, end_square_power, end_h


def recency_bias(chain: ScheduleChain, stats: LeafStatistics, gram: np.ndarray,
                 block: tuple[int, ...]) -> float:
    """The recency bias the classifier would measure for a mechanism serving ``block``:
    at each phase end, reward on the block's trained environments minus the mean on its
    others (the squared-norm terms cancel), averaged over phases; NaN if no phase trains
    part of the block while leaving another part out."""
    columns = list(block)
    trained = chain.mix[:, columns] > 0
    count = trained.sum(axis=1)
    usable = (count > 0) & (count < len(columns)) & (chain.slot_frequency > 0)
    if not usable.any():
        return float("nan")
    fit = stats.end_mean[usable] @ gram[:, columns]  # <theta_end, d_e> for e in the block
    trained, count = trained[usable], count[usable]
    on = (fit * trained).sum(axis=1) / count
    off = (fit * ~trained).sum(axis=1) / (len(columns) - count)
    return float(np.average(on - off, weights=chain.slot_frequency[usable]))


# Compiled here rather than with decorators, as in the engine's kernels: mutation testing
# runs them as plain Python (NUMBA_DISABLE_JIT=1).
first_phase_sums = njit(cache=True)(first_phase_sums)
second_phase_sums = njit(cache=True)(second_phase_sums)
