"""Variation: offspring circuits made by editing a copy of a parent's tree.

Each operator takes a fresh copy of the parent's tree and changes one node of it:

* ``split``: a node becomes a router over two copies of itself, keyed on the current context
  versus the usual one (this is how routers, and routers inside routers, appear);
* ``add_child``: a router gains an untrained naive child keyed on the current context;
* ``duplicate_child``: a router gains a copy of one of its children, with a nudged key;
* ``remove_child``: a router loses a child (a router left with one child becomes that child);
* ``mutate``: a mechanism's parameters, or a router's keys, get Gaussian noise;
* ``collapse``: a router becomes the mechanism it currently routes the context to;
* ``switch_rule``: a mechanism switches learning rule (naive / weighted / generalist);
* ``perturb_sharpness``: a router's sharpness is multiplied by a log-normal factor.

Structural operators found a new lineage; parameter-only ones (mutate, perturb_sharpness)
keep the parent's, so a cloud of near-identical variants counts as one lineage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from circuits_abm.engine import kernels, linalg
from circuits_abm.engine.circuits import (
    Mechanism,
    Node,
    Router,
    copy_tree,
    random_unit,
    walk,
)
from circuits_abm.engine.rules import RULES

if TYPE_CHECKING:
    from circuits_abm.engine.scenario import Scenario

@dataclass(frozen=True)
class Context:
    """What an operator may look at: the random generator, constants, the current context."""

    rng: np.random.Generator
    scenario: Scenario
    cue: np.ndarray  # cue of the current context (mix-weighted for mixture phases)
    cue_centre: np.ndarray  # mean training cue
    monitor: np.ndarray | None = None  # the monitored direction, for block and route
    rule: str = "plain"  # the motivation update rule in force

    def contrast_key(self) -> np.ndarray:
        """Unit key pointing from the usual context to the current one."""
        direction = self.cue - self.cue_centre
        norm = linalg.norm(direction)
        if norm < 1e-9:
            return random_unit(len(self.cue), self.rng)
        return direction / norm


def choose_operator(root: Node, ctx: Context) -> str:
    """Draw an operator by the scenario's weights among those that apply to ``root``."""
    has_router = isinstance(root, Router)
    weights = ctx.scenario.variation.operators
    names = [
        name for name, op in OPERATORS.items()
        if (has_router or not op.needs_router) and weights.get(name, 0) > 0
    ]
    if not names:
        return ""
    w = np.array([weights[op] for op in names])
    return names[int(ctx.rng.choice(len(names), p=w / w.sum()))]


def make_offspring(root: Node, operator: str, ctx: Context) -> Node:
    """A modified copy of ``root`` (the parent is never touched)."""
    child = copy_tree(root)
    return OPERATORS[operator].apply(child, ctx)


def _slots(root: Node) -> list[tuple[Node, Router | None, int]]:
    """Every node with its parent router and index there (parent None for the root)."""
    out: list[tuple[Node, Router | None, int]] = [(root, None, -1)]
    for _, node in walk(root):
        if isinstance(node, Router):
            out.extend((c, node, i) for i, c in enumerate(node.children))
    return out


def _pick(items: list, ctx: Context):
    return items[int(ctx.rng.integers(len(items)))]


def _replace(root: Node, parent: Router | None, index: int, new: Node) -> Node:
    """Put ``new`` where the old node was; returns the (possibly new) root."""
    if parent is None:
        return new
    parent.children[index] = new
    return root


def _routers(root: Node) -> list[tuple[Node, Router | None, int]]:
    return [slot for slot in _slots(root) if isinstance(slot[0], Router)]


def _mechanisms(root: Node) -> list[tuple[Node, Router | None, int]]:
    return [slot for slot in _slots(root) if isinstance(slot[0], Mechanism)]


def split(root: Node, ctx: Context) -> Node:
    """Replace a node by a router over two copies of it, with opposite contrast keys."""
    node, parent, index = _pick(_slots(root), ctx)
    key = ctx.contrast_key()
    first, second = copy_tree(node), copy_tree(node)
    first.key, second.key = key, -key
    sharpness = ctx.scenario.circuits.router.initial_sharpness
    return _replace(root, parent, index, Router(sharpness, [first, second], np.array(node.key)))


def add_child(root: Node, ctx: Context) -> Node:
    """Give a router a new naive child with zero parameters and a contrast key."""
    router, _, _ = _pick(_routers(root), ctx)
    dim = len(_mechanisms(root)[0][0].theta)
    router.children.append(Mechanism("naive", np.zeros(dim), ctx.contrast_key()))
    return root


