"""Sweep throughput: runs per second, serial vs two local worker processes.

Runs the same small sweep (24 runs of the standard scenario, 3000 steps each) in a fresh
folder with each executor and prints runs/s and the speed-up.  ``make bench`` runs it.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from circuits_abm.sweeps import load_sweep, run_sweep

ROOT = Path(__file__).resolve().parent.parent
SWEEP = f"""
name = "bench"
base = "{(ROOT / "scenarios" / "standard.toml").as_posix()}"
seeds = 4
steps = 3000
[axes."geometry.sharing"]
values = [0.1, 0.5, 0.9]
[axes."geometry.distinguishability"]
values = [0.1, 0.9]
"""


def throughput(executor: str, workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.toml"
        path.write_text(SWEEP)
        sweep = load_sweep(path)
        start = time.perf_counter()
        run_sweep(sweep, Path(tmp) / "out", executor=executor, workers=workers)
        return len(sweep.tasks) / (time.perf_counter() - start)


def main() -> None:
    serial = throughput("serial", 1)
    parallel = throughput("processes", 2)
    print("sweep throughput (24 runs x 3000 steps, standard scenario)")
    print(f"  serial              : {serial:6.2f} runs/s")
    print(f"  processes, 2 workers: {parallel:6.2f} runs/s")
    print(f"  speed-up            : {parallel / serial:6.2f}x")


if __name__ == "__main__":
    main()
