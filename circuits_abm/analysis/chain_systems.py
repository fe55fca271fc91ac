"""The linear systems of the schedule chain, solved as fast as their structure allows.

The moment equations (``circuits_abm.analysis.moments``) solve ``(I - K diag(d)) X = Y``
thousands of times in one prediction, with the same chain matrix ``K`` and a different
diagonal ``d`` for every mechanism and routing: ``K`` is the reversed slot chain for fixed
phases and the transposed step chain for geometric ones.  Written ``K = stay I + move Q``,
the schedules give ``Q`` one of four shapes, each with its own solve (``ChainSystem.of``
picks it once per chain):

* **a permutation** (a cycle, ``LoopSystem``): each equation couples a slot to one other,
  so the system is a recurrence around each loop of the permutation, ``O(N)`` per column;
* **a diagonal plus rank one**, ``Q = diag(e) + u v^T`` (uniform draws, a walk on a
  complete graph with equal weights; ``RankOneSystem``): Sherman-Morrison, ``O(N)`` per
  column;
* **sparse** (walks on rings, trees, grids; ``SparseSystem``): an LU in minimum-degree
  order that touches only the factors' pattern, ``O(N)`` per column for a ring or a tree;
* **anything else** (a walk on a dense graph with unequal weights): LAPACK's dense LU,
  ``O(N^3)``.

At 200 environments the structured solves take tens of microseconds where the dense one
takes over a millisecond.  A system that is singular (a mechanism that never learns
anywhere on a loop) falls back to the dense least-squares solution, as the dense path does.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from scipy import sparse

SINGULAR = 1e-14  # a pivot this close to zero sends the solve to dense least squares


class ChainSystem:
    """``K = stay I + move Q``; ``of`` recognises ``Q``'s structure once and returns the
    subclass that solves with it.  The dense solve is the reference the others fall back
    to when their system is singular."""

    structure = "dense"

    def __init__(self, matrix: np.ndarray, stay: float, move: float):
        self.matrix, self.stay, self.move = matrix, stay, move

    @classmethod
    def of(cls, matrix: np.ndarray, stay: float = 0.0, move: float = 1.0) -> ChainSystem:
        """The system for ``K = stay I + move matrix``, its structure detected exactly."""
        q = np.asarray(matrix, dtype=float)
        for structured in (LoopSystem, RankOneSystem, SparseSystem):
            system = structured.recognise(q, stay, move)
            if system is not None:
                return system
        return ChainSystem(q, stay, move)

    def moved(self, y: np.ndarray) -> np.ndarray:
        """``Q @ y``."""
        return self.matrix @ y

    def apply(self, y: np.ndarray) -> np.ndarray:
        """``K @ y`` for a vector or a matrix ``y``."""
        if self.stay == 0.0 and self.move == 1.0:  # the reversed chain of fixed phases
            return self.moved(y)
        return self.stay * y + self.move * self.moved(y)

    def solve(self, d: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``X`` with ``(I - K diag(d)) X = y`` (least squares if that is singular)."""
        columns = y.reshape(len(y), -1)
        x = self._structured_solve(d, columns)
        if x is None:
            x = self._dense_solve(d, columns)
        return x.reshape(y.shape)

    def _structured_solve(self, d: np.ndarray, y: np.ndarray) -> np.ndarray | None:
        return None

    def _dense_solve(self, d: np.ndarray, y: np.ndarray) -> np.ndarray:
        n = len(d)
        system = np.eye(n) * (1.0 - self.stay * d)[None, :] - self.move * self.matrix * d[None, :]
        try:
            return np.linalg.solve(system, y)
        except np.linalg.LinAlgError:
            return np.linalg.lstsq(system, y, rcond=None)[0]


