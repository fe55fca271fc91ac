"""Sweep throughput: runs per second, serial vs two local worker processes.

Runs the same small sweep (24 runs of the standard scenario, 6000 steps each) in a fresh
folder with each executor.  Worker processes pay a fixed start-up cost once per sweep
(the fork server imports the package and loads the compiled kernels before it forks the
workers, which then run task after task), which a sweep of thousands of runs never
notices but a 24-run one does.  So the benchmark prints the end-to-end rate with the
time until the first results (``bench_diagram.py`` gives the speed-up of a sweep of a
thousand runs).  ``make bench`` runs it.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from circuits_abm.experiments.sweep.runner import run_sweep
from circuits_abm.experiments.sweep.spec import load_sweep

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2
SWEEP = f"""
name = "bench"
base = "{(ROOT / "scenarios" / "standard.toml").as_posix()}"
seeds = 4
[axes."geometry.sharing"]
values = [0.1, 0.5, 0.9]
[axes."geometry.distinguishability"]
values = [0.1, 0.9]
"""


def finish_times(executor: str, workers: int) -> list[float]:
    """Seconds from the start of the sweep to each finished run."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.toml"
        path.write_text(SWEEP)
        sweep = load_sweep(path)
        times: list[float] = []
        start = time.perf_counter()

        def progress(_done, _total, record):
            if record is not None:
                times.append(time.perf_counter() - start)

        run_sweep(sweep, Path(tmp) / "out", executor=executor, workers=workers, progress=progress)
        return times


def main() -> None:
    serial = finish_times("serial", 1)
    parallel = finish_times("processes", WORKERS)
    serial_rate = len(serial) / serial[-1]
    end_to_end = len(parallel) / parallel[-1]
    print(f"sweep throughput ({len(serial)} runs x 6000 steps, standard scenario)")
    print(f"  serial                         : {serial_rate:6.2f} runs/s")
    print(f"  {WORKERS} worker processes, end to end : {end_to_end:6.2f} runs/s "
          f"({end_to_end / serial_rate:.2f}x); the first chunk of runs came back "
          f"{parallel[0]:.1f} s in (fork server start-up and one chunk)")


if __name__ == "__main__":
    main()
