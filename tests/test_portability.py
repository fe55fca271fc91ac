"""The same bits on every processor: the portable maths is accurate, the Jacobi
factorisation is right, and a run gives the same digests when this machine computes like a
generic x86-64 processor (docs/reproducibility.md).

Accuracy is checked against Python's ``decimal`` module at 50 digits (its ``exp`` and
``ln`` are correctly rounded), an implementation independent of the code under test.
"""

from __future__ import annotations

import math
import sys
from decimal import Decimal, localcontext

import numpy as np
import pytest
from helpers import ROOT
from hypothesis import given
from hypothesis import strategies as st

from circuits_abm.engine import kernels, linalg

sys.path.insert(0, str(ROOT / "benchmarks"))
import identity  # noqa: E402


def ulps(value: float, exact: Decimal) -> float:
    """Distance of ``value`` from ``exact`` in units in the last place of the rounded truth."""
    return float(abs(Decimal(value) - exact) / Decimal(math.ulp(float(exact))))


def exact_exp(x: float) -> Decimal:
    with localcontext() as context:
        context.prec = 50
        return Decimal(x).exp()


def exact_log(x: float) -> Decimal:
    with localcontext() as context:
        context.prec = 50
        return Decimal(x).ln()


@given(st.floats(-745.0, 709.7))
def test_exp_is_within_one_unit_in_the_last_place(x):
    assert ulps(kernels.exp(x), exact_exp(x)) <= 1.0


@given(st.floats(5e-324, 1.7e308))
def test_log_is_within_one_unit_in_the_last_place(x):
    assert ulps(kernels.log(x), exact_log(x)) <= 1.0


def test_exp_and_log_over_the_ranges_the_model_uses():
    """Replicator and softmax arguments (at most 0 after the max is taken off, down to
    underflow), shares from the floor to 1, and the neighbourhoods of the special cases."""
    rng = np.random.default_rng(2026)
    for x in np.concatenate([rng.uniform(-50.0, 0.0, 3000), rng.uniform(-1.0, 1.0, 3000),
                             rng.uniform(-1e-9, 1e-9, 200), [0.5 * math.log(2), -745.0]]):
        assert ulps(kernels.exp(float(x)), exact_exp(float(x))) <= 1.0, x
    for y in np.concatenate([10.0 ** rng.uniform(-300, 0, 3000), 1 + rng.uniform(-1e-7, 1e-7, 300),
                             [math.sqrt(2), math.sqrt(0.5), 2.2250738585072014e-308]]):
        assert ulps(kernels.log(float(y)), exact_log(float(y))) <= 1.0, y


def test_exp_log_and_power_at_their_edges():
    assert kernels.exp(0.0) == 1.0 and kernels.log(1.0) == 0.0
    assert kernels.exp(-800.0) == 0.0 and kernels.exp(710.0) == math.inf
    assert kernels.exp(-math.inf) == 0.0 and math.isnan(kernels.exp(math.nan))
    assert kernels.log(0.0) == -math.inf and math.isnan(kernels.log(-1.0))
    assert kernels.log(math.inf) == math.inf
    assert kernels.power(0.3, 0.0) == 1.0 and kernels.power(0.0, 0.0) == 1.0  # gamma = 0
    assert kernels.power(0.3, 1.0) == 0.3 and kernels.power(0.0, 0.5) == 0.0


@given(st.floats(1e-300, 1.0), st.floats(0.0, 1.0))
def test_power_is_as_accurate_as_exp_of_a_rounded_exponent(share, gamma):
    """``exp(g ln x)``: ``ln x`` and the product each round once (relative 2**-52 at most),
    so the exponent is off by up to ``2 |g ln x| 2**-52`` and the result by that, relative,
    plus exp's own unit: at most ``2 + 4 |g ln x|`` units of ``2**-53`` relative."""
    with localcontext() as context:
        context.prec = 50
        exact = (Decimal(gamma) * Decimal(share).ln()).exp()
    assert ulps(kernels.power(share, gamma), exact) <= 2.0 + 4.0 * abs(gamma * math.log(share))


