"""The coupled gradient flow of reward-seeking propensity, reward-seeking skill and local skill.

Per environment ``e`` (a reconstruction of the behavioural-selection essay, whose formulas
were lost; see docs/reward_seeking.md):
propensity ``p_e = σ(z_e)``, reward-seeking skill ``S_e = σ(a_e)``, local skill
``L_e = σ(b_e)``, expected reward ``R_e = p_e S_e + (1 - p_e) L_e``, and::

    dz_e/dt = Σ_f C^z_ef α^z_f p_f (1 - p_f) (S_f - L_f)
    da_e/dt = Σ_f C^S_ef α^S_f p_f S_f (1 - S_f)
    db_e/dt = Σ_f C^L_ef α^L_f (1 - p_f) L_f (1 - L_f)

State arrays are ``(N, B)``: N environments, B initial conditions integrated together over
the same environments (so one kernel product serves every prior of a sweep).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit

from circuits_abm.reward_seeking.couplings import Coupling, Homogeneous

HORIZON = 1000.0  # "training until saturation", in units where one environment has α^z = 1
MAX_MOVE = 0.1  # Euler step: no logit moves by more than this per step
MAX_STEP = 5.0  # ... and no step is longer than this (in normalised time)
TOLERANCE = 1e-6  # early stop: every p, S, L changes by less than this per unit time


@dataclass(frozen=True, eq=False)
class System:
    """Initial logits ``(N, B)``, learnabilities ``(N,)`` and couplings of N environments."""

    z: np.ndarray
    a: np.ndarray
    b: np.ndarray
    alpha_z: np.ndarray
    alpha_s: np.ndarray
    alpha_l: np.ndarray
    c_z: Coupling
    c_s: Coupling
    c_l: Coupling

    @property
    def size(self) -> int:
        """The number of environments."""
        return self.z.shape[0]


@dataclass(frozen=True)
class Trajectory:
    """Final logits of an integration; per initial condition (column), how far in time it
    ran and whether it came to rest; and how many batched Euler steps it took in all."""

    z: np.ndarray
    a: np.ndarray
    b: np.ndarray
    time: np.ndarray  # (B,)
    converged: np.ndarray  # (B,) bool
    steps: int

    @property
    def propensity(self) -> np.ndarray:
        """The reward-seeking propensity sigmoid(z) at each time and environment."""
        return expit(self.z)

    @property
    def mean_propensity(self) -> np.ndarray:
        """The trained model's average reward-seeking propensity, per initial condition."""
        return expit(self.z).mean(axis=0)


def _flow(system: System, p, s, l_):
    """(dz, da, db) from the probabilities.  Couplings shared between properties (the same
    object, as when two length scales are equal) are applied once to the stacked sources."""
    sources = (
        (system.c_z, system.alpha_z[:, None] * p * (1 - p) * (s - l_)),
        (system.c_s, system.alpha_s[:, None] * p * s * (1 - s)),
        (system.c_l, system.alpha_l[:, None] * (1 - p) * l_ * (1 - l_)),
    )
    sharing: dict[int, list[int]] = {}  # coupling -> the properties it moves
    for i, (coupling, _) in enumerate(sources):
        sharing.setdefault(id(coupling), []).append(i)
    out: list[np.ndarray | None] = [None] * 3
    for members in sharing.values():
        parts = [sources[i][1] for i in members]
        product = sources[members[0]][0].apply(np.hstack(parts) if len(parts) > 1 else parts[0])
        for i, part in zip(members, np.hsplit(product, len(members)), strict=True):
            out[i] = part
    return tuple(out)


REST_CHECK_EVERY = 10  # steps between early-stop checks


def integrate(
    system: System,
    horizon: float = HORIZON,
    max_move: float = MAX_MOVE,
    max_step: float = MAX_STEP,
    tol: float = TOLERANCE,
    max_steps: int = 100_000,
) -> Trajectory:
    """Explicit Euler to ``horizon``, stopping early once nothing moves.

    The step is the largest that moves no logit by more than ``max_move`` (capped at
    ``max_step``).  Couplings make a property learn ``Σ_f C_ef α_f`` times faster than
    alone, which grows with N, so a fixed step would have to shrink like 1/N; this step
    instead follows the actual speed: short while a transferred property races, long once
    it has saturated.

    Columns (initial conditions) share the couplings but not their dynamics, so each takes
    its own step and keeps its own clock: a column whose propensity races does not slow the
    others down, which roughly halves the steps of a batch of priors that cross at
    different times.  A column stops at the horizon or once every propensity and skill in
    it changes by less than ``tol`` per unit time (the chain rule through the sigmoid gives
    those rates); finished columns drop out of the batch.
    """
    z, a, b = system.z.copy(), system.a.copy(), system.b.copy()
    time = np.zeros(z.shape[1])
    converged = np.zeros(z.shape[1], dtype=bool)
    active = np.arange(z.shape[1])
    steps = 0
    while active.size and steps < max_steps:
        za, aa, ba = z[:, active], a[:, active], b[:, active]
        p, s, l_ = expit(za), expit(aa), expit(ba)
        dz, da, db = _flow(system, p, s, l_)
        if steps % REST_CHECK_EVERY == 0:
            converged[active] = _at_rest(((p, dz), (s, da), (l_, db)), tol)
        fastest = np.max([np.abs(dz).max(axis=0), np.abs(da).max(axis=0),
                          np.abs(db).max(axis=0)], axis=0)
        with np.errstate(divide="ignore"):
            step = np.minimum(np.minimum(max_step, max_move / fastest), horizon - time[active])
        step[converged[active]] = 0.0
        z[:, active] = za + step * dz
        a[:, active] = aa + step * da
        b[:, active] = ba + step * db
        time[active] += step
        steps += 1
        active = active[~converged[active] & (time[active] < horizon)]
    return Trajectory(z, a, b, time, converged, steps)


