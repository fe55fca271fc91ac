"""The path to a router: how often variation assembles it, and how often it is lost again.

``theory.predict`` ranks end points by long-run mean fitness.  Whether selection *reaches*
the best one, and keeps it, is a question about the path.  A router over N parts is built
one ``split`` at a time, and ``collapse`` and ``remove_child`` take it apart again, so a
run moves along a chain of structures::

    one mechanism  ->  a router over 2 parts  ->  ...  ->  the predicted router

(the parts split off in the order ``theory.split_path`` finds cheapest; ``add_child``, a
new untrained child keyed on the context, is the other way forward).  This module
turns that chain into a continuous-time Markov chain whose rates are derived from the
model's own variation and selection, and reads off the probability of each structure at
the end of the run.

**A transition** from the structure in place (the *resident*, dominant) to a neighbour
happens when the resident produces the right offspring and that offspring takes over:

    rate = offspring rate x P(operator) x P(node it edits) x P(context at birth)
           x P(takeover).

The first four factors are the model's variation rules (``split`` keys on the context
being trained, so a split of the part still to be divided needs one of its environments;
it is taken to lead to the chain's next structure, which is exact when those
environments are interchangeable).
The last is measured on a **reduced model of two circuits**: the resident, trained from
zero for ``WARM_PHASES`` phases of a sampled schedule, and one newborn, born at a uniformly
random step of a later stretch with the share ``offspring_share``.  Both take the model's own step
(``circuits_abm.analysis.reduced_step``, checked against the per-circuit reference): its
reward metric, rules, learning noise, key learning and monitor, each circuit learning at
its share to the power gamma, so a small newborn learns slowly when gamma > 0; selection
is the model's replicator between the two with its extinction floor on both.  The
newborn takes over if the resident falls below the floor first, or if it holds the
majority after ``HORIZON_PHASES`` phases.  On expected values alone a newborn in a
fitness valley never survives; it is the noise of learning, and the swings of fitness
within a schedule cycle, that let it through, and the reduced model keeps both.

Approximations, each a choice made before comparing with sweeps: routers are flat (a
split of a child is represented by the flat router over the finer partition, with that
partition's contrast keys, and ``add_child``'s new child learns with the resident's rule,
not always naive's); a ``remove_child`` offspring counts as a step back along the
chain and a ``collapse`` offspring as a return to one mechanism; the resident is one
circuit (the model has many near-identical variants of it); the run starts from one
mechanism (the model's initial router over untrained children is gone within a few phases
in nearly every run).  ``docs/theory.md`` (section 7) compares the result with sweeps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.linalg import expm

from circuits_abm.analysis import reduced_kernels
from circuits_abm.analysis.candidates import (
    Problem,
    contrast_keys,
    routers_reachable,
    starts_with_router,
)
from circuits_abm.analysis.moments import Rule
from circuits_abm.analysis.rates import Rate, wilson
from circuits_abm.analysis.reduced_step import Circuits, StepModel
from circuits_abm.analysis.theory import MAX_ASSEMBLY_PARTS, geometry_at, predict, split_path_blocks
from circuits_abm.engine.scenario import Scenario
from circuits_abm.engine.variation import OPERATORS

WARM_PHASES = 20  # the resident's parameters and keys settle within a few phases
WINDOW_PHASES = 8  # births fall at a uniform step of this stretch after the warm-up
HORIZON_PHASES = 60  # nearly every newborn's fate is sealed within a few cycles
REPLICATES = 600  # newborns per transition: a 5% takeover rate is known to +-1.8 points

Blocks = tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class Transition:
    """One way the chain moves: ``operator`` offspring of state ``source`` that take over
    send it to state ``target``.  ``births`` is the expected number of such offspring per
    step while ``source`` dominates; ``takeover`` how many of the simulated ones took
    over."""

    source: int
    target: int
    operator: str
    births: float
    takeover: Rate

    @property
    def rate(self) -> float:
        """Expected takeovers per step."""
        return self.births * self.takeover.estimate


@dataclass(frozen=True)
class PathPrediction:
    """The chain of structures from one mechanism to the predicted router, its transitions,
    and the probability of each structure at the end of the run (from one mechanism at the
    start)."""

    states: tuple[str, ...]
    transitions: tuple[Transition, ...]
    steps: int
    truncated: bool = False  # the chain stops short of the router; its last state absorbs
    uncovered: tuple[str, ...] = ()  # what the scenario has that the chain leaves out

    @property
    def generator(self) -> np.ndarray:
        """The chain's rate matrix per step (rows sum to zero)."""
        q = np.zeros((len(self.states), len(self.states)))
        for tr in self.transitions:
            q[tr.source, tr.target] += tr.rate
        np.fill_diagonal(q, -q.sum(axis=1))
        return q

    @property
    def occupation(self) -> np.ndarray:
        """Probability of each state after the run's steps."""
        return self.occupation_from(0)

    def occupation_from(self, state: int) -> np.ndarray:
        """Probability of each state after the run's steps, from ``state`` at the start."""
        start = np.zeros(len(self.states))
        start[state] = 1.0
        return start @ expm(self.generator * self.steps)

    @property
    def start_decides(self) -> bool:
        """Whether the verdict depends on where a run starts: from one mechanism the chain
        ends on one side of one half, from its last state (a router) on the other."""
        from_router = 1.0 - self.occupation_from(len(self.states) - 1)[0]
        return (from_router >= 0.5) != self.ends_with_router

    @property
    def router_probability(self) -> float:
        """Probability that the run ends with a router (any state but the first).  For a
        ``truncated`` chain, whose last state never leaves, an upper bound: a run that
        gets that far is counted as ending with a router."""
        return float(1.0 - self.occupation[0])

    @property
    def decided(self) -> bool:
        """Whether the chain decides the root: always, unless it is ``truncated`` and its
        upper bound on a router reaches one half."""
        return not (self.truncated and self.router_probability >= 0.5)

    @property
    def ends_with_router(self) -> bool:
        """The verdict on the root: a router if the chain ends in one in at least half of
        the runs (meaningful only when ``decided``)."""
        return self.router_probability >= 0.5

    @property
    def predicted_state(self) -> str:
        """The predicted structure: with a router, the chain's most probable state among
        those with one (the nested prediction: not always the chain's last state); without,
        the single mechanism."""
        if not self.ends_with_router:
            return self.states[0]
        return self.states[1 + int(np.argmax(self.occupation[1:]))]

    def verdict(self) -> str:
        """One line: the root's verdict and the predicted structure, with its probability."""
        if not self.decided:
            return ("  verdict: undecided (the chain was cut short; a router is possible, "
                    f"at most {self.router_probability:.2f})")
        index = self.states.index(self.predicted_state)
        root = "a router" if self.ends_with_router else "no router"
        return (f"  verdict: {root} (probability of a router {self.router_probability:.2f}"
                f" {'>=' if self.ends_with_router else '<'} 0.5); predicted structure "
                f"{self.predicted_state} (probability {self.occupation[index]:.2f})")

    def to_dict(self) -> dict:
        """The chain as a JSON-able dict, with its verdict."""
        return {
            "states": list(self.states),
            "occupation": [round(float(p), 4) for p in self.occupation],
            "router_probability": round(self.router_probability, 4),
            "decided": self.decided,
            "ends_with_router": self.ends_with_router if self.decided else None,
            "predicted_structure": self.predicted_state if self.decided else None,
            "truncated": self.truncated,
            "uncovered": list(self.uncovered),
            "transitions": [
                {"from": tr.source, "to": tr.target, "operator": tr.operator,
                 "births_per_step": round(tr.births, 6),
                 "takeover": round(tr.takeover.estimate, 4),
                 "takeover_low": round(tr.takeover.low, 4),
                 "takeover_high": round(tr.takeover.high, 4)}
                for tr in self.transitions
            ],
        }

    def describe(self) -> str:
        """Readable lines for ``circuits-abm predict --path``."""
        lines = [f"  the path, over {self.steps} steps (from one mechanism):"]
        for i, (state, p) in enumerate(zip(self.states, self.occupation, strict=True)):
            lines.append(f"    state {i} {state}: probability {p:.2f} at the end")
        for tr in self.transitions:
            lines.append(
                f"    {tr.source} -> {tr.target} by {tr.operator}: "
                f"{tr.births * 1000:.2f} offspring per 1000 steps x takeover "
                f"{tr.takeover.estimate:.1%} [{tr.takeover.low:.1%}, {tr.takeover.high:.1%}]"
            )
        bound = "at most " if self.truncated else ""
        if self.truncated:
            lines.append(f"  (the chain stops after {len(self.states)} structures, the last "
                         "one counted as kept)")
        lines.append(f"  probability of a router at the end: {bound}"
                     f"{self.router_probability:.2f}")
        lines.append(self.verdict())
        if self.uncovered:
            lines.append("  not covered by the path model (a point near the boundary): "
                         + "; ".join(UNCOVERED[name] for name in self.uncovered))
        return "\n".join(lines)


