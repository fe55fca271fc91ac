"""The population as flat numpy arrays: the layout the vectorised step works on.

Every node of every circuit gets a row.  Rows are in *level order*: all roots first (row
``i`` is circuit ``i``), then all depth-1 nodes grouped by parent, then depth 2, ...  That
order makes siblings contiguous (a router's softmax is one ``reduceat``) and each depth
level a slice (routing probabilities multiply down level by level; values add up level by
level).  Mechanism parameters get their own array with leaves in pre-order per circuit, so
a circuit's leaves are contiguous too, and the reference step can consume noise in the
same order.

Compiling is the only per-node Python loop; it runs when the population's structure
changes (an offspring is born, a circuit dies), not every step.  After compiling, each
node's ``theta``/``key`` is a view into these arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuits_abm.circuits import Mechanism, Node, Router
from circuits_abm.scenario import Scenario


@dataclass(frozen=True)
class Level:
    """One depth level (>= 1) of the level-ordered rows, with its sibling groups."""

    start: int
    stop: int
    parents: np.ndarray  # parent row of every row in the level
    group_starts: np.ndarray  # offsets (relative to start) where a new parent begins
    group_parents: np.ndarray  # the parent row of each group


@dataclass(frozen=True)
class Layout:
    """Flat arrays for a population of circuits (see module docstring for the row order)."""

    n_circuits: int
    nodes: list[Node]
    parent: np.ndarray  # parent row, -1 for roots
    owner: np.ndarray  # circuit of each row
    child_sharpness: np.ndarray  # sharpness of the parent router, rows [n_circuits:]
    key_step: np.ndarray  # key learning rate times parent sharpness, rows [n_circuits:]
    child_parent: np.ndarray  # parent row of rows [n_circuits:]
    keys: np.ndarray  # routing key of each row (a root's key is unused)
    levels: list[Level]
    sibling_starts: np.ndarray  # sibling groups over rows [n_circuits:]
    sibling_group: np.ndarray  # group of each row [n_circuits:]
    leaf_rows: np.ndarray  # row of each mechanism
    leaf_owner: np.ndarray  # circuit of each mechanism
    leaf_starts: np.ndarray  # first mechanism of each circuit
    theta: np.ndarray
    learning_rate: np.ndarray
    consolidation: np.ndarray
    weighted_leaves: np.ndarray  # indices of weighted-optimiser mechanisms
    cost: np.ndarray
    has_routers: bool
    any_consolidation: bool

    def leaves_of(self, circuit: int) -> slice:
        """The mechanism rows (into ``theta``) of one circuit, in pre-order."""
        stop = (
            self.leaf_starts[circuit + 1] if circuit + 1 < self.n_circuits else len(self.leaf_rows)
        )
        return slice(int(self.leaf_starts[circuit]), int(stop))


def compile_population(roots: list[Node], scenario: Scenario) -> Layout:
    """Lay out the trees ``roots`` as arrays and re-point every node's numbers at them."""
    nodes, parent, owner, levels = _level_order(roots)
    leaves: list[Mechanism] = []
    leaf_starts = []
    for root in roots:
        leaf_starts.append(len(leaves))
        _collect_mechanisms(root, leaves)
    keys = np.array([n.key for n in nodes])
    theta = np.array([m.theta for m in leaves])
    for i, node in enumerate(nodes):
        node.key = keys[i]
    for i, leaf in enumerate(leaves):
        leaf.theta = theta[i]
    row_of = {id(n): i for i, n in enumerate(nodes)}
    rules = {name: getattr(scenario.circuits, name) for name in ("naive", "weighted", "generalist")}
    parent_arr = np.array(parent, dtype=np.intp)
    owner_arr = np.array(owner, dtype=np.intp)
    c = len(roots)
    child_sharpness = np.array([nodes[p].sharpness for p in parent[c:]])
    sib_starts = _group_starts(parent_arr[c:])
    sib_group = np.zeros(len(nodes) - c, dtype=np.intp)
    sib_group[sib_starts[1:]] = 1
    leaf_rows = np.array([row_of[id(m)] for m in leaves], dtype=np.intp)
    return Layout(
        n_circuits=c,
        nodes=nodes,
        parent=parent_arr,
        owner=owner_arr,
        child_sharpness=child_sharpness,
        key_step=scenario.circuits.router.key_learning_rate * child_sharpness,
        child_parent=parent_arr[c:],
        keys=keys,
        levels=levels,
        sibling_starts=sib_starts,
        sibling_group=np.cumsum(sib_group),
        leaf_rows=leaf_rows,
        leaf_owner=owner_arr[leaf_rows],
        leaf_starts=np.array(leaf_starts, dtype=np.intp),
        theta=theta,
        learning_rate=np.array([rules[m.rule].learning_rate for m in leaves]),
        consolidation=np.array([rules[m.rule].consolidation for m in leaves]),
        weighted_leaves=np.array(
            [i for i, m in enumerate(leaves) if m.rule == "weighted"], dtype=np.intp
        ),
        cost=_costs(nodes, owner_arr, c, scenario),
        has_routers=len(nodes) > c,
        any_consolidation=any(rules[m.rule].consolidation > 0 for m in leaves),
    )


def _costs(nodes: list[Node], owner: np.ndarray, n_circuits: int, scenario: Scenario) -> np.ndarray:
    """Per circuit: separation cost (per mechanism) plus routing overhead (per unit sharpness)."""
    costs = scenario.costs
    per_node = np.array(
        [
            costs.per_mechanism if isinstance(n, Mechanism) else costs.per_sharpness * n.sharpness
            for n in nodes
        ]
    )
    return np.bincount(owner, weights=per_node, minlength=n_circuits)


def _collect_mechanisms(node: Node, out: list[Mechanism]) -> None:
    if isinstance(node, Mechanism):
        out.append(node)
    else:
        for child in node.children:
            _collect_mechanisms(child, out)


def _level_order(roots: list[Node]) -> tuple[list[Node], list[int], list[int], list[Level]]:
    nodes: list[Node] = list(roots)
    parent = [-1] * len(roots)
    owner = list(range(len(roots)))
    levels: list[Level] = []
    start, stop = 0, len(nodes)
    while True:
        for row in range(start, stop):
            node = nodes[row]
            if isinstance(node, Router):
                k = len(node.children)
                nodes.extend(node.children)
                parent.extend([row] * k)
                owner.extend([owner[row]] * k)
        if len(nodes) == stop:
            return nodes, parent, owner, levels
        level_parents = np.array(parent[stop:], dtype=np.intp)
        starts = _group_starts(level_parents)
        levels.append(Level(stop, len(nodes), level_parents, starts, level_parents[starts]))
        start, stop = stop, len(nodes)


def _group_starts(parents: np.ndarray) -> np.ndarray:
    """Offsets where consecutive equal parents begin (parents are sorted by construction)."""
    if len(parents) == 0:
        return np.zeros(0, dtype=np.intp)
    return np.flatnonzero(np.r_[True, parents[1:] != parents[:-1]]).astype(np.intp)