def _at_rest(pairs, tol) -> np.ndarray:
    """Per column: every probability ``x = σ(logit)`` changes by less than ``tol``, that is
    ``|x (1 - x) rate| <= tol``."""
    return np.logical_and.reduce(
        [np.max(np.abs(prob * (1 - prob) * rate), axis=0) <= tol for prob, rate in pairs])


# --------------------------------------------------------------------------- one environment


@dataclass(frozen=True)
class Initial:
    """Initial propensity and skills (probabilities), shared by every environment's mean."""

    prior: float = 0.01  # reward-seeking propensity p: very low
    skill_rs: float = 0.5  # reward-seeking skill S
    skill_local: float = 0.2  # local skill L: a positive skill gap S - L


DEFAULT_INITIAL = Initial()


def single_system(alpha_s, alpha_l, initial: Initial = DEFAULT_INITIAL, alpha_z=1.0) -> System:
    """Independent single environments, one per entry of the broadcast arguments.

    Learnabilities and the fields of ``initial`` may be arrays: a whole grid of
    single-environment runs integrates as one uncoupled system (identity couplings), so a
    heatmap costs one integration rather than one per cell."""
    alpha_z, alpha_s, alpha_l, prior, skill_rs, skill_local = (
        np.ravel(x).astype(float) for x in np.broadcast_arrays(
            alpha_z, alpha_s, alpha_l, initial.prior, initial.skill_rs, initial.skill_local))
    identity = Homogeneous(0.0)
    return System(
        z=logit(prior)[:, None], a=logit(skill_rs)[:, None], b=logit(skill_local)[:, None],
        alpha_z=alpha_z, alpha_s=alpha_s, alpha_l=alpha_l,
        c_z=identity, c_s=identity, c_l=identity,
    )


def reference_propensity(alpha_s: float, alpha_l: float, initial: Initial = DEFAULT_INITIAL,
                         alpha_z: float = 1.0, horizon: float = HORIZON) -> float:
    """Final propensity of one environment by SciPy's LSODA: the cross-check of the Euler
    step size (and a fast path for the homogeneous system, which reduces to this)."""
    from scipy.integrate import solve_ivp  # noqa: PLC0415 (only the cross-check needs it)

    def rhs(_, y):
        p, s, l_ = expit(y)
        return [alpha_z * p * (1 - p) * (s - l_), alpha_s * p * s * (1 - s),
                alpha_l * (1 - p) * l_ * (1 - l_)]

    y0 = [logit(initial.prior), logit(initial.skill_rs), logit(initial.skill_local)]
    solution = solve_ivp(rhs, (0.0, horizon), y0, method="LSODA", rtol=1e-8, atol=1e-10)
    return float(expit(solution.y[0, -1]))


# --------------------------------------------------------------------------- N environments


def homogeneous_system(n: int, transfer: tuple[float, float, float], alpha_s: float,
                       alpha_l: float, initial: Initial = DEFAULT_INITIAL) -> System:
    """N identical environments with ``C = I + c (J - I)`` per property (``transfer`` is
    ``(c_z, c_S, c_L)``)."""
    ones = np.ones((n, 1))
    return System(
        z=logit(initial.prior) * ones, a=logit(initial.skill_rs) * ones,
        b=logit(initial.skill_local) * ones,
        alpha_z=np.ones(n), alpha_s=np.full(n, alpha_s), alpha_l=np.full(n, alpha_l),
        c_z=Homogeneous(transfer[0]), c_s=Homogeneous(transfer[1]), c_l=Homogeneous(transfer[2]),
    )


def effective_learnability(alpha: float, n: int, transfer: float) -> float:
    """The homogeneous system is the single one with ``α (1 + (N - 1) c)`` (the essay's
    reduction): N environments each pass a fraction c of their gradient to every other."""
    return alpha * (1 + (n - 1) * transfer)


def critical_diversity(mean_propensity_by_n: dict[int, float], threshold: float) -> int | None:
    """N*: the smallest N whose trained mean propensity exceeds ``threshold`` (None if no N
    in the sweep does)."""
    for n in sorted(mean_propensity_by_n):
        if mean_propensity_by_n[n] > threshold:
            return n
    return None