def path_prediction(spec: Scenario, at: str = "end", replicates: int = REPLICATES,
                    seed: int = 0) -> PathPrediction | None:
    """How often a run reaches the router ``predict`` finds best, and keeps it.

    The chain of structures from one mechanism to that router (one ``split`` at a time,
    in the order ``split_path_blocks`` finds cheapest), with the rates at which runs move
    forward (``split``) and back (``collapse``, ``remove_child``), each measured on a
    reduced model of two circuits (the module docstring; ``docs/theory.md``, section 7).

    Parameters
    ----------
    spec
        The scenario.
    at
        ``"end"`` (default): the geometry after every intervention; ``"start"``: before any.
    replicates
        Newborns simulated per transition (default 600: a 5% takeover rate is known to
        about 1.8 points).
    seed
        Seed of the reduced model's random numbers, so the answer is a function of the
        scenario and this seed.

    Returns
    -------
    PathPrediction or None
        ``states``, ``transitions`` (each with its takeover rate and Wilson interval),
        ``occupation`` (the probability of each state after the run's steps) and
        ``router_probability``; ``print(path.describe())`` for a readable account.  None
        when no router is predicted or none can arise.  A router with more than
        ``MAX_ASSEMBLY_PARTS`` parts is followed through the chain's first
        ``MAX_ASSEMBLY_PARTS`` structures only (its cost grows with the square of the
        parts), the last made absorbing: ``truncated`` is then set and
        ``router_probability`` is an upper bound.

    Examples
    --------
    >>> import circuits_abm as ca
    >>> easy = ca.path_prediction(ca.load_scenario("standard"), replicates=100)
    >>> easy.router_probability > 0.9
    True
    >>> shared = ca.override(ca.load_scenario("standard"), {"geometry.sharing": 0.7})
    >>> ca.path_prediction(shared, replicates=100).router_probability < 0.5
    True
    """
    prediction = predict(spec, at=at)
    best = prediction.best
    if not best.is_router or not routers_reachable(spec):
        return None
    envs = geometry_at(spec, at)
    problem = Problem(spec, envs)
    target = tuple(tuple(envs.index(n) for n in p.environments) for p in best.parts)
    chain = split_path_blocks(problem, target)
    truncated = len(chain) > MAX_ASSEMBLY_PARTS
    chain = chain[:MAX_ASSEMBLY_PARTS]
    rule = next(r for r in problem.rules
                if r.name == problem.candidate((problem.training,)).parts[0].rule)
    arena = Arena(problem, rule, replicates, np.random.default_rng(seed))
    transitions = []
    for j in range(len(chain) - 1 if truncated else len(chain)):
        transitions.extend(_transitions_from(arena, chain, j))
    states = tuple(problem.candidate(b).canonical() for b in chain)
    path = PathPrediction(states, tuple(transitions), spec.steps, truncated)
    return dataclasses.replace(path, uncovered=path_leaves_out(spec, rule, path))