def duplicate_child(root: Node, ctx: Context) -> Node:
    """Give a router a copy of one of its children, with a nudged key."""
    router, _, _ = _pick(_routers(root), ctx)
    twin = copy_tree(_pick(router.children, ctx))
    twin.key = _nudged_unit(twin.key, ctx)
    router.children.append(twin)
    return root


def remove_child(root: Node, ctx: Context) -> Node:
    """Drop a router's child; a router left with one child is replaced by it, and the child
    takes the router's key."""
    router, parent, index = _pick(_routers(root), ctx)
    router.children.pop(int(ctx.rng.integers(len(router.children))))
    if len(router.children) == 1:
        survivor = router.children[0]
        survivor.key = router.key
        return _replace(root, parent, index, survivor)
    return root


def mutate(root: Node, ctx: Context) -> Node:
    """Gaussian noise on a mechanism's parameters or a router's keys.  A mutation is a change
    of parameters like a learning update, so the monitor treats it the same way: under
    ``block`` its monitored component is dropped, under ``route`` it goes to quarantine."""
    node, _, _ = _pick(_slots(root), ctx)
    scale = ctx.scenario.variation.mutation_scale
    if isinstance(node, Mechanism):
        change = ctx.rng.normal(0.0, scale, size=node.theta.shape)
        if ctx.rule in ("block", "route"):
            along = linalg.dot(change, ctx.monitor) * ctx.monitor
            change = change - along
            if ctx.rule == "route":
                node.quarantine = node.quarantine + along
        node.theta = node.theta + change
    else:
        for c in node.children:
            c.key = _nudged_unit(c.key, ctx)
    return root


def collapse(root: Node, ctx: Context) -> Node:
    """Replace a router by the leaf it routes the current cue to (it takes the router's key)."""
    router, parent, index = _pick(_routers(root), ctx)
    node: Node = router
    while isinstance(node, Router):
        logits = node.sharpness * np.array([linalg.dot(c.key, ctx.cue) for c in node.children])
        node = node.children[int(np.argmax(logits))]
    leaf = copy_tree(node)
    leaf.key = router.key
    return _replace(root, parent, index, leaf)


def switch_rule(root: Node, ctx: Context) -> Node:
    """Give a mechanism another learning rule, keeping its parameters."""
    leaf, _, _ = _pick(_mechanisms(root), ctx)
    leaf.rule = _pick([r for r in RULES if r != leaf.rule], ctx)
    return root


def perturb_sharpness(root: Node, ctx: Context) -> Node:
    """Multiply a router's sharpness by a log-normal factor, capped at ``max_sharpness``."""
    router, _, _ = _pick(_routers(root), ctx)
    factor = kernels.exp(ctx.rng.normal(0.0, ctx.scenario.variation.sharpness_scale))
    router.sharpness = float(
        min(router.sharpness * factor, ctx.scenario.circuits.router.max_sharpness)
    )
    return root


def _nudged_unit(key: np.ndarray, ctx: Context) -> np.ndarray:
    nudged = key + ctx.rng.normal(0.0, ctx.scenario.variation.mutation_scale, size=key.shape)
    norm = linalg.norm(nudged)
    return nudged / norm if norm > 1e-12 else random_unit(len(key), ctx.rng)


@dataclass(frozen=True)
class Operator:
    """A variation operator: the edit it makes, its default weight in a scenario's
    ``variation.operators``, whether it needs a router to act on, and whether its offspring
    stays in the parent's lineage (parameter-only edits) or founds a new one."""

    name: str
    apply: Callable[[Node, Context], Node]
    default_weight: float
    needs_router: bool = False
    keeps_lineage: bool = False


# The registry.  Its order is the order operators are drawn in, so it is part of what a
# seed reproduces: append new operators at the end.
OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in (
        Operator("split", split, 1.0),
        Operator("add_child", add_child, 0.5, needs_router=True),
        Operator("duplicate_child", duplicate_child, 0.5, needs_router=True),
        Operator("remove_child", remove_child, 0.5, needs_router=True),
        Operator("mutate", mutate, 2.0, keeps_lineage=True),
        Operator("collapse", collapse, 0.5, needs_router=True),
        Operator("switch_rule", switch_rule, 0.5),
        Operator("perturb_sharpness", perturb_sharpness, 1.0, needs_router=True,
                 keeps_lineage=True),
    )
}
OPERATOR_NAMES = tuple(OPERATORS)
DEFAULT_OPERATOR_WEIGHTS = {name: op.default_weight for name, op in OPERATORS.items()}
PARAMETER_ONLY = frozenset(name for name, op in OPERATORS.items() if op.keeps_lineage)
