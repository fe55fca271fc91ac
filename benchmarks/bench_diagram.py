"""The headline diagram's cost: the 15 x 15 x 5-seed sharing x distinguishability sweep.

Runs ``sweeps/sharing_distinguishability.toml`` (1,125 runs of 6000 steps, each classified
and with the theory's prediction) into a fresh folder on two worker processes and prints
the wall time and the throughput, against the target of three minutes.  Then it runs a
systematic one-in-nine sample of the same runs in this one process, and scales it up to
estimate the sweep's time on one worker, for the speed-up on two (target: at least 1.8x).
Last, the machine's own ceiling for that speed-up: the same fixed work (standard runs) in
one process alone, then in two processes at once.  On a virtual machine whose two cores
share caches or a host, two busy processes each run slower, and no sweep can beat that.
It takes minutes, so ``make bench`` runs it after the quick benchmarks.
"""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from circuits_abm.engine.model import CircuitsModel
from circuits_abm.experiments.sweep.records import run_task
from circuits_abm.experiments.sweep.runner import run_sweep
from circuits_abm.experiments.sweep.spec import load_sweep

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2
TARGET_SECONDS = 180
TARGET_SPEEDUP = 1.8
SAMPLE_EVERY = 9
CEILING_RUNS = 15


def verdict(met: bool) -> str:
    return "met" if met else "not met"


def standard_runs(runs: int) -> float:
    """Seconds for ``runs`` standard runs in this process (after one to load the kernels)."""
    CircuitsModel("standard", rng=0, steps=20, collect=False).run()
    start = time.perf_counter()
    for seed in range(runs):
        CircuitsModel("standard", rng=seed, collect=False).run()
    return time.perf_counter() - start


def parallel_ceiling() -> float:
    """How much more work two processes do than one in the same time, on this machine."""
    with ProcessPoolExecutor(1) as pool:
        alone = pool.submit(standard_runs, CEILING_RUNS).result()
    with ProcessPoolExecutor(WORKERS) as pool:
        together = [f.result() for f in [pool.submit(standard_runs, CEILING_RUNS)
                                         for _ in range(WORKERS)]]
    return WORKERS * alone / max(together)


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
    ceiling = parallel_ceiling()
    print(f"  this machine's ceiling: {WORKERS} processes of standard runs at once do "
          f"{ceiling:.2f}x the work of one; the sweep reaches {serial / wall / ceiling:.0%} "
          f"of it")


if __name__ == "__main__":
    main()