# What a scenario can have that the chain leaves out, and why it matters.
UNCOVERED = {
    "fixed-target rule": "the chain's mechanisms learn toward a fixed target, so the "
                         "children of a split cannot specialise; routers then come from "
                         "rule switches or the initial router, which the chain leaves out",
    "initial router": "the population starts with a router, and the chain's verdict from "
                      "that router differs from its verdict from one mechanism",
}


def path_leaves_out(spec: Scenario, rule: Rule, path: PathPrediction) -> tuple[str, ...]:
    """The keys of ``UNCOVERED`` that apply to ``spec``: a point where one does is never
    counted as away from the boundary."""
    found = []
    if rule.target is not None:
        found.append("fixed-target rule")
    if starts_with_router(spec) and path.decided and path.start_decides:
        found.append("initial router")
    return tuple(found)


def operator_probability(spec: Scenario, name: str, router: bool) -> float:
    """Probability that an offspring of a circuit is made by ``name``: its weight among
    the operators that apply (those needing a router only apply to routers)."""
    weights = spec.variation.operators
    usable = {op: weights.get(op, 0.0) for op, o in OPERATORS.items()
              if router or not o.needs_router}
    total = sum(usable.values())
    return usable.get(name, 0.0) / total if total > 0 else 0.0


def _transitions_from(arena: Arena, chain: list[Blocks], j: int) -> list[Transition]:
    """The ways forward (``split``; for routers also ``add_child``), the collapse and the
    child removal out of state ``j``, each contest against one resident warmed for it."""
    problem, spec, blocks = arena.problem, arena.problem.spec, chain[j]
    router = len(blocks) > 1
    nodes = len(blocks) + 1 if router else 1
    rate = spec.variation.rate
    resident = arena.resident(blocks)
    out = []
    if j + 1 < len(chain):
        new = chain[j + 1]
        rest = blocks[-1]  # the part still to be split (split_path_blocks keeps it last)
        in_rest = lambda env: np.isin(env, rest)  # noqa: E731 (any shape of env)
        births = rate * operator_probability(spec, "split", router) / nodes * (
            _training_weight(problem)[list(rest)].sum())
        took = arena.contest(resident, _splitter(problem, blocks, new), in_rest)
        out.append(Transition(j, j + 1, "split", births, took))
        if router:  # a new untrained child keyed on the context: the other way forward
            births = rate * operator_probability(spec, "add_child", True) * (
                _training_weight(problem)[list(rest)].sum())
            took = arena.contest(resident, _splitter(problem, blocks, new, fresh=True),
                                 in_rest)
            out.append(Transition(j, j + 1, "add_child", births, took))
    if router:
        for name, target, make in (
            ("collapse", 0, _collapser(problem)),
            ("remove_child", j - 1, _remover(arena.rng)),
        ):
            births = rate * operator_probability(spec, name, True)
            took = arena.contest(resident, make, lambda env: np.ones(env.shape, bool))
            out.append(Transition(j, target, name, births, took))
    return out


