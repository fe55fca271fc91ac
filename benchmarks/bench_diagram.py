"""The headline diagram's cost: the 15 x 15 x 5-seed sharing x distinguishability sweep.

Runs ``sweeps/sharing_distinguishability.toml`` (1,125 runs of 6000 steps, each classified
and with the theory's prediction) into a fresh folder on two worker processes and prints
the wall time and the throughput, against the target of three minutes.  Then it runs a
systematic one-in-nine sample of the same runs in this one process, and scales it up to
estimate the sweep's time on one worker, for the speed-up on two (target: at least 1.8x).
It takes minutes, so ``make bench`` runs it after the quick benchmarks.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from circuits_abm.experiments.sweeps import load_sweep, run_sweep, run_task

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2
TARGET_SECONDS = 180
TARGET_SPEEDUP = 1.8
SAMPLE_EVERY = 9


def verdict(met: bool) -> str:
    return "met" if met else "not met"


def main() -> None:
    sweep = load_sweep(ROOT / "sweeps" / "sharing_distinguishability.toml")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        table = run_sweep(sweep, Path(tmp) / "out", "processes", WORKERS)
        wall = time.perf_counter() - start
    runs = len(table)
    print(f"sharing x distinguishability diagram: {runs} runs on {WORKERS} workers")
    print(f"  wall time {wall:.0f} s ({runs / wall:.2f} runs/s); target {TARGET_SECONDS} s: "
          f"{verdict(wall <= TARGET_SECONDS)} ({wall / TARGET_SECONDS:.2f}x the target)")
    print(f"  mean run (in its worker): {table.wall_time_seconds.mean():.2f} s")
    sample = sweep.tasks[::SAMPLE_EVERY]
    run_task(sample[0])  # load the kernels before timing
    start = time.perf_counter()
    for task in sample:
        run_task(task)
    serial = (time.perf_counter() - start) * runs / len(sample)
    print(f"  one worker, estimated from {len(sample)} of the runs in one process: {serial:.0f} s; "
          f"speed-up on {WORKERS} workers {serial / wall:.2f}x (target >= {TARGET_SPEEDUP}x: "
          f"{verdict(serial / wall >= TARGET_SPEEDUP)})")


if __name__ == "__main__":
    main()
