"""The population as flat numpy arrays: the layout the compiled step works on.

Every node of every circuit gets a row.  Rows are in *level order*: all roots first (row
``i`` is circuit ``i``), then all depth-1 nodes grouped by parent, then depth 2, ...  So a
parent's row always comes before its children's, which lets the step multiply routing
probabilities down and add values up in single passes over the rows
(``circuits_abm.engine.learning``).  Mechanism parameters get their own array with leaves in
pre-order per circuit, so a circuit's leaves are contiguous too, and the reference step
can consume noise in the same order.

Compiling is the only per-node Python loop; it runs when the population's structure
changes (an offspring is born, a circuit dies), not every step.  After compiling, each
node's ``theta``/``key`` is a view into these arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuits_abm.engine.circuits import Mechanism, Node, Router
from circuits_abm.engine.rules import FIXED_TARGET_RULES, RULES
from circuits_abm.engine.scenario import Scenario


@dataclass(frozen=True)
class Layout:
    """Flat arrays for a population of circuits (see module docstring for the row order)."""

    n_circuits: int
    nodes: list[Node]
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

    @property
    def effective_theta(self) -> np.ndarray:
        """What each mechanism is scored with: its parameters plus its quarantine module."""
        return self.theta + self.quarantine


def compile_population(roots: list[Node], scenario: Scenario) -> Layout:
    """Lay out the trees ``roots`` as arrays and re-point every node's numbers at them."""
    nodes, parent, owner = _level_order(roots)
    leaves: list[Mechanism] = []
    leaf_starts = []
    for root in roots:
        leaf_starts.append(len(leaves))
        _collect_mechanisms(root, leaves)
    keys = np.array([n.key for n in nodes])
    theta = np.array([m.theta for m in leaves])
    quarantine = np.array([m.quarantine for m in leaves])
    for i, node in enumerate(nodes):
        node.key = keys[i]
    for i, leaf in enumerate(leaves):
        leaf.theta = theta[i]
        leaf.quarantine = quarantine[i]
    row_of = {id(n): i for i, n in enumerate(nodes)}
    rules = {name: getattr(scenario.circuits, name) for name in RULES}
    parent_arr = np.array(parent, dtype=np.intp)
    owner_arr = np.array(owner, dtype=np.intp)
    sharpness = np.array([0.0 if p < 0 else nodes[p].sharpness for p in parent])
    leaf_rows = np.array([row_of[id(m)] for m in leaves], dtype=np.intp)
    return Layout(
        n_circuits=len(roots),
        nodes=nodes,
        parent=parent_arr,
        owner=owner_arr,
        sharpness=sharpness,
        key_step=scenario.circuits.router.key_learning_rate * sharpness,
        keys=keys,
        leaf_rows=leaf_rows,
        leaf_owner=owner_arr[leaf_rows],
        leaf_starts=np.array(leaf_starts, dtype=np.intp),
        theta=theta,
        quarantine=quarantine,
        learning_rate=np.array([rules[m.rule].learning_rate for m in leaves]),
        consolidation=np.array([rules[m.rule].consolidation for m in leaves]),
        target_row=np.array(
            [FIXED_TARGET_RULES.index(m.rule) if m.rule in FIXED_TARGET_RULES else -1
             for m in leaves],
            dtype=np.intp,
        ),
        cost=_costs(nodes, owner_arr, len(roots), scenario),
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


def _level_order(roots: list[Node]) -> tuple[list[Node], list[int], list[int]]:
    """Every node, roots first and then depth by depth (breadth first), with the row of
    each one's parent and the circuit it belongs to."""
    nodes: list[Node] = list(roots)
    parent = [-1] * len(roots)
    owner = list(range(len(roots)))
    row = 0
    while row < len(nodes):
        node = nodes[row]
        if isinstance(node, Router):
            nodes.extend(node.children)
            parent.extend([row] * len(node.children))
            owner.extend([owner[row]] * len(node.children))
        row += 1
    return nodes, parent, owner