def _training_weight(problem: Problem) -> np.ndarray:
    """How often each environment is the one trained (stationary slot law x mixture)."""
    return problem.chain.slot_stationary @ problem.chain.mix


# --------------------------------------------------------------------------- offspring
# Each maker takes the resident circuits (``Circuits``, a batch of replicates) and the
# environment trained at birth, and returns the newborns.

Offspring = Callable[[Circuits, np.ndarray], Circuits]


def _splitter(problem: Problem, blocks: Blocks, new: Blocks, fresh: bool = False
              ) -> Offspring:
    """A split of the last part of ``blocks`` into the last two parts of ``new``: both copy
    that part's mechanism (and its quarantine module), or, with ``fresh`` (``add_child``),
    the part split off starts from zero.  Keys are the contrast keys of ``new``."""
    source = [blocks.index(b) if b in blocks else len(blocks) - 1 for b in new]
    keys = contrast_keys(problem.envs.cues, new, problem.training)

    def make(resident, _env):
        theta, quarantine = resident.theta[:, source], resident.quarantine[:, source]
        if fresh:
            theta[:, -2] = 0.0
            quarantine[:, -2] = 0.0
        return Circuits(theta, quarantine,
                        np.broadcast_to(keys, (len(theta), *keys.shape)).copy())
    return make


