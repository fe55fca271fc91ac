"""Environments: the graph of training objectives and the geometry derived from it.

Two Gram matrices over environments carry the science (docs/MODEL.md):

* demand overlap ``G[e, f] = <d_e, d_f>``: how much skill one objective shares with another
  (negative when objectives conflict);
* cue similarity ``Q[e, f] = <q_e, q_f> = 1 - distinguishability``: how hard two contexts are
  to tell apart.

Both are factored into vectors (one row per environment) by eigendecomposition.  A circuit's
parameters live in demand space and a router's keys in cue space, so when an intervention
changes the geometry the new vectors are rotated (orthogonal Procrustes) to stay as close as
possible to the old ones: a circuit trained before the intervention keeps its meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import combinations

import networkx as nx
import numpy as np

from circuits_abm.scenario import InterventionSpec, Scenario

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
    demand_overlap: np.ndarray
    cue_similarity: np.ndarray
    demands: np.ndarray
    cues: np.ndarray

    @property
    def size(self) -> int:
        return len(self.names)

    @property
    def training(self) -> np.ndarray:
        """Indices of environments that are trained on (not held out)."""
        return np.flatnonzero(~self.held_out)

    def index(self, name: str) -> int:
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
            decay = 0.0 if hops is None else np.exp(-hops / geo.distance_length)
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
    values, vectors = np.linalg.eigh(gram)
    scale = max(1.0, float(np.abs(values).max()))
    if values[0] < -EIGEN_TOLERANCE * scale:
        raise GeometryError(
            _impossible_geometry_message(gram, names, what, values[0], vectors[:, 0])
        )
    order = np.argsort(values)[::-1]
    values = np.clip(values[order], 0.0, None)
    vectors = vectors[:, order]
    # Fix each eigenvector's sign so the factorisation does not depend on LAPACK's choice.
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
    return Environments(
        names=names,
        kinds=tuple(e.kind for e in scenario.environments),
        clusters=tuple(e.cluster for e in scenario.environments),
        held_out=np.array([e.held_out for e in scenario.environments], dtype=bool),
        graph=graph,
        demand_overlap=demand_overlap,
        cue_similarity=cue_similarity,
        demands=demands,
        cues=cues,
    )


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
    """New geometry after an intervention, rotated to stay closest to the old vectors."""
    sharing = envs.demand_overlap.copy()
    disting = 1.0 - envs.cue_similarity
    for i, j in intervention_pairs(envs, intervention):
        _set_pair(sharing, disting, i, j, intervention.sharing, intervention.distinguishability)
    demand_overlap, cue_similarity, demands, cues = _geometry_from_pairs(
        envs.names, sharing, disting
    )
    return replace(
        envs,
        demand_overlap=demand_overlap,
        cue_similarity=cue_similarity,
        demands=align(demands, envs.demands),
        cues=align(cues, envs.cues),
    )


def align(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """Rotate ``new`` rows (same Gram matrix) to be as close as possible to ``old`` rows."""
    u, _, vt = np.linalg.svd(new.T @ old)
    return new @ (u @ vt)