class LoopSystem(ChainSystem):
    """``Q`` a permutation (a cycle of phases): a recurrence around each of its loops."""

    structure = "permutation"

    def __init__(self, matrix: np.ndarray, stay: float, move: float, successor: np.ndarray):
        super().__init__(matrix, stay, move)
        self.successor = successor  # Q[i, successor[i]] = 1
        self.loops, self.loop_starts = _loops(successor)

    @classmethod
    def recognise(cls, q: np.ndarray, stay: float, move: float) -> LoopSystem | None:
        """The system if ``q`` is a permutation matrix (0s, one 1 per row and column)."""
        if not np.all((q == 0.0) | (q == 1.0)):
            return None
        if not (np.all(q.sum(axis=1) == 1.0) and np.all(q.sum(axis=0) == 1.0)):
            return None
        return cls(q, stay, move, np.argmax(q, axis=1))

    def moved(self, y: np.ndarray) -> np.ndarray:
        return y[self.successor]

    def _structured_solve(self, d, y):
        x, solved = _loop_solve(self.loops, self.loop_starts, self.successor,
                                1.0 - self.stay * d, self.move * d, y)
        return x if solved else None


class RankOneSystem(ChainSystem):
    """``Q = diag(e) + u v^T`` (uniform draws, and walks on a graph whose every node has
    the same weight to every other): Sherman-Morrison on a diagonal minus rank one."""

    structure = "rank_one"

    def __init__(self, matrix, stay, move, u: np.ndarray, v: np.ndarray):
        super().__init__(matrix, stay, move)
        self.u, self.v = u, v
        self.extra = np.diag(matrix) - u * v  # e
        self.has_extra = bool(np.any(self.extra != 0.0))

    @classmethod
    def recognise(cls, q: np.ndarray, stay: float, move: float) -> RankOneSystem | None:
        """The system if off the diagonal every column of ``q`` is constant (``u = 1``)
        or every row is (``v = 1``)."""
        n = len(q)
        if n < 2:
            return None
        following = (np.arange(n) + 1) % n
        column_values = q[following, np.arange(n)]  # an off-diagonal entry of each column
        if _same_off_diagonal(q, np.tile(column_values, (n, 1))):
            return cls(q, stay, move, np.ones(n), column_values)
        row_values = q[np.arange(n), following]
        if _same_off_diagonal(q, np.tile(row_values[:, None], (1, n))):
            return cls(q, stay, move, row_values, np.ones(n))
        return None

    def moved(self, y: np.ndarray) -> np.ndarray:
        outer = np.multiply.outer(self.u, self.v @ y)
        if not self.has_extra:
            return outer
        return (self.extra if y.ndim == 1 else self.extra[:, None]) * y + outer

    def _structured_solve(self, d, y):
        x, solved = _rank_one_solve(1.0 - (self.stay + self.move * self.extra) * d,
                                    self.u, self.move * self.v * d, y)
        return x if solved else None


class SparseSystem(ChainSystem):
    """``Q`` sparse (walks on rings, trees, grids, any sparse graph): an LU factorisation in
    an order that keeps the factors sparse.

    The order and the factors' pattern depend on ``Q`` alone, so they are found once
    (``elimination_order``, minimum degree); each solve then touches only the entries of
    that pattern: ``O(sum_k c_k^2 + m sum_k c_k)`` for ``c_k`` entries below the diagonal
    in column ``k`` and ``m`` right-hand sides (``O(N m)`` for a tree or a ring).  No
    pivoting is needed: ``Q``'s rows sum to one and ``d <= 1``, so ``I - K diag(d)`` is
    diagonally dominant by rows in any order of the slots, and elimination without
    pivoting is stable for it (Golub & Van Loan, *Matrix Computations*, section 4.1)."""

    structure = "sparse"
    DENSEST = 1 / 30  # more fill than this share of n^3 is left to LAPACK's dense LU

    def __init__(self, matrix, stay, move, order: np.ndarray, later: np.ndarray,
                 starts: np.ndarray):
        super().__init__(matrix, stay, move)
        self.order, self.later, self.starts = order, later, starts
        permuted = matrix[np.ix_(order, order)]
        self.rows, self.cols = np.nonzero(permuted)
        self.values = permuted[self.rows, self.cols]
        self.sparse = sparse.csr_array(matrix)
        self.work = np.zeros(matrix.shape)  # the factors, reused: a fresh one costs more

    @classmethod
    def recognise(cls, q: np.ndarray, stay: float, move: float) -> SparseSystem | None:
        """The system if ``q``'s factors stay sparse in a minimum-degree order."""
        order, later, starts = elimination_order((q != 0) | (q.T != 0))
        counts = np.diff(starts)
        if float(np.sum(counts.astype(float) ** 2)) > cls.DENSEST * len(q) ** 3:
            return None
        return cls(q, stay, move, order, later, starts)

    def moved(self, y: np.ndarray) -> np.ndarray:
        return self.sparse @ y

    def _structured_solve(self, d, y):
        x, solved = _sparse_solve(self.rows, self.cols, self.values, self.order, self.later,
                                  self.starts, self.stay, self.move, d, y, self.work)
        return x if solved else None