def _collapser(problem: Problem) -> Offspring:
    """A collapse: one mechanism, the copy of the child the context at birth routes to."""
    def make(resident, env):
        logits = resident.keys @ problem.envs.cues[env][:, :, None]  # (replicates, parts, 1)
        chosen = logits[:, :, 0].argmax(axis=1)
        rows = np.arange(len(chosen))
        return Circuits(resident.theta[rows, chosen][:, None, :],
                        resident.quarantine[rows, chosen][:, None, :], None)
    return make


def _remover(rng: np.random.Generator) -> Offspring:
    """A child removal: a uniformly chosen child goes; one left becomes a lone mechanism."""
    def make(resident, _env):
        n, parts = resident.theta.shape[:2]
        drop = rng.integers(parts, size=n)
        keep = np.array([[i for i in range(parts) if i != d] for d in drop])
        rows = np.arange(n)[:, None]
        keys = None if parts == 2 else resident.keys[rows, keep]
        return Circuits(resident.theta[rows, keep], resident.quarantine[rows, keep], keys)
    return make


# --------------------------------------------------------------------------- the contest


@dataclass(frozen=True)
class Resident:
    """A resident warmed over ``WARM_PHASES`` phases, one per replicate, with the schedule
    each replicate trains (``slots``, ``(replicates, steps)``) through its whole contest.
    The contests out of one state share it (common random numbers)."""

    circuits: Circuits
    slots: np.ndarray


class Arena:
    """The reduced model of two circuits for one scenario: it warms residents and runs
    contests between a resident and one newborn on the model's step (``reduced_step``,
    compiled in ``reduced_kernels``), in ``replicates`` independent replicates drawn from
    ``rng``."""

    def __init__(self, problem: Problem, rule: Rule, replicates: int,
                 rng: np.random.Generator):
        self.problem, self.rule, self.replicates, self.rng = problem, rule, replicates, rng
        self.model = StepModel.of(problem.spec, problem.envs)
        self.step = self.model.compiled(rule)
        self.mix = np.ascontiguousarray(problem.chain.mix, dtype=float)
        tau = problem.chain.tau
        self.warm, self.window = WARM_PHASES * tau, WINDOW_PHASES * tau
        self.steps = self.warm + self.window + HORIZON_PHASES * tau

    def resident(self, blocks: Blocks) -> Resident:
        """A resident over ``blocks`` trained from zero for ``WARM_PHASES`` phases of a
        freshly sampled schedule per replicate."""
        slots = sampled_slots(self.problem, self.rng, self.steps, self.replicates)
        circuits = _untrained(self.problem, blocks, self.replicates, self.model.demands.shape[1])
        arrays = self._arrays(circuits)
        reduced_kernels.advance_alone(*arrays, slots, self.mix, 0,
                                      np.full(self.replicates, self.warm), self._noise(),
                                      self.step)
        return Resident(circuits, slots)

    def contest(self, resident: Resident, offspring: Offspring,
                born_in: Callable[[np.ndarray], np.ndarray]) -> Rate:
        """Give ``resident`` one ``offspring`` at a uniformly random step of the window
        whose trained environment passes ``born_in``, and run the two: the replicator
        between them, each learning at its share to the power gamma.  The rate at which
        the newborn takes over (its rival falls below the extinction floor, or it holds
        more than half at the horizon)."""
        spec = self.problem.spec
        trained = self.problem.chain.mix.argmax(axis=1)[resident.slots]
        births = _birth_steps(trained[:, self.warm:self.warm + self.window], born_in,
                              self.rng) + self.warm
        grown = Circuits(*(None if a is None else a.copy() for a in resident.circuits))
        arrays = self._arrays(grown)
        reduced_kernels.advance_alone(*arrays, resident.slots, self.mix, self.warm, births,
                                      self._noise(), self.step)
        newborn = offspring(grown, trained[np.arange(self.replicates), births])
        took_over = reduced_kernels.contest(
            arrays, self._arrays(newborn), births, self.steps, resident.slots, self.mix,
            spec.variation.offspring_share, spec.selection.extinction_floor, self.model.gamma,
            spec.selection.strength, self._noise(), self.step)
        return wilson(int(took_over.sum()), self.replicates)

    def _arrays(self, circuits: Circuits) -> tuple:
        """``circuits`` as the kernels take them (their arrays, trained in place): keys of
        zeros for lone mechanisms, with a flag."""
        keys = circuits.keys
        if keys is None:
            keys = np.zeros((*circuits.theta.shape[:2], self.model.cues.shape[1]))
        return circuits.theta, circuits.quarantine, keys, circuits.keys is not None

    def _noise(self) -> np.ndarray:
        """A seed for the kernels' learning noise, drawn from the path's generator."""
        return np.array([self.rng.integers(1, 2**63)], dtype=np.uint64)


