"""The structured solves of the schedule chain's systems ``(I - K diag(d)) X = Y``.

Oracles: closed forms worked out by hand for a two-slot loop and a rank-one chain, and for
random systems the defining equation itself (the residual, computed with plain numpy).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from circuits_abm.analysis.chain_systems import ChainSystem


def residual(system: ChainSystem, d: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    k = system.stay * np.eye(len(d)) + system.move * system.matrix
    return float(np.abs((np.eye(len(d)) - k * d[None, :]) @ x - y).max())


def test_a_two_slot_loop_by_hand():
    # x0 - d1 x1 = y0 and x1 - d0 x0 = y1, so x0 = (y0 + d1 y1) / (1 - d0 d1).
    system = ChainSystem.of(np.array([[0.0, 1.0], [1.0, 0.0]]))
    assert system.structure == "permutation"
    d, y = np.array([0.5, 0.8]), np.array([1.0, 2.0])
    x = system.solve(d, y)
    assert x[0] == pytest.approx((1.0 + 0.8 * 2.0) / (1 - 0.4), rel=1e-14)
    assert x[1] == pytest.approx((2.0 + 0.5 * 1.0) / (1 - 0.4), rel=1e-14)


def test_a_rank_one_chain_by_hand():
    # Every row of K is w: (I - 1 (w d)^T) x = y gives x = y + 1 s with
    # s = (w d) . y / (1 - (w d) . 1).
    w = np.array([0.2, 0.3, 0.5])
    system = ChainSystem.of(np.tile(w, (3, 1)))
    assert system.structure == "rank_one"
    d, y = np.array([0.9, 0.1, 0.4]), np.array([1.0, -1.0, 3.0])
    s = (w * d) @ y / (1 - (w * d).sum())
    assert system.solve(d, y) == pytest.approx(y + s, rel=1e-14)


def test_structure_is_recognised_exactly():
    assert ChainSystem.of(np.roll(np.eye(5), 1, axis=1)).structure == "permutation"
    assert ChainSystem.of(np.full((4, 4), 0.25), 0.5, 0.5).structure == "rank_one"
    columns = np.tile(np.array([[0.1], [0.2], [0.7]]), (1, 3))
    assert ChainSystem.of(columns).structure == "rank_one"
    almost = np.roll(np.eye(5), 1, axis=1)
    almost[0, 0] = 1e-12
    assert ChainSystem.of(almost).structure == "dense"
    complete = (np.ones((6, 6)) - np.eye(6)) / 5  # a walk on a complete graph
    assert ChainSystem.of(complete).structure == "rank_one"
    assert ChainSystem.of(ring(40, np.random.default_rng(0))).structure == "sparse"
    assert ChainSystem.of(tree(200, np.random.default_rng(0))).structure == "sparse"


def test_a_tree_or_a_ring_is_eliminated_without_fill():
    # Minimum degree takes leaves first: each elimination touches only the slot's one
    # remaining neighbour, and a ring's first elimination joins its two neighbours, after
    # which it is a ring one shorter: at most two entries a column.
    from circuits_abm.analysis.chain_systems import elimination_order

    rng = np.random.default_rng(1)
    _, _, starts = elimination_order(tree(100, rng) != 0)
    assert np.diff(starts).max() == 1 and np.diff(starts).sum() == 99
    _, _, starts = elimination_order(ring(100, rng) != 0)
    assert np.diff(starts).max() == 2


def tree(n: int, rng: np.random.Generator) -> np.ndarray:
    """The transition matrix of a walk on a random tree with random weights."""
    weights = np.zeros((n, n))
    for i in range(1, n):
        j = int(rng.integers(0, i))
        weights[i, j] = weights[j, i] = rng.uniform(0.5, 2.0)
    return weights / weights.sum(axis=1, keepdims=True)


def ring(n: int, rng: np.random.Generator) -> np.ndarray:
    """The transition matrix of a walk on a ring with random weights, slots shuffled."""
    weights = np.zeros((n, n))
    for i in range(n):
        weights[i, (i + 1) % n] = weights[(i + 1) % n, i] = rng.uniform(0.5, 2.0)
    shuffle = rng.permutation(n)
    weights = weights[np.ix_(shuffle, shuffle)]
    return weights / weights.sum(axis=1, keepdims=True)


def test_apply_is_the_matrix_product():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(6, 3))
    for matrix in (np.eye(6)[rng.permutation(6)], np.tile(rng.random(6), (6, 1)),
                   rng.random((6, 6))):
        system = ChainSystem.of(matrix, 0.3, 0.7)
        assert system.apply(y) == pytest.approx((0.3 * np.eye(6) + 0.7 * matrix) @ y)


def test_a_singular_system_falls_back_to_least_squares():
    # d = 1 with nothing to learn: every structure's system is singular, and the answer is
    # the least-squares one (zero for a zero right-hand side), not a division by zero.
    rng = np.random.default_rng(2)
    for matrix, structure in ((np.roll(np.eye(30), 1, axis=1), "permutation"),
                              (np.full((30, 30), 1 / 30), "rank_one"),
                              (ring(30, rng), "sparse"), (rng.dirichlet(np.ones(30), 30), "dense")):
        system = ChainSystem.of(matrix)
        assert system.structure == structure
        x = system.solve(np.ones(30), np.zeros((30, 2)))
        assert np.all(x == 0.0), structure


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40),
       shape=st.sampled_from(["permutation", "rows", "columns", "ring", "tree", "dense"]),
       stay=st.sampled_from([0.0, 0.5, 0.9]))
def test_every_structure_solves_its_system(seed, n, shape, stay):
    rng = np.random.default_rng(seed)
    if shape == "permutation":  # any permutation, so several loops of any length
        matrix = np.eye(n)[rng.permutation(n)]
    elif shape == "rows":
        matrix = np.tile(rng.dirichlet(np.ones(n)), (n, 1))
    elif shape == "columns":
        matrix = np.tile(rng.dirichlet(np.ones(n))[:, None], (1, n))
    elif shape == "ring":
        matrix = ring(n, rng) if n > 2 else np.eye(n)
    elif shape == "tree":
        matrix = tree(n, rng) if n > 1 else np.eye(n)
    else:
        matrix = rng.dirichlet(np.ones(n), size=n)
    system = ChainSystem.of(matrix, stay, 1.0 - stay)
    if shape in ("ring", "tree") and n >= 20:  # small ones are left to the dense solve
        assert system.structure == "sparse"
    d = rng.uniform(0.0, 0.99, n)
    y = rng.normal(size=(n, 3))
    x = system.solve(d, y)
    assert np.all(np.isfinite(x))
    assert residual(system, d, x, y) < 1e-9
    assert system.solve(d, y[:, 0]) == pytest.approx(x[:, 0], rel=1e-12, abs=1e-12)
