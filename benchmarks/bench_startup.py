"""Start-up time: ``import circuits_abm`` and ``circuits-abm --help``, against their targets.

Each is a fresh interpreter (median of seven), so the number is what a user waits for at a
prompt or in a notebook's first cell.  Heavy modules (numpy, Mesa, Numba, pandas) load only
when a command or an attribute needs them.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

CLI = Path(sys.executable).parent / "circuits-abm"
CASES = {
    "import circuits_abm": ([sys.executable, "-c", "import circuits_abm"], 0.5),
    "circuits-abm --help": ([str(CLI), "--help"], 0.3),
}


def median_seconds(command: list[str], repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    for name, (command, target) in CASES.items():
        seconds = median_seconds(command)
        verdict = "met" if seconds <= target else "not met"
        print(f"{name:22s} {seconds:.3f} s (target {target} s: {verdict})")


if __name__ == "__main__":
    main()