def _untrained(problem: Problem, blocks: Blocks, replicates: int, dims: int) -> Circuits:
    """The resident at the start: zero parameters and, for a router, the contrast keys of
    its parts."""
    keys = None
    if len(blocks) > 1:
        contrast = contrast_keys(problem.envs.cues, blocks, problem.training)
        keys = np.broadcast_to(contrast, (replicates, *contrast.shape)).copy()
    zeros = np.zeros((replicates, len(blocks), dims))
    return Circuits(zeros, zeros.copy(), keys)


def _birth_steps(trained: np.ndarray, born_in, rng: np.random.Generator) -> np.ndarray:
    """Per row, a uniformly random step (index into the row) whose environment passes
    ``born_in``; step 0 where none does (only for environments never trained)."""
    allowed = born_in(trained)
    return np.where(allowed, rng.random(trained.shape), -1.0).argmax(axis=1)


def sampled_slots(problem: Problem, rng: np.random.Generator, steps: int,
                  replicates: int) -> np.ndarray:
    """``(replicates, steps)`` slots: independent stretches of the schedule chain, each
    starting at a random point of its stationary law and part-way into a phase.  Drawn
    for all replicates at once, one phase index at a time."""
    chain = problem.chain
    k = len(chain.labels)
    start = -rng.integers(chain.tau, size=replicates)
    phases = steps // chain.tau + 2
    while True:  # enough phases to cover every replicate's stretch
        lengths = (rng.geometric(1.0 / chain.tau, size=(replicates, phases))
                   if chain.geometric else np.full((replicates, phases), chain.tau))
        ends = start[:, None] + np.cumsum(lengths, axis=1)
        if (ends[:, -1] >= steps).all():
            break
        phases *= 2
    cumulative = np.cumsum(chain.slot_transition, axis=1)
    slots = np.empty((replicates, phases), dtype=np.int64)
    slots[:, 0] = rng.choice(k, size=replicates, p=chain.slot_stationary)
    for i in range(1, phases):
        draws = rng.random(replicates)[:, None]
        slots[:, i] = np.minimum((draws > cumulative[slots[:, i - 1]]).sum(axis=1), k - 1)
    changes = np.zeros((replicates, steps + 1), dtype=np.int64)  # phase index = changes so far
    rows = np.broadcast_to(np.arange(replicates)[:, None], ends[:, :-1].shape)
    np.add.at(changes, (rows, np.clip(ends[:, :-1], 0, steps)), 1)
    index = np.cumsum(changes[:, :steps], axis=1)
    return np.take_along_axis(slots, index, axis=1)
