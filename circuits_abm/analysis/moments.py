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

from dataclasses import dataclass
from functools import cached_property

import numpy as np

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
    mu_target, mu_reward = _inner(mu, gram, target, reward_vec)
    (target_norm,) = _inner(target, gram, target)
    dims = gram.shape[0]
    source = 2 * a * b * mu_target + pi * b**2 * (target_norm + dims * exposure**2 * noise**2)
    q = np.linalg.solve(np.eye(n_states) - pt * (a**2)[None, :], pt @ source)
    reward = float(mu_reward.sum() - 0.5 * exposure @ q)
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
    m0_target, m0_reward = _inner(m0, gram, target, reward_vec)
    target_norm, target_reward = _inner(target, gram, target, reward_vec)
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


def _inner(left: np.ndarray, gram: np.ndarray, *rights: np.ndarray) -> tuple[np.ndarray, ...]:
    """For each of ``rights``, row by row ``<left_k, right_k>`` in the demand Gram metric,
    from one matrix product ``left @ gram`` (a three-operand einsum loops over every index
    triple, cubic in the environments)."""
    product = left @ gram
    return tuple((product * right).sum(axis=1) for right in rights)


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
