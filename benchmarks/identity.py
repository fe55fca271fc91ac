"""Are the results seed-for-seed what they were before the step was optimised?

``digests()`` runs every scenario file in ``scenarios/`` for seeds 1 and 2 (at most 3000
steps each) and hashes each run's timeseries, phases and quarantine tables and its final
population (shares, parameters, keys, structures).  ``identity.json`` holds the digests
made in the locked environment (``requirements-dev.lock``) when the step moved into compiled
stretches of steps; ``bench_step.py`` compares against it.  That change was the one
deliberate break with the digests made before the work on throughput (commit 054aa91): the
replicator's ``exp`` became the C library's rather than numpy's vectorised one, and sums
run in index order, which moves the last bits; ``regime_rates.py`` shows the canonical
regime rates unchanged (the same regime on every one of 600 paired seeds).  A different
numpy or Numba may legitimately change the last bits, so compare in the locked environment.

``python benchmarks/identity.py --write`` records the current code's digests (only after
a change that is meant to alter results, with the reason in the commit).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from circuits_abm.engine.model import CircuitsModel
from circuits_abm.engine.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
RECORD = Path(__file__).with_name("identity.json")


def run_digest(path: Path, seed: int) -> str:
    """sha256 of one run's tables (as CSV, full float precision) and final population."""
    model = CircuitsModel(path, rng=seed, steps=min(load_scenario(path).steps, 3000))
    model.run()
    digest = hashlib.sha256()
    for table in model.recorder.tables():
        digest.update(table.to_csv(float_format="%r").encode())
    for array in (model.shares, model.layout.theta, model.layout.keys):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(" ".join(c.structure for c in model.circuits).encode())
    return digest.hexdigest()


def digests() -> dict[str, str]:
    """``{"<scenario file> seed <n>": digest}`` for every scenario file and seeds 1, 2."""
    return {
        f"{path.name} seed {seed}": run_digest(path, seed)
        for path in sorted((ROOT / "scenarios").glob("*.toml"))
        for seed in (1, 2)
    }


def compare() -> tuple[int, int]:
    """(runs identical to the record, runs compared)."""
    recorded = json.loads(RECORD.read_text())
    now = digests()
    return sum(now.get(name) == value for name, value in recorded.items()), len(recorded)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="record the current digests")
    if parser.parse_args().write:
        RECORD.write_text(json.dumps(digests(), indent=1) + "\n")
        print(f"wrote {RECORD}")
    else:
        same, total = compare()
        print(f"{same} of {total} runs identical to {RECORD.name}")


if __name__ == "__main__":
    main()
