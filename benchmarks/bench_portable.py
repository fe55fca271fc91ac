"""What the same bits on every processor cost: the engine's portable ``exp``, ``log`` and
``power`` against the C library's, each in a compiled loop over a million arguments of the
ranges the model uses (docs/reproducibility.md).

Prints nanoseconds per call and the ratio.  Whole runs are timed by ``bench_step.py``;
``identity.py --generic`` (also in ``make bench``) shows that the digests are the same on
this processor and on a generic one.

Run with ``make bench`` or ``python benchmarks/bench_portable.py``.
"""

from __future__ import annotations

import math
import time

import numpy as np
from numba import njit

from circuits_abm.engine import kernels


@njit(cache=True)
def portable_loop(kind, values, exponent):
    total = 0.0
    for v in values:
        if kind == 0:
            total += kernels.exp(v)
        elif kind == 1:
            total += kernels.log(v)
        else:
            total += kernels.power(v, exponent)
    return total


@njit(cache=True)
def library_loop(kind, values, exponent):
    total = 0.0
    for v in values:
        if kind == 0:
            total += math.exp(v)
        elif kind == 1:
            total += math.log(v)
        else:
            total += v**exponent
    return total


def nanoseconds_per_call(loop, kind: int, values: np.ndarray, repeats: int = 5) -> float:
    """Best of ``repeats`` timings of one loop, per argument."""
    loop(kind, values[:10], 0.5)  # compile or load before timing
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        loop(kind, values, 0.5)
        best = min(best, time.perf_counter() - start)
    return best / len(values) * 1e9


def main() -> None:
    rng = np.random.default_rng(0)
    arguments = {
        "exp (replicator, softmax: -50..0)": (0, rng.uniform(-50.0, 0.0, 1_000_000)),
        "log (shares: 1e-12..1)": (1, 10.0 ** rng.uniform(-12.0, 0.0, 1_000_000)),
        "power (share ** 0.5)": (2, 10.0 ** rng.uniform(-12.0, 0.0, 1_000_000)),
    }
    print("portable maths against the C library's, compiled, per call:")
    for name, (kind, values) in arguments.items():
        ours = nanoseconds_per_call(portable_loop, kind, values)
        theirs = nanoseconds_per_call(library_loop, kind, values)
        print(f"  {name:<36} portable {ours:5.1f} ns   C library {theirs:5.1f} ns   "
              f"ratio {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
