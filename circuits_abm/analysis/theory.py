"""A theory of the regime boundaries: which structure should win, from a scenario alone.

Selection is an exponential replicator, so over a long run a circuit's log share grows by
``strength`` times the sum of its fitness: the structure with the highest *long-run mean
fitness* takes over.  This module computes that mean, in closed form up to linear solves,
for every candidate structure, and predicts the regime tree the classifier should read
(``docs/theory.md`` has the derivation).  It never runs the simulation.

The pieces, one module each:

* ``circuits_abm.analysis.moments``: the schedule as a Markov chain, and one mechanism's
  learning on it as a Markov jump linear system, whose stationary moments give its mean
  reward and the recency bias the classifier will see;
* ``circuits_abm.analysis.candidates``: one shared mechanism per reachable learning rule,
  and routers over partitions of the training environments (every partition up to six
  environments here, cuts of a similarity dendrogram beyond), each with its fitness and
  the label the classifier would give it;
* ``circuits_abm.analysis.critical``: the critical number of environments;
* here: ``predict``, which compares them, and the split path from one mechanism to a
  predicted router (its fitness valley).

What the theory leaves out, on purpose: the path (variation must find a structure, and with
``gamma > 0`` a newborn router learns at its share to the power gamma; ``assembly`` models
how often runs reach a predicted router and keep it), selection among near-identical
variants (which trims the noise a little), and nested routers (a flat router over a finer
partition stands in for them).  ``docs/theory.md`` compares it with sweeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from circuits_abm.analysis.candidates import Candidate, Problem, routers_reachable
from circuits_abm.analysis.classification import (
    CHURN,
    GENERALIST,
)
from circuits_abm.analysis.critical import critical_environments
from circuits_abm.engine.environments import Environments, apply_intervention, build_environments
from circuits_abm.engine.scenario import Scenario

EXACT_PARTITIONS_UP_TO = 6  # Bell(6) = 203 partitions; beyond, dendrogram cuts
MAX_ASSEMBLY_PARTS = 8  # the split path is traced for predicted routers up to this size


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
    uncovered: tuple[str, ...] = ()  # active parameters the end-point theory leaves out

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
            "uncovered": list(self.uncovered),
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
        blocks: dict[int, list[int]] = {}
        for e, label in zip(idx, labels, strict=True):
            blocks.setdefault(label, []).append(e)
        partitions.add(tuple(sorted(tuple(sorted(b)) for b in blocks.values())))
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
    notes, uncovered = [], uncovered_parameters(spec)
    if spec.motivations:
        notes.append("motivations and the monitor are not modelled: the prediction is for the "
                     "capability demands alone")
    if spec.learning.gamma > 0:
        notes.append(
            f"gamma = {spec.learning.gamma}: the prediction is for the steady state of a "
            "dominant circuit; a newborn router learns at share**gamma, which only the "
            "path model (predict --path) includes"
        )
    if keys == "learned":
        notes.append("keys: where noiseless key learning settles, an upper bound on routing")
    n_star = critical_environments(spec) if critical else None
    valley = None
    if best.is_router and len(best.parts) <= MAX_ASSEMBLY_PARTS:
        blocks = tuple(tuple(envs.index(n) for n in p.environments) for p in best.parts)
        path_problem = problem if keys == "birth" else Problem(spec, envs, sharpness)
        valley = fitness_valley(path_fitness(path_problem, blocks))
    return Prediction(best, tuple(rivals), n_star, valley, tuple(notes), uncovered)


def uncovered_parameters(spec: Scenario) -> tuple[str, ...]:
    """The active parameters of ``spec`` that the end-point theory leaves out: ``gamma``
    (learning at share**gamma, which only the path model includes) and ``motivations``
    (the prediction is for the capability demands alone).  A point where one is active is
    never counted as away from the predicted boundary."""
    found = []
    if spec.learning.gamma > 0:
        found.append("gamma")
    if spec.motivations:
        found.append("motivations")
    return tuple(found)


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
    return path_fitness(Problem(spec, geometry_at(spec, at), sharpness), blocks)


def path_fitness(problem: Problem, blocks: tuple[tuple[int, ...], ...]) -> list[float]:
    """``split_path`` for a problem already set up (routers keep the keys they are born
    with, so ``problem`` must route with birth keys)."""
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