def elimination_order(pattern: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A minimum-degree elimination order of a symmetric sparsity pattern, and the pattern
    of its factors: ``later[starts[k]:starts[k + 1]]`` are the positions (in that order)
    after ``k`` that elimination ``k`` touches, the fill included.

    Eliminating a slot joins all its remaining neighbours to each other (the fill); taking
    each time the slot with the fewest keeps that small."""
    n = len(pattern)
    graph = pattern.astype(bool)
    np.fill_diagonal(graph, False)
    alive = np.ones(n, dtype=bool)
    order, touched = [], []
    for _ in range(n):
        degree = np.where(alive, (graph & alive).sum(axis=1), n + 1)
        k = int(np.argmin(degree))
        neighbours = np.flatnonzero(graph[k] & alive)
        graph[np.ix_(neighbours, neighbours)] = True
        graph[neighbours, neighbours] = False
        alive[k] = False
        order.append(k)
        touched.append(neighbours)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    later = [np.sort(position[neighbours]) for neighbours in touched]
    starts = np.concatenate([[0], np.cumsum([len(x) for x in later])]).astype(np.int64)
    flat = np.concatenate(later).astype(np.int64) if n else np.zeros(0, dtype=np.int64)
    return np.array(order, dtype=np.int64), flat, starts


def _same_off_diagonal(q: np.ndarray, candidate: np.ndarray) -> bool:
    """Whether ``q`` equals ``candidate`` off the diagonal."""
    off = ~np.eye(len(q), dtype=bool)
    return bool(np.all(q[off] == candidate[off]))


def _loops(successor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The loops of a permutation, each listed from its smallest slot along ``successor``."""
    seen = np.zeros(len(successor), dtype=bool)
    order, starts = [], [0]
    for first in range(len(successor)):
        i = first
        while not seen[i]:
            seen[i] = True
            order.append(i)
            i = successor[i]
        if len(order) > starts[-1]:
            starts.append(len(order))
    return np.array(order, dtype=np.int64), np.array(starts, dtype=np.int64)


def _loop_solve(loops, starts, successor, diagonal, coupling, y):
    """Solve ``diagonal_i x_i - coupling_{s(i)} x_{s(i)} = y_i`` around each loop.

    With ``alpha_i = coupling_{s(i)} / diagonal_i`` and ``beta_i = y_i / diagonal_i``,
    ``x_i = alpha_i x_{s(i)} + beta_i``.  Unrolled once around a loop from its first slot
    ``i0``: ``x_i0 = sum_k (prod_{l<k} alpha) beta_k / (1 - prod alpha)``; the rest follow
    backwards along the loop.  Returns ``(x, False)`` where a pivot vanishes (singular)."""
    n, m = y.shape
    x = np.zeros((n, m))
    for i in range(n):
        if abs(diagonal[i]) < SINGULAR:
            return x, False
    for loop in range(len(starts) - 1):
        first, last = starts[loop], starts[loop + 1]
        head = loops[first]
        weight = 1.0
        for k in range(first, last):  # x[head] accumulates sum_k (prod alpha) beta_k
            i = loops[k]
            scale = weight / diagonal[i]
            for c in range(m):
                x[head, c] += scale * y[i, c]
            weight *= coupling[successor[i]] / diagonal[i]
        if abs(1.0 - weight) < SINGULAR:
            return x, False
        for c in range(m):
            x[head, c] /= 1.0 - weight
        after = head
        for k in range(last - 1, first, -1):
            i = loops[k]
            alpha, inverse = coupling[after] / diagonal[i], 1.0 / diagonal[i]
            for c in range(m):
                x[i, c] = alpha * x[after, c] + inverse * y[i, c]
            after = i
    return x, True


def _rank_one_solve(diagonal, u, w, y):
    """Solve ``(diag(diagonal) - u w^T) x = y`` by Sherman-Morrison: with ``D`` the
    diagonal, ``x = D^-1 y + D^-1 u (w^T D^-1 y) / (1 - w^T D^-1 u)``.  Returns
    ``(x, False)`` where that is singular."""
    n, m = y.shape
    x = np.empty((n, m))
    for i in range(n):
        if abs(diagonal[i]) < SINGULAR:
            return x, False
    denominator = 1.0
    along = np.zeros(m)  # w^T D^-1 y
    for i in range(n):
        inverse = 1.0 / diagonal[i]
        denominator -= w[i] * u[i] * inverse
        for c in range(m):
            x[i, c] = y[i, c] * inverse
            along[c] += w[i] * x[i, c]
    if abs(denominator) < SINGULAR:
        return x, False
    for i in range(n):
        scale = u[i] / diagonal[i] / denominator
        for c in range(m):
            x[i, c] += scale * along[c]
    return x, True


def _sparse_solve(rows, cols, values, order, later, starts, stay, move, d, y, a):
    """Solve ``(I - (stay I + move Q) diag(d)) x = y`` with ``Q``'s entries ``values`` at
    ``(rows, cols)`` of the slots permuted by ``order``, by LU without pivoting that
    touches only the factors' pattern (``later``, ``starts``: see ``elimination_order``),
    in the workspace ``a`` (only that pattern is cleared).  Returns ``(x, False)`` at a
    vanishing pivot (singular)."""
    n, m = y.shape
    for k in range(n):
        a[k, k] = 0.0
        for t in range(starts[k], starts[k + 1]):
            i = later[t]
            a[i, k] = 0.0
            a[k, i] = 0.0
            for u in range(starts[k], starts[k + 1]):
                a[i, later[u]] = 0.0
    for i in range(n):
        a[i, i] = 1.0 - stay * d[order[i]]
    for k in range(len(values)):
        a[rows[k], cols[k]] -= move * values[k] * d[order[cols[k]]]
    x = np.empty((n, m))
    for i in range(n):
        for c in range(m):
            x[i, c] = y[order[i], c]
    for k in range(n):
        pivot = a[k, k]
        if abs(pivot) < SINGULAR:
            return x, False
        for t in range(starts[k], starts[k + 1]):
            i = later[t]
            factor = a[i, k] / pivot
            if factor != 0.0:
                for u in range(starts[k], starts[k + 1]):
                    j = later[u]
                    a[i, j] -= factor * a[k, j]
                for c in range(m):
                    x[i, c] -= factor * x[k, c]
    for k in range(n - 1, -1, -1):
        for t in range(starts[k], starts[k + 1]):
            j = later[t]
            entry = a[k, j]
            for c in range(m):
                x[k, c] -= entry * x[j, c]
        inverse = 1.0 / a[k, k]
        for c in range(m):
            x[k, c] *= inverse
    solved = np.empty((n, m))
    for i in range(n):
        for c in range(m):
            solved[order[i], c] = x[i, c]
    return solved, True


# Compiled here rather than with decorators, as in the engine's kernels: mutation testing
# runs them as plain Python (NUMBA_DISABLE_JIT=1).
_loop_solve = njit(cache=True)(_loop_solve)
_sparse_solve = njit(cache=True)(_sparse_solve)
_rank_one_solve = njit(cache=True)(_rank_one_solve)
