"""The headline diagram's cost: the 15 x 15 x 5-seed sharing x distinguishability sweep.

Runs ``sweeps/sharing_distinguishability.toml`` (1,125 runs of 6000 steps, each classified
and with the theory's prediction) into a fresh folder on two worker processes and prints
the wall time and the throughput, against the issue's target of three minutes.  It takes
minutes, so ``make bench`` runs it last.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from circuits_abm.experiments.sweeps import load_sweep, run_sweep

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2
TARGET_SECONDS = 180


def main() -> None:
    sweep = load_sweep(ROOT / "sweeps" / "sharing_distinguishability.toml")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        table = run_sweep(sweep, Path(tmp) / "out", "processes", WORKERS)
        wall = time.perf_counter() - start
    runs = len(table)
    print(f"sharing x distinguishability diagram: {runs} runs on {WORKERS} workers")
    print(f"  wall time {wall:.0f} s ({runs / wall:.2f} runs/s); target {TARGET_SECONDS} s: "
          f"{'met' if wall <= TARGET_SECONDS else 'not met'} ({wall / TARGET_SECONDS:.2f}x)")
    print(f"  mean run (in its worker): {table.wall_time_seconds.mean():.2f} s")


if __name__ == "__main__":
    main()
