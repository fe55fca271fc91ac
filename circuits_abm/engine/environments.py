"""Environments: the graph of training objectives and the geometry derived from it.

Two Gram matrices over environments carry the science (docs/model.md):

* demand overlap ``G[e, f] = <d_e, d_f>``: how much skill one objective shares with another
  (negative when objectives conflict);
* cue similarity ``Q[e, f] = <q_e, q_f> = 1 - distinguishability``: how hard two contexts are
  to tell apart.

Both are factored into vectors (one row per environment) by eigendecomposition, computed
in ``circuits_abm.engine.linalg`` rather than by LAPACK so that every processor gets the same
vectors (docs/reproducibility.md).  A circuit's
parameters live in demand space and a router's keys in cue space, so when an intervention
changes the geometry the new vectors are rotated (orthogonal Procrustes) to stay as close as
possible to the old ones: a circuit trained before the intervention keeps its meaning.

Declared motivations (e.g. reward seeking) add demand dimensions after the factorised
ones: the *pathways* through which a mechanism can express the same behaviour,
``mu = sum_i g_i theta_i`` with one gain ``g_i`` per pathway (two pathways of gain 1 unless
the scenario says otherwise).  Environment ``e`` demands ``m_e g_i`` on pathway ``i``, where
``m_e`` is how much it rewards the motivation.  The reward treats the behaviour, not each
pathway, as what saturates (docs/model.md): ``R_e = <theta, d_e> - theta^T A_e theta / 2``
with ``A_e`` the identity on capability and ``upkeep I + g g^T`` on the pathways of each
motivation the environment names (``[[1 + upkeep, 1], [1, 1 + upkeep]]`` for two pathways
of gain 1), so ``m_e mu - mu^2 / 2`` up to a small upkeep per pathway.  An environment that
does not name a motivation gives the behaviour no chance to matter: no reward and no cost
(``relevance`` 0 on its pathways), so training there leaves the motivation where it is.
The requested sharing geometry is untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import combinations

import networkx as nx
import numpy as np

from circuits_abm.engine import kernels, linalg
from circuits_abm.engine.scenario import InterventionSpec, Scenario

EIGEN_TOLERANCE = 1e-9


class GeometryError(ValueError):
    """Requested overlaps that no set of vectors can have (the matrix is not PSD)."""


@dataclass(frozen=True)
class Environments:
    """The environment set of one run: names, flags, graph, Gram matrices and vectors."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    clusters: tuple[str | None, ...]
    held_out: np.ndarray
    graph: nx.Graph
    demand_overlap: np.ndarray  # the requested sharing (capability part)
    cue_similarity: np.ndarray
    demands: np.ndarray  # (environments, capability dimensions + the motivations' pathways)
    cues: np.ndarray
    motivations: tuple[str, ...] = ()
    metric: PathwayMetric | None = None  # the reward metric on the pathways
    motive: np.ndarray | None = None  # (environments, motivations): how much each one pays
    relevance: np.ndarray | None = None  # (environments, dimensions): 1 where it counts

    @property
    def size(self) -> int:
        """The number of environments."""
        return len(self.names)

    @property
    def width(self) -> int:
        """Number of capability dimensions (the factorised demand vectors)."""
        return int(np.count_nonzero(self.metric.group < 0))

    @property
    def capability(self) -> np.ndarray:
        """The factorised demand vectors without the motivation pathways."""
        return self.demands[:, : self.width]

    def pathways(self, name: str) -> np.ndarray:
        """The demand dimensions through which motivation ``name`` is expressed."""
        return np.flatnonzero(self.metric.group == self.motivations.index(name))

    def behaviour(self, name: str, theta: np.ndarray) -> np.ndarray:
        """Each row's behaviour ``sum_i g_i theta_i`` over the pathways of ``name``
        (``theta``: one row per mechanism, all demand dimensions)."""
        pathways = self.pathways(name)
        total = self.metric.gain[pathways[0]] * theta[:, pathways[0]]
        for k in pathways[1:]:
            total = total + self.metric.gain[k] * theta[:, k]
        return total

    @property
    def training(self) -> np.ndarray:
        """Indices of environments that are trained on (not held out)."""
        return np.flatnonzero(~self.held_out)

    def index(self, name: str) -> int:
        """The row of environment ``name`` in the arrays."""
        return self.names.index(name)

    def cue_centre(self) -> np.ndarray:
        """Mean cue over training environments: 'the usual context' a split contrasts against."""
        return self.cues[self.training].mean(axis=0)


