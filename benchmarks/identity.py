"""Are the results seed-for-seed what they were, and the same on every processor?

``digests()`` runs every scenario file in ``scenarios/`` for seeds 1 and 2 (at most 3000
steps each) and hashes each run's timeseries, phases and quarantine tables and its final
population (shares, parameters, keys, structures).  ``identity.json`` holds the digests
made in the locked environment (``requirements-dev.lock``); ``bench_step.py`` and
``make bench`` compare against it.  The record was last written when the engine's
arithmetic became independent of the processor (the factorisation by Jacobi rotations, the
portable ``exp``/``log``/``power``, sums in index order; docs/reproducibility.md), which
changed every trajectory; the canonical regime rates were measured again after it.

**Another processor, on this machine.**  ``--generic`` computes the digests twice: here,
and in a process that sees a generic x86-64 processor (``generic_cpu_environment``): Numba
compiles for the ``generic`` target, glibc's maths ignores AVX, AVX2, AVX-512 and FMA,
numpy's ufuncs use none of their optional instruction sets, and OpenBLAS runs its Prescott
(SSE3) kernels.  Each of those changes the bits of the library it controls (``probes``
shows it), so equal digests mean that the results do not depend on them.  The test
``tests/test_portability.py`` does the same on fewer, shorter runs.

``python benchmarks/identity.py --write`` records the current code's digests (only after
a change that is meant to alter results, with the reason in the commit).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from circuits_abm.engine.loading import load_scenario
from circuits_abm.engine.model import CircuitsModel

ROOT = Path(__file__).resolve().parent.parent
RECORD = Path(__file__).with_name("identity.json")
SEEDS = (1, 2)
MAX_STEPS = 3000


def run_digest(path: Path, seed: int, max_steps: int = MAX_STEPS) -> str:
    """sha256 of one run's tables (as CSV, full float precision) and final population."""
    model = CircuitsModel(path, rng=seed, steps=min(load_scenario(path).steps, max_steps))
    model.run()
    digest = hashlib.sha256()
    for table in model.recorder.tables():
        digest.update(table.to_csv(float_format="%r").encode())
    for array in (model.shares, model.layout.theta, model.layout.keys):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(" ".join(c.structure for c in model.circuits).encode())
    return digest.hexdigest()


def digests(seeds: tuple[int, ...] = SEEDS, max_steps: int = MAX_STEPS) -> dict[str, str]:
    """``{"<scenario file> seed <n>": digest}`` for every scenario file and seed."""
    return {
        f"{path.name} seed {seed}": run_digest(path, seed, max_steps)
        for path in sorted((ROOT / "scenarios").glob("*.toml"))
        for seed in seeds
    }


def compare() -> tuple[int, int]:
    """(runs identical to the record, runs compared)."""
    recorded = json.loads(RECORD.read_text())
    now = digests()
    return sum(now.get(name) == value for name, value in recorded.items()), len(recorded)


def generic_cpu_environment() -> dict[str, str]:
    """Environment variables under which this machine computes like a generic x86-64 one.

    Each names only what this machine has: numpy refuses to disable a feature it was built
    to assume, so only the optional instruction sets it found at run time are listed."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__  # noqa: PLC0415

    optional = [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]
    return {
        **os.environ,
        "NUMBA_CPU_NAME": "generic",
        "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX,-AVX2,-AVX512F,-FMA,-FMA4",
        "NPY_DISABLE_CPU_FEATURES": " ".join(optional),
        "OPENBLAS_CORETYPE": "Prescott",
    }


def probes() -> dict[str, str]:
    """Digests of what each library computes on this processor: the C library's ``exp``,
    numpy's vectorised ``exp``, and an OpenBLAS matrix product.  Under
    ``generic_cpu_environment`` at least one differs on any machine with AVX2 or FMA."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-20.0, 20.0, 4096)
    a, b = rng.normal(size=(64, 64)), rng.normal(size=(64, 64))
    return {
        "glibc exp": hashlib.sha256(np.array([math.exp(v) for v in x]).tobytes()).hexdigest(),
        "numpy exp": hashlib.sha256(np.exp(x).tobytes()).hexdigest(),
        "OpenBLAS product": hashlib.sha256((a @ b).tobytes()).hexdigest(),
    }


def in_generic_process(what: str, seeds: tuple[int, ...], max_steps: int) -> dict[str, str]:
    """``digests`` (``what="digests"``) or ``probes`` computed by a process that sees a
    generic processor."""
    output = subprocess.run(
        [sys.executable, __file__, "--print", what, "--seeds", *map(str, seeds),
         "--max-steps", str(max_steps)],
        env=generic_cpu_environment(), capture_output=True, text=True, check=True,
    ).stdout
    return json.loads(output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="record the current digests")
    parser.add_argument("--generic", action="store_true",
                        help="compare with the digests a generic x86-64 processor computes")
    parser.add_argument("--print", choices=["digests", "probes"], help=argparse.SUPPRESS)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--max-steps", type=int, default=MAX_STEPS)
    args = parser.parse_args()
    seeds = tuple(args.seeds)
    if args.print:
        found = probes() if args.print == "probes" else digests(seeds, args.max_steps)
        print(json.dumps(found))
    elif args.write:
        RECORD.write_text(json.dumps(digests(), indent=1) + "\n")
        print(f"wrote {RECORD}")
    elif args.generic:
        here, there = probes(), in_generic_process("probes", seeds, args.max_steps)
        changed = [name for name in here if here[name] != there[name]]
        print(f"a generic processor changes: {', '.join(changed) or 'nothing'} (of "
              f"{', '.join(here)})")
        here, there = digests(seeds, args.max_steps), in_generic_process("digests", seeds,
                                                                          args.max_steps)
        same = sum(here[name] == there[name] for name in here)
        print(f"{same} of {len(here)} runs identical on this processor and a generic one")
    else:
        same, total = compare()
        print(f"{same} of {total} runs identical to {RECORD.name}")


if __name__ == "__main__":
    main()