@given(st.floats(-math.pi / 4, math.pi / 4))
def test_sine_and_cosine_agree_with_the_c_library(t):
    sine, cosine = kernels.sin_cos(t)
    assert abs(sine - math.sin(t)) <= 2 * math.ulp(math.sin(t)) + 1e-300
    assert abs(cosine - math.cos(t)) <= 2 * math.ulp(math.cos(t))


@pytest.mark.parametrize(("n", "sharing"), [(1, 0.5), (2, 0.1), (4, 0.3), (7, 0.9), (12, -0.05)])
def test_jacobi_finds_the_closed_form_eigensystem_of_homogeneous_sharing(n, sharing):
    """``G = s J + (1 - s) I``: eigenvalue ``1 + (n - 1) s`` along the all-ones vector and
    ``1 - s`` (n - 1 times) on its complement."""
    gram = sharing * np.ones((n, n)) + (1 - sharing) * np.eye(n)
    values, vectors = linalg.symmetric_eigen(gram)
    expected = sorted([1 + (n - 1) * sharing] + [1 - sharing] * (n - 1))
    np.testing.assert_allclose(sorted(values), expected, atol=1e-13)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(n), atol=1e-13)
    top = vectors[:, np.argmax(values) if sharing > 0 else np.argmin(values)]
    np.testing.assert_allclose(np.abs(top), np.full(n, 1 / math.sqrt(n)), atol=1e-12)


@given(st.integers(2, 9), st.integers(0, 2**32 - 1))
def test_jacobi_reconstructs_any_symmetric_matrix(n, seed):
    a = np.random.default_rng(seed).normal(size=(n, n))
    matrix = a + a.T
    values, vectors = linalg.symmetric_eigen(matrix)
    np.testing.assert_allclose(vectors @ np.diag(values) @ vectors.T, matrix, atol=1e-12)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(n), atol=1e-13)


@given(st.integers(1, 8), st.integers(0, 2**32 - 1), st.integers(0, 8))
def test_the_nearest_rotation_undoes_a_rotation_and_stays_orthogonal(n, seed, flat):
    """``current = target Q^T`` for an orthogonal Q: the nearest rotation is Q itself.  With
    columns of the target zeroed (a rank-deficient geometry) it is still orthogonal and
    still brings ``current`` onto ``target``."""
    rng = np.random.default_rng(seed)
    target = rng.normal(size=(n, n))
    target[:, : min(flat, n - 1)] = 0.0
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    current = target @ q.T
    rotation = linalg.nearest_rotation(target, current)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(n), atol=1e-10)
    np.testing.assert_allclose(current @ rotation, target, atol=1e-9)


def test_index_order_sums_match_their_definitions():
    rng = np.random.default_rng(5)
    w, rows, b = rng.normal(size=6), rng.normal(size=(6, 3)), rng.normal(size=(3, 4))
    total = 0.0  # not sum(): Python's sum of floats is compensated (Neumaier) since 3.12
    for k in range(3):
        total += float(w[k]) * float(rows[0, k])
    assert linalg.dot(w[:3], rows[0]) == total
    np.testing.assert_allclose(linalg.weighted_rows(w, rows), w @ rows, atol=1e-14)
    np.testing.assert_allclose(linalg.matmul(rows, b), rows @ b, atol=1e-14)
    assert linalg.norm(np.array([3.0, 4.0])) == 5.0


@pytest.mark.slow
def test_a_generic_processor_gives_the_same_runs_bit_for_bit():
    """Every scenario file, one seed, 1000 steps: digests of the tables and the final
    population here and in a process that sees a generic x86-64 processor (no AVX, FMA or
    AVX-512 for glibc and numpy, Numba's generic target, OpenBLAS's SSE3 kernels).  The
    probes show that those settings do change what the libraries compute here."""
    here = identity.probes()
    there = identity.in_generic_process("probes", (1,), 1000)
    flags = open("/proc/cpuinfo").read().split()  # noqa: SIM115
    if "fma" in flags or "avx2" in flags:
        assert any(here[name] != there[name] for name in here), "the settings changed nothing"
    assert identity.digests((1,), 1000) == identity.in_generic_process("digests", (1,), 1000)
