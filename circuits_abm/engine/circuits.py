"""Circuits: the agents, and the trees they are made of.

A circuit is a tree.  A leaf is a ``Mechanism`` (a parameter vector ``theta`` in demand
space and a learning rule, see ``circuits_abm.engine.rules``).  An inner node is a
``Router``: a sharpness and children, each child holding a ``key`` in cue space that
the router matches against the current context.  Routers nest to any depth.

The Mesa agent ``Circuit`` is the readable identity layer: id, lineage, birth step, the
tree.  The numbers (``theta``, ``key``) are *views* into the population's numpy arrays
(see ``circuits_abm.engine.population``), so the fast population-wide step and the per-circuit
reference step read and write the same state.

Structure strings name a tree compactly: a rule's letter (``n``, ``w``, ``g``) for a mechanism
and ``R[...]`` for a router, e.g. ``R[g,R[n,n]]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import mesa
import numpy as np

from circuits_abm.engine import linalg
from circuits_abm.engine.rules import LETTER_RULES, RULE_LETTERS, RULES

if TYPE_CHECKING:
    from circuits_abm.engine.model import CircuitsModel

KINDS = (*RULES, "router")


class Mechanism:
    """A leaf: parameters ``theta`` in demand space, learned by ``rule``.

    ``quarantine`` is the mechanism's quarantine module (zeros unless the ``route`` update
    rule moves monitored updates there): it adds to ``theta`` wherever the mechanism is
    scored, and is emptied when the scenario discards it."""

    __slots__ = ("rule", "theta", "key", "quarantine")

    def __init__(self, rule: str, theta: np.ndarray, key: np.ndarray,
                 quarantine: np.ndarray | None = None):
        self.rule = rule
        self.theta = theta
        self.key = key
        self.quarantine = np.zeros_like(theta) if quarantine is None else quarantine


class Router:
    """An inner node: routes by ``softmax_j(sharpness * <key_j, q_e>)`` over its children."""

    __slots__ = ("sharpness", "children", "key")

    def __init__(self, sharpness: float, children: list[Node], key: np.ndarray):
        self.sharpness = sharpness
        self.children = children
        self.key = key


Node = Mechanism | Router


def structure_string(node: Node) -> str:
    """Compact structure name, e.g. ``R[g,R[n,n]]``."""
    if isinstance(node, Mechanism):
        return RULE_LETTERS[node.rule]
    return "R[" + ",".join(structure_string(c) for c in node.children) + "]"


def kind_of(node: Node) -> str:
    """The circuit kind of a tree: its root's rule, or ``router``."""
    return node.rule if isinstance(node, Mechanism) else "router"


def walk(node: Node, path: str = "root") -> Iterator[tuple[str, Node]]:
    """Pre-order ``(path, node)`` pairs: the root is ``root``, its children ``0``, ``1``, ...

    and a grandchild ``1.0``.
    """
    yield path, node
    if isinstance(node, Router):
        for i, child in enumerate(node.children):
            yield from walk(child, str(i) if path == "root" else f"{path}.{i}")


def mechanisms(node: Node) -> list[Mechanism]:
    """Leaves in pre-order (the order the population arrays and the noise use)."""
    return [n for _, n in walk(node) if isinstance(n, Mechanism)]


def routers(node: Node) -> list[Router]:
    """Every router in the tree under ``node``, depth first."""
    return [n for _, n in walk(node) if isinstance(n, Router)]


def copy_tree(node: Node) -> Node:
    """Deep copy with fresh arrays (an offspring must not share its parent's memory)."""
    if isinstance(node, Mechanism):
        return Mechanism(node.rule, np.array(node.theta), np.array(node.key),
                         np.array(node.quarantine))
    return Router(node.sharpness, [copy_tree(c) for c in node.children], np.array(node.key))


_TOKEN = re.compile(r"\s*(R\[|\]|,|[" + re.escape("".join(LETTER_RULES)) + r"])\s*")
_GRAMMAR = f"use {', '.join(LETTER_RULES)} and R[child,child,...]"


Tree = str | list  # a parsed structure: a mechanism's letter, or a router's list of children

# Routers inside routers: far deeper than selection builds from a few circuits, and far
# short of Python's recursion limit, which the engine's walks over a tree would reach.
MAX_DEPTH = 32