def build_graph(scenario: Scenario) -> nx.Graph:
    """The environment graph: one node per environment, edges with transition weights."""
    graph = nx.Graph(name=scenario.name)
    for env in scenario.environments:
        graph.add_node(env.name, kind=env.kind, cluster=env.cluster, held_out=env.held_out)
    for edge in scenario.edges:
        graph.add_edge(edge.source, edge.target, weight=edge.weight)
    return graph


def pair_matrices(scenario: Scenario, graph: nx.Graph) -> tuple[np.ndarray, np.ndarray]:
    """Requested (sharing, distinguishability) for every pair, by the documented precedence."""
    names = [e.name for e in scenario.environments]
    cluster = {e.name: e.cluster for e in scenario.environments}
    geo = scenario.geometry
    n = len(names)
    sharing = np.full((n, n), geo.sharing)
    disting = np.full((n, n), geo.distinguishability)
    if geo.distance_length is not None:
        distance = dict(nx.all_pairs_shortest_path_length(graph))
        for i, j in combinations(range(n), 2):
            hops = distance[names[i]].get(names[j])
            decay = 0.0 if hops is None else kernels.exp(-hops / geo.distance_length)
            sharing[i, j] = sharing[j, i] = geo.sharing * decay
            disting[i, j] = disting[j, i] = 1.0 - (1.0 - geo.distinguishability) * decay
    for i, j in combinations(range(n), 2):
        ci, cj = cluster[names[i]], cluster[names[j]]
        if ci is not None and ci == cj:
            values = geo.clusters.get(ci)
        elif ci is not None and cj is not None:
            values = geo.between_clusters
        else:
            values = None
        if values is not None:
            _set_pair(sharing, disting, i, j, values.sharing, values.distinguishability)
    for edge in scenario.edges:
        i, j = names.index(edge.source), names.index(edge.target)
        _set_pair(sharing, disting, i, j, edge.sharing, edge.distinguishability)
    np.fill_diagonal(sharing, 1.0)
    np.fill_diagonal(disting, 0.0)
    return sharing, disting


def _set_pair(sharing, disting, i, j, share_value, disting_value) -> None:
    if share_value is not None:
        sharing[i, j] = sharing[j, i] = share_value
    if disting_value is not None:
        disting[i, j] = disting[j, i] = disting_value


def factorise(gram: np.ndarray, names: tuple[str, ...], what: str) -> np.ndarray:
    """Rows ``v_e`` with ``v_e . v_f = gram[e, f]``, padded to one dimension per environment.

    Tiny negative eigenvalues (round-off) are clipped; a clearly negative one means the
    requested overlaps are impossible, and the error names the pairs most responsible.
    """
    values, vectors = linalg.symmetric_eigen(np.ascontiguousarray(gram, dtype=float))
    order = np.argsort(-values, kind="stable")
    values, vectors = values[order], vectors[:, order]
    scale = max(1.0, float(np.abs(values).max()))
    if values[-1] < -EIGEN_TOLERANCE * scale:
        raise GeometryError(
            _impossible_geometry_message(gram, names, what, values[-1], vectors[:, -1])
        )
    values = np.clip(values, 0.0, None)
    # Fix each eigenvector's sign: the largest entry (the first of equals) is positive.
    signs = np.sign(vectors[np.argmax(np.abs(vectors), axis=0), np.arange(len(values))])
    signs[signs == 0] = 1.0
    # C order: the compiled step reads one environment's vector as a contiguous row.
    return np.ascontiguousarray((vectors * signs) * np.sqrt(values))


