"""The population as flat numpy arrays: the layout the compiled step works on.

Every node of every circuit gets a row.  Rows are in *level order*: all roots first (row
``i`` is circuit ``i``), then all depth-1 nodes grouped by parent, then depth 2, ...  So a
parent's row always comes before its children's, which lets the step multiply routing
probabilities down and add values up in single passes over the rows
(``circuits_abm.engine.learning``).  Mechanism parameters get their own array with leaves in
pre-order per circuit, so a circuit's leaves are contiguous too, and the reference step
can consume noise in the same order.

Compiling walks every node in Python, so it runs once, at the start.  When the population
changes (offspring are born, circuits die) the layout is updated instead: newborns are
compiled alone and merged in (``extended``), the dead are dropped (``restricted``), both by
array indexing, giving exactly the arrays a full compile would.  Afterwards each node's
``theta``/``key`` is a view into these arrays (``attach``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuits_abm.engine import kernels
from circuits_abm.engine.circuits import Mechanism, Node, Router
from circuits_abm.engine.rules import FIXED_TARGET_RULES, RULES
from circuits_abm.engine.scenario import Scenario


@dataclass(frozen=True)
class Layout:
    """Flat arrays for a population of circuits (see module docstring for the row order)."""

    n_circuits: int
    nodes: list[Node]
    depth: np.ndarray  # depth of each row's node in its tree (0 for roots)
    parent: np.ndarray  # parent row, -1 for roots
    owner: np.ndarray  # circuit of each row
    sharpness: np.ndarray  # sharpness of each row's parent router (0 for roots)
    key_step: np.ndarray  # key learning rate times the parent's sharpness (0 for roots)
    keys: np.ndarray  # routing key of each row (a root's key is unused)
    leaf_rows: np.ndarray  # row of each mechanism
    leaf_owner: np.ndarray  # circuit of each mechanism
    leaf_starts: np.ndarray  # first mechanism of each circuit
    theta: np.ndarray
    quarantine: np.ndarray  # each mechanism's quarantine module (zeros without route)
    learning_rate: np.ndarray
    consolidation: np.ndarray
    target_row: np.ndarray  # per mechanism: its row of the model's fixed targets, -1 if none
    cost: np.ndarray

    def leaves_of(self, circuit: int) -> slice:
        """The mechanism rows (into ``theta``) of one circuit, in pre-order."""
        stop = (
            self.leaf_starts[circuit + 1] if circuit + 1 < self.n_circuits else len(self.leaf_rows)
        )
        return slice(int(self.leaf_starts[circuit]), int(stop))

    def rows(self) -> kernels.Rows:
        """The arrays the compiled step reads and writes, as one record."""
        return kernels.Rows(self.n_circuits, self.parent, self.owner, self.sharpness,
                            self.key_step, self.keys, self.leaf_rows, self.leaf_owner,
                            self.learning_rate, self.consolidation, self.target_row,
                            self.theta, self.quarantine, self.cost)

    @property
    def effective_theta(self) -> np.ndarray:
        """What each mechanism is scored with: its parameters plus its quarantine module."""
        return self.theta + self.quarantine


def compile_population(roots: list[Node], scenario: Scenario) -> Layout:
    """Lay out the trees ``roots`` as arrays and re-point every node's numbers at them."""
    layout = _compiled(roots, scenario)
    attach(layout)
    return layout


def _compiled(roots: list[Node], scenario: Scenario) -> Layout:
    """The arrays of the trees ``roots`` (copies of the nodes' numbers)."""
    nodes, parent, owner, depth = _level_order(roots)
    leaves: list[Mechanism] = []
    leaf_starts = []
    for root in roots:
        leaf_starts.append(len(leaves))
        _collect_mechanisms(root, leaves)
    row_of = {id(n): i for i, n in enumerate(nodes)}
    rules = {name: getattr(scenario.circuits, name) for name in RULES}
    parent_arr = np.array(parent, dtype=np.intp)
    owner_arr = np.array(owner, dtype=np.intp)
    sharpness = np.array([0.0 if p < 0 else nodes[p].sharpness for p in parent])
    leaf_rows = np.array([row_of[id(m)] for m in leaves], dtype=np.intp)
    return Layout(
        n_circuits=len(roots),
        nodes=nodes,
        depth=np.array(depth, dtype=np.intp),
        parent=parent_arr,
        owner=owner_arr,
        sharpness=sharpness,
        key_step=scenario.circuits.router.key_learning_rate * sharpness,
        keys=np.array([n.key for n in nodes]),
        leaf_rows=leaf_rows,
        leaf_owner=owner_arr[leaf_rows],
        leaf_starts=np.array(leaf_starts, dtype=np.intp),
        theta=np.array([m.theta for m in leaves]),
        quarantine=np.array([m.quarantine for m in leaves]),
        learning_rate=np.array([rules[m.rule].learning_rate for m in leaves]),
        consolidation=np.array([rules[m.rule].consolidation for m in leaves]),
        target_row=np.array(
            [FIXED_TARGET_RULES.index(m.rule) if m.rule in FIXED_TARGET_RULES else -1
             for m in leaves],
            dtype=np.intp,
        ),
        cost=_costs(nodes, owner_arr, len(roots), scenario),
    )