def parse_tree(text: str) -> Tree:
    """Parse a structure string into nested lists: ``"R[g,R[n,n]]"`` -> ``["g", ["n", "n"]]``.

    The one parser of the structure grammar, in one pass with a stack (no recursion, so no
    input can exhaust Python's stack); ``ValueError`` says what is wrong."""
    tokens = _tokenise(text)
    shown = _shown(text)
    open_routers: list[list] = []  # the children read so far of each router not yet closed
    tree: Tree | None = None
    want_child = True  # a letter or R[ comes next (else a ',' or a ']')
    for pos, token in enumerate(tokens):
        if tree is not None:
            rest = "".join(tokens[pos:])
            raise ValueError(f"structure {shown}: unexpected {rest[:40]!r} after a complete "
                             "circuit")
        if want_child and token == "R[":
            if len(open_routers) == MAX_DEPTH:
                raise ValueError(f"structure {shown}: routers nest more than {MAX_DEPTH} deep")
            open_routers.append([])
            continue
        if want_child:
            if token not in LETTER_RULES:
                raise ValueError(f"structure {shown}: expected {', '.join(LETTER_RULES)} or R[ "
                                 f"but found {token!r}")
            node: Tree = token
        elif token == ",":
            want_child = True
            continue
        elif token == "]":
            node = open_routers.pop()
            if len(node) < 2:
                raise ValueError(f"structure {shown}: a router needs at least two children")
        else:
            raise ValueError(f"structure {shown}: expected ',' or ']' but found {token!r}")
        if open_routers:
            open_routers[-1].append(node)
            want_child = False
        else:
            tree = node
    if tree is None:
        raise ValueError(f"structure {shown}: missing ']'")
    return tree


def _shown(text: str) -> str:
    """The structure as an error message quotes it: whole when short, else its start."""
    return repr(text) if len(text) <= 80 else f"{text[:60]!r}... ({len(text)} characters)"


def parse_structure(
    text: str, demand_dim: int, cue_dim: int, sharpness: float, rng: np.random.Generator
) -> Node:
    """Build an untrained tree from a structure string (theta = 0, random unit keys drawn in
    pre-order: a node's key before its children's)."""
    return _build(parse_tree(text), demand_dim, cue_dim, sharpness, rng)


def _build(tree: Tree, demand_dim, cue_dim, sharpness, rng) -> Node:
    key = random_unit(cue_dim, rng)
    if isinstance(tree, str):
        return Mechanism(LETTER_RULES[tree], np.zeros(demand_dim), key)
    children = [_build(child, demand_dim, cue_dim, sharpness, rng) for child in tree]
    return Router(sharpness, children, key)


def _tokenise(text: str) -> list[str]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise ValueError(
                f"structure {_shown(text)}: cannot read {text[pos:pos + 40]!r}; {_GRAMMAR}"
            )
        tokens.append(match.group(1))
        pos = match.end()
    if not tokens:
        raise ValueError(f"structure is empty; {_GRAMMAR}")
    return tokens


def random_unit(dim: int, rng: np.random.Generator) -> np.ndarray:
    """A direction drawn uniformly on the unit sphere in ``dim`` dimensions."""
    v = rng.normal(size=dim)
    return v / linalg.norm(v)


class Circuit(mesa.Agent):
    """One competing circuit: identity (id, lineage, birth), its tree, and views on its row
    of the population's arrays (``share``, ``fitness``).

    ``lineage`` is shared by near-identical variants: parameter changes (mutation, sharpness
    perturbation) keep it, structural changes found a new lineage whose ``parent_lineage``
    points back, so dominance can be measured per lineage rather than per circuit.
    """

    def __init__(
        self,
        model: CircuitsModel,
        root: Node,
        lineage: int | None = None,
        parent_lineage: int | None = None,
        parent_id: int | None = None,
    ):
        super().__init__(model)
        self.root = root
        self.lineage = model.new_lineage() if lineage is None else lineage
        self.parent_lineage = parent_lineage
        self.parent_id = parent_id
        self.born = model.steps
        # A circuit's tree never changes shape after birth (variation edits a copy), so
        # its kind, structure string and mechanisms' tree paths are fixed.
        self.kind = kind_of(root)
        self.structure = structure_string(root)
        paths = [path for path, node in walk(root) if isinstance(node, Mechanism)]
        order = sorted(range(len(paths)), key=paths.__getitem__)
        # The mechanisms' tree paths in sorted order (how the records list them), and each
        # one's position in pre-order (its row among the circuit's mechanisms).
        self.mechanisms_by_path = ([paths[k] for k in order], order)
        self.position = -1  # its row in the model's arrays, set by the model

    @property
    def share(self) -> float:
        """This circuit's share of the population (a view on ``model.shares``)."""
        return float(self.model.shares[self.position])

    @property
    def fitness(self) -> float:
        """This circuit's fitness in the last step (a view on ``model.fitness``)."""
        return float(self.model.fitness[self.position])

    def __repr__(self) -> str:
        return f"Circuit(id={self.unique_id}, lineage={self.lineage}, {self.structure})"