def _impossible_geometry_message(gram, names, what, smallest, direction) -> str:
    involved = np.argsort(-np.abs(direction))[: min(4, len(names))]
    pairs = [
        f"{names[i]}~{names[j]} = {gram[i, j]:+.3g}" for i, j in combinations(sorted(involved), 2)
    ]
    return (
        f"the requested {what} values are impossible for any set of vectors "
        f"(the {what} matrix has eigenvalue {smallest:.3g} < 0). The pairs most involved: "
        f"{'; '.join(pairs)}. Make conflicting or overlapping values less extreme."
    )


def _geometry_from_pairs(
    names: tuple[str, ...], sharing: np.ndarray, disting: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    demand_overlap = sharing.copy()
    cue_similarity = 1.0 - disting
    demands = factorise(demand_overlap, names, "sharing (demand overlap)")
    cues = factorise(cue_similarity, names, "distinguishability (cue similarity)")
    return demand_overlap, cue_similarity, demands, cues


def build_environments(scenario: Scenario) -> Environments:
    """Derive the full environment geometry of a scenario (raises GeometryError if impossible)."""
    graph = build_graph(scenario)
    names = tuple(e.name for e in scenario.environments)
    sharing, disting = pair_matrices(scenario, graph)
    demand_overlap, cue_similarity, demands, cues = _geometry_from_pairs(names, sharing, disting)
    metric = pathway_metric(demands.shape[1], scenario)
    motive = np.array([[e.motivations.get(m, 0.0) for m in scenario.motivation_names]
                       for e in scenario.environments]).reshape(len(names), -1)
    pathway_demands = np.array(
        [[e.motivations.get(m.name, 0.0) * gain for m in scenario.motivations for gain in m.gains]
         for e in scenario.environments]
    ).reshape(len(names), -1)
    named = np.array([[m.name in e.motivations for m in scenario.motivations for _ in m.gains]
                      for e in scenario.environments], dtype=float).reshape(pathway_demands.shape)
    relevance = np.hstack([np.ones_like(demands), named])
    return Environments(
        names=names,
        kinds=tuple(e.kind for e in scenario.environments),
        clusters=tuple(e.cluster for e in scenario.environments),
        held_out=np.array([e.held_out for e in scenario.environments], dtype=bool),
        graph=graph,
        demand_overlap=demand_overlap,
        cue_similarity=cue_similarity,
        demands=np.ascontiguousarray(np.hstack([demands, pathway_demands])),
        cues=cues,
        motivations=tuple(scenario.motivation_names),
        metric=metric,
        motive=motive,
        relevance=np.ascontiguousarray(relevance),
    )


@dataclass(frozen=True)
class PathwayMetric:
    """The reward metric ``A`` in compact form, one entry per demand dimension: the
    motivation it belongs to (``group``, -1 for capability), its gain and its upkeep (0 and
    1 for capability), and the other pathways of the same motivation (``others``, one row
    per dimension, padded with -1), so that the kernels compute ``(A theta)_k = (g_k^2 +
    upkeep_k) theta_k + g_k sum_j g_j theta_j`` over the others without a dense matrix."""

    group: np.ndarray
    gain: np.ndarray
    upkeep: np.ndarray
    others: np.ndarray

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(others, gain, upkeep)``, in the order the kernels take them."""
        return self.others, self.gain, self.upkeep

    def head(self, width: int) -> PathwayMetric:
        """The metric of the first ``width`` dimensions (the capability ones)."""
        return PathwayMetric(self.group[:width], self.gain[:width], self.upkeep[:width],
                             self.others[:width])

    def matrix(self) -> np.ndarray:
        """``A`` as a dense matrix (for checks and for the reference implementation)."""
        size = len(self.group)
        dense = np.eye(size)
        for k in np.flatnonzero(self.group >= 0):
            dense[k, k] = self.gain[k] ** 2 + self.upkeep[k]
            for j in self.others[k][self.others[k] >= 0]:
                dense[k, j] = self.gain[k] * self.gain[j]
        return dense


def pathway_metric(width: int, scenario: Scenario) -> PathwayMetric:
    """The reward metric of a scenario's motivations over ``width`` capability dimensions."""
    sizes = [len(m.gains) for m in scenario.motivations]
    size = width + sum(sizes)
    group = np.full(size, -1, dtype=np.intp)
    gain, upkeep = np.ones(size), np.zeros(size)
    others = np.full((size, max([1, *sizes]) - 1 or 1), -1, dtype=np.intp)
    first = width
    for k, motivation in enumerate(scenario.motivations):
        dims = np.arange(first, first + len(motivation.gains))
        group[dims] = k
        gain[dims] = motivation.gains
        upkeep[dims] = motivation.upkeep
        for d in dims:
            rest = dims[dims != d]
            others[d, : len(rest)] = rest
        first += len(motivation.gains)
    return PathwayMetric(group, gain, upkeep, others)


def apply_payoffs(envs: Environments, pays: dict[str, dict[str, float]]) -> Environments:
    """New payoffs from an intervention's ``pays``: environment ``e`` now rewards motivation
    ``k`` with ``m``, so it demands ``m g_i`` on the motivation's pathways and names it
    (the reward counts there, a penalty included)."""
    if not pays:
        return envs
    demands, relevance, motive = envs.demands.copy(), envs.relevance.copy(), envs.motive.copy()
    for env, motivations in pays.items():
        e = envs.index(env)
        for name, value in motivations.items():
            pathways = envs.pathways(name)
            demands[e, pathways] = value * envs.metric.gain[pathways]
            relevance[e, pathways] = 1.0
            motive[e, envs.motivations.index(name)] = value
    return replace(envs, demands=np.ascontiguousarray(demands),
                   relevance=np.ascontiguousarray(relevance), motive=motive)


def intervention_pairs(envs: Environments, intervention: InterventionSpec) -> list[tuple[int, int]]:
    """Index pairs an intervention changes: every pair touching a named node, plus named edges."""
    pairs = set()
    for node in intervention.nodes:
        i = envs.index(node)
        pairs.update((min(i, j), max(i, j)) for j in range(envs.size) if j != i)
    for a, b in intervention.edges:
        i, j = envs.index(a), envs.index(b)
        pairs.add((min(i, j), max(i, j)))
    return sorted(pairs)


def apply_intervention(envs: Environments, intervention: InterventionSpec) -> Environments:
    """New geometry after an intervention, rotated to stay closest to the old vectors (the
    same geometry for an intervention that only switches the update rule or discards)."""
    if not intervention.changes_geometry:
        return envs
    sharing = envs.demand_overlap.copy()
    disting = 1.0 - envs.cue_similarity
    for i, j in intervention_pairs(envs, intervention):
        _set_pair(sharing, disting, i, j, intervention.sharing, intervention.distinguishability)
    demand_overlap, cue_similarity, demands, cues = _geometry_from_pairs(
        envs.names, sharing, disting
    )
    capability = align(demands, envs.capability)
    return replace(
        envs,
        demand_overlap=demand_overlap,
        cue_similarity=cue_similarity,
        demands=np.ascontiguousarray(np.hstack([capability, envs.demands[:, envs.width :]])),
        cues=align(cues, envs.cues),
    )


def align(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """Rotate ``new`` rows (same Gram matrix) to be as close as possible to ``old`` rows."""
    return linalg.matmul(new, linalg.nearest_rotation(old, new))