def attach(layout: Layout) -> None:
    """Make every node's ``key`` (and every mechanism's ``theta`` and ``quarantine``) a view
    into the layout's arrays, so that what the step learns is what the trees hold."""
    for node, key in zip(layout.nodes, layout.keys, strict=True):
        node.key = key
    for row, theta, quarantine in zip(layout.leaf_rows, layout.theta, layout.quarantine,
                                      strict=True):
        leaf = layout.nodes[row]
        leaf.theta = theta
        leaf.quarantine = quarantine


# The arrays that hold a value per row and per mechanism; their order never depends on
# anything but the rows' (or mechanisms') order, so a layout update moves them as a block.
ROW_VALUES = ("depth", "sharpness", "key_step", "keys")
MECHANISM_VALUES = ("theta", "quarantine", "learning_rate", "consolidation", "target_row")


def extended(layout: Layout, roots: list[Node], scenario: Scenario) -> Layout:
    """``layout`` with the circuits ``roots`` appended, in level order: the same arrays as
    compiling every root again, built from the newborns' arrays alone.

    Every depth's rows of the old population come before the newborns' rows of that depth
    (breadth first over the old roots, then the new ones), so a stable sort of the
    concatenated rows by depth gives the level order of the whole population."""
    new = _compiled(roots, scenario)
    rows, leaves = len(layout.nodes), len(layout.leaf_rows)
    order = np.argsort(np.concatenate([layout.depth, new.depth]), kind="stable")
    row_after = np.empty_like(order)
    row_after[order] = np.arange(len(order))

    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(layout, name), getattr(new, name)])

    parent = np.concatenate([layout.parent, np.where(new.parent < 0, -1, new.parent + rows)])
    parent = np.where(parent < 0, -1, row_after[parent])[order]
    owner = np.concatenate([layout.owner, new.owner + layout.n_circuits])[order]
    leaf_rows = row_after[np.concatenate([layout.leaf_rows, new.leaf_rows + rows])]
    all_nodes = layout.nodes + new.nodes
    return Layout(
        n_circuits=layout.n_circuits + new.n_circuits,
        nodes=[all_nodes[i] for i in order],
        parent=parent,
        owner=owner,
        leaf_rows=leaf_rows,
        leaf_owner=owner[leaf_rows],
        leaf_starts=np.concatenate([layout.leaf_starts, new.leaf_starts + leaves]),
        cost=joined("cost"),
        **{name: joined(name)[order] for name in ROW_VALUES},
        **{name: joined(name) for name in MECHANISM_VALUES},
    )


def restricted(layout: Layout, alive: np.ndarray) -> Layout:
    """``layout`` without the circuits where ``alive`` is False: dropping whole trees keeps
    the others' rows in level order, so only indices need renumbering."""
    kept_rows = alive[layout.owner]
    kept_leaves = alive[layout.leaf_owner]
    row_after = np.cumsum(kept_rows) - 1
    circuit_after = np.cumsum(alive) - 1
    parent = layout.parent[kept_rows]
    owner = circuit_after[layout.owner[kept_rows]]
    leaf_rows = row_after[layout.leaf_rows[kept_leaves]]
    kept_before = np.cumsum(kept_leaves) - kept_leaves  # kept mechanisms before each one
    return Layout(
        n_circuits=int(alive.sum()),
        nodes=[n for n, keep in zip(layout.nodes, kept_rows, strict=True) if keep],
        parent=np.where(parent < 0, -1, row_after[parent]),
        owner=owner,
        leaf_rows=leaf_rows,
        leaf_owner=owner[leaf_rows],
        leaf_starts=kept_before[layout.leaf_starts[alive]],
        cost=layout.cost[alive],
        **{name: getattr(layout, name)[kept_rows] for name in ROW_VALUES},
        **{name: getattr(layout, name)[kept_leaves] for name in MECHANISM_VALUES},
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


def _level_order(roots: list[Node]) -> tuple[list[Node], list[int], list[int], list[int]]:
    """Every node, roots first and then depth by depth (breadth first), with the row of
    each one's parent, the circuit it belongs to and its depth."""
    nodes: list[Node] = list(roots)
    parent = [-1] * len(roots)
    owner = list(range(len(roots)))
    depth = [0] * len(roots)
    row = 0
    while row < len(nodes):
        node = nodes[row]
        if isinstance(node, Router):
            n = len(node.children)
            nodes.extend(node.children)
            parent.extend([row] * n)
            owner.extend([owner[row]] * n)
            depth.extend([depth[row] + 1] * n)
        row += 1
    return nodes, parent, owner, depth
