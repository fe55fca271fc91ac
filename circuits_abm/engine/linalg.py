"""Small dense linear algebra that gives the same bits on every processor.

numpy's ``@``, ``dot``, ``linalg.norm``, ``eigh`` and ``svd`` call OpenBLAS and LAPACK,
which pick their kernels by processor (Haswell, SkylakeX, Zen, ...) and add up in
different orders, so the last bits of a product, and whole eigenvectors of a repeated
eigenvalue, change from one machine to the next.  The engine uses these instead wherever
a number can reach a trajectory: sums in index order, and the symmetric eigenproblem by
cyclic Jacobi rotations (Golub & Van Loan, *Matrix Computations*, section 8.5), which
needs only arithmetic and square roots.  They are compiled with Numba like the kernels
(``circuits_abm.engine.kernels``) and call nothing outside this file, so Numba's on-disk
cache is rebuilt whenever this file changes (docs/reproducibility.md).

The matrices here are the Gram matrices over environments and products of the factor
matrices: tens of rows, at most a few hundred, where Jacobi is fast and accurate.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

SWEEPS = 100  # cyclic Jacobi converges quadratically: a few sweeps for the sizes used here


def dot(a, b):
    """``sum_k a_k b_k``, added up in index order."""
    total = 0.0
    for k in range(a.shape[0]):
        total += a[k] * b[k]
    return total


def norm(a):
    """The Euclidean length of vector ``a``, its squares added up in index order."""
    return math.sqrt(dot(a, a))


def matmul(a, b):
    """The matrix product ``a @ b`` of two 2-D arrays, each entry summed in index order."""
    out = np.zeros((a.shape[0], b.shape[1]))
    for i in range(a.shape[0]):
        for k in range(a.shape[1]):
            for j in range(b.shape[1]):
                out[i, j] += a[i, k] * b[k, j]
    return out


def weighted_rows(weights, rows):
    """``weights @ rows``: the rows of a 2-D array weighted and added up in index order."""
    out = np.zeros(rows.shape[1])
    for i in range(rows.shape[0]):
        for j in range(rows.shape[1]):
            out[j] += weights[i] * rows[i, j]
    return out


def _rotate(a, vt, p, q):
    """One Jacobi rotation that zeroes ``a[p, q]`` (and ``a[q, p]``), applied to both sides
    of ``a`` and to rows ``p`` and ``q`` of ``vt``, the eigenvectors' transpose (rows are
    contiguous, so this is the fast side)."""
    theta = (a[q, q] - a[p, p]) / (2.0 * a[p, q])
    if abs(theta) > 1e150:  # theta squared would overflow; t ~ 1 / (2 theta) to the last bit
        t = 0.5 / theta
    elif theta >= 0.0:
        t = 1.0 / (theta + math.sqrt(1.0 + theta * theta))
    else:
        t = -1.0 / (-theta + math.sqrt(1.0 + theta * theta))
    c = 1.0 / math.sqrt(1.0 + t * t)
    s = t * c
    for k in range(a.shape[0]):
        akp, akq = a[k, p], a[k, q]
        a[k, p] = c * akp - s * akq
        a[k, q] = s * akp + c * akq
    for k in range(a.shape[0]):
        apk, aqk = a[p, k], a[q, k]
        a[p, k] = c * apk - s * aqk
        a[q, k] = s * apk + c * aqk
    for k in range(vt.shape[1]):
        vpk, vqk = vt[p, k], vt[q, k]
        vt[p, k] = c * vpk - s * vqk
        vt[q, k] = s * vpk + c * vqk


def symmetric_eigen(matrix):
    """``(values, vectors)`` of a symmetric matrix, ``matrix = vectors diag(values)
    vectors^T``, in no particular order, by cyclic Jacobi sweeps until every off-diagonal
    entry is negligible beside the matrix's size (or ``SWEEPS`` sweeps)."""
    n = matrix.shape[0]
    a = matrix.copy()
    vt = np.eye(n)  # the eigenvectors as rows
    size = 0.0
    for i in range(n):
        for j in range(n):
            size += a[i, j] * a[i, j]
    for _ in range(SWEEPS):
        off = 0.0
        for p in range(n - 1):
            for q in range(p + 1, n):
                off += a[p, q] * a[p, q]
        if off <= 1e-34 * size:  # off-diagonal mass below (1e-17)^2 of the whole
            break
        for p in range(n - 1):
            for q in range(p + 1, n):
                if a[p, q] != 0.0:
                    _rotate(a, vt, p, q)
    values = np.empty(n)
    for i in range(n):
        values[i] = a[i, i]
    return values, np.ascontiguousarray(vt.T)


def nearest_rotation(target, current):
    """The orthogonal ``R`` that brings ``current @ R`` as close as possible to ``target``
    (orthogonal Procrustes: ``R = U V^T`` for ``M = current^T target = U S V^T``).

    ``V`` and ``S**2`` are the eigenvectors and eigenvalues of ``M^T M``; ``U``'s columns
    are ``M v / s`` in order of decreasing ``s``, each made orthogonal to the ones before;
    where ``M`` has (almost) nothing along ``v``, a unit vector completes ``U`` instead
    (any completion is optimal there)."""
    m = matmul(current.T, target)
    n = m.shape[0]
    squares, v = symmetric_eigen(matmul(m.T, m))
    order = np.argsort(-squares, kind="mergesort")
    v = np.ascontiguousarray(v[:, order])
    threshold = 1e-20 * max(squares.max(), 0.0)
    u = np.zeros((n, n))
    for i in range(n):
        stored = False
        if squares[order[i]] > threshold:
            column = np.zeros(n)
            for r in range(n):
                column[r] = dot(m[r], v[:, i])
            stored = _orthonormalise_into(u, i, column)
        unit = 0
        while not stored:
            column = np.zeros(n)
            column[unit] = 1.0
            stored = _orthonormalise_into(u, i, column)
            unit += 1
    return matmul(u, np.ascontiguousarray(v.T))


def _orthonormalise_into(basis, filled, column):
    """Make ``column`` orthogonal to ``basis[:, :filled]`` (twice, for round-off) and, if
    anything is left, store it normalised as column ``filled``.  Returns whether it was."""
    length = norm(column)
    for _ in range(2):
        for j in range(filled):
            along = dot(basis[:, j], column)
            for r in range(column.shape[0]):
                column[r] -= along * basis[r, j]
    left = norm(column)
    if left <= 1e-8 * length:
        return False
    for r in range(column.shape[0]):
        basis[r, filled] = column[r] / left
    return True


# Compiled here rather than with decorators, as in kernels.py: ``make mutation`` runs them
# as plain Python (NUMBA_DISABLE_JIT=1).
dot = njit(cache=True)(dot)
norm = njit(cache=True)(norm)
matmul = njit(cache=True)(matmul)
weighted_rows = njit(cache=True)(weighted_rows)
_rotate = njit(cache=True)(_rotate)
symmetric_eigen = njit(cache=True)(symmetric_eigen)
_orthonormalise_into = njit(cache=True)(_orthonormalise_into)
nearest_rotation = njit(cache=True)(nearest_rotation)
