"""Transfer couplings ``C``: how learning in one environment moves the same property elsewhere.

Each coupling is a linear operator ``x -> C x`` over environments, applied to a vector
``(N,)`` or to a batch ``(N, B)`` (several initial conditions over the same environments).
The cheapest exact or approximate form is chosen for the size:

* ``Homogeneous``: ``C = I + c (J - I)`` in O(N);
* ``Dense``: the exact matrix, for a few thousand environments at most;
* ``Sparse``: an RBF kernel truncated at ``CUTOFF`` length scales, exact where it
  matters, for short-range kernels at large N (few neighbours each);
* ``FourierFeatures``: ``C ≈ Φ Φᵀ`` with random Fourier features (Rahimi & Recht 2007),
  O(N·D) per product, for long-range RBF kernels at large N.  Random features cannot
  represent a kernel much narrower than the spacing of the points: every off-diagonal
  estimate carries noise of order ``sqrt(2 / D)`` and N of them add up; hence Sparse.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

# Up to this many environments the exact RBF kernel is used; above it a dense product costs
# more than the sparse or random-feature one (N² against N·D per column).
EXACT_KERNEL_LIMIT = 1000
CUTOFF = 4.0  # a truncated kernel ignores pairs further apart than this many length scales


class Coupling:
    """A transfer operator ``x -> C x`` over environments."""

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The coupling matrix times ``x`` (environments along axis 0), without forming it
        when a structure allows."""
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class Homogeneous(Coupling):
    """``C = I + c (J - I)``: every environment passes a fraction ``c`` to every other."""

    transfer: float

    def apply(self, x):
        return (1.0 - self.transfer) * x + self.transfer * x.sum(axis=0)


@dataclass(frozen=True, eq=False)
class Dense(Coupling):
    """An explicit ``(N, N)`` coupling matrix."""

    matrix: np.ndarray

    def apply(self, x):
        return self.matrix @ x


@dataclass(frozen=True, eq=False)
class Sparse(Coupling):
    """A sparse ``(N, N)`` coupling matrix (a truncated short-range kernel)."""

    matrix: sparse.csr_array

    @classmethod
    def of(cls, coords: np.ndarray, length: float):
        """``exp(-d² / (2 length²))`` for pairs closer than ``CUTOFF · length``, else 0
        (the largest entry dropped is exp(-CUTOFF² / 2) ≈ 3e-4)."""
        n = len(coords)
        pairs = cKDTree(coords).query_pairs(CUTOFF * length, output_type="ndarray")
        dist2 = np.sum((coords[pairs[:, 0]] - coords[pairs[:, 1]]) ** 2, axis=1)
        weights = np.exp(-dist2 / (2 * length**2))
        rows = np.concatenate([pairs[:, 0], pairs[:, 1], np.arange(n)])
        cols = np.concatenate([pairs[:, 1], pairs[:, 0], np.arange(n)])
        values = np.concatenate([weights, weights, np.ones(n)])
        return cls(sparse.csr_array((values, (rows, cols)), shape=(n, n)))

    def apply(self, x):
        return self.matrix @ x


def mean_neighbours(coords: np.ndarray, radius: float, sample: int = 200) -> float:
    """Average number of other points within ``radius`` (estimated on a sample of points)."""
    tree = cKDTree(coords)
    points = coords[:sample]  # coordinates are drawn i.i.d., so the first ones are a sample
    return float(np.mean(tree.query_ball_point(points, radius, return_length=True)) - 1)


@dataclass(frozen=True, eq=False)
class FourierFeatures(Coupling):
    """An RBF kernel approximated as ``Φ Φᵀ`` with ``D`` random Fourier features.

    Each entry of ``Φ Φᵀ`` is an unbiased estimate of the kernel with standard deviation
    at most ``sqrt(2 / D)``; see ``fourier_error`` for the error of a whole product.
    Features are stored in float32: the product is memory-bound and the dynamics do not
    need more than six digits of transfer.
    """

    features: np.ndarray  # (N, D)

    @classmethod
    def of(cls, coords: np.ndarray, length: float, n_features: int, rng: np.random.Generator):
        """Random Fourier features of an RBF kernel of ``length`` over ``coords``."""
        dim = coords.shape[1]
        weights = rng.normal(0.0, 1.0 / length, size=(dim, n_features))
        phase = rng.uniform(0.0, 2 * np.pi, size=n_features)
        phi = np.sqrt(2.0 / n_features) * np.cos(coords @ weights + phase)
        return cls(phi.astype(np.float32))

    def apply(self, x):
        phi = self.features
        return (phi @ (phi.T @ x.astype(np.float32))).astype(np.float64)


def rbf_kernel(coords: np.ndarray, length: float) -> np.ndarray:
    """Exact ``exp(-|x_e - x_f|² / (2 length²))``; ``length == 0`` means no transfer (``I``)."""
    if length == 0.0:
        return np.eye(len(coords))
    sq = np.sum(coords**2, axis=1)
    dist2 = np.maximum(sq[:, None] + sq[None, :] - 2 * coords @ coords.T, 0.0)
    return np.exp(-dist2 / (2 * length**2))


def kernel_coupling(
    coords: np.ndarray, length: float, n_features: int, rng: np.random.Generator
) -> Coupling:
    """The RBF transfer kernel over ``coords``, in the cheapest faithful form: none when
    ``length`` is 0, exact up to ``EXACT_KERNEL_LIMIT`` environments, truncated-sparse
    when each environment has fewer than ``n_features`` neighbours within the cutoff (the
    sparse product then costs no more than the random-feature one), random features else."""
    if length == 0.0:
        return Homogeneous(0.0)
    if len(coords) <= EXACT_KERNEL_LIMIT:
        return Dense(rbf_kernel(coords, length))
    if mean_neighbours(coords, CUTOFF * length) < n_features:
        return Sparse.of(coords, length)
    return FourierFeatures.of(coords, length, n_features, rng)


def fourier_error(coords: np.ndarray, length: float, n_features: int, x: np.ndarray,
                  rng: np.random.Generator) -> float:
    """Relative error ``|Φ Φᵀ x - K x| / |K x|`` of one random-feature draw against the exact
    kernel product: what the approximation costs at this size."""
    exact = rbf_kernel(coords, length) @ x
    approx = FourierFeatures.of(coords, length, n_features, rng).apply(x)
    return float(np.linalg.norm(approx - exact) / np.linalg.norm(exact))
