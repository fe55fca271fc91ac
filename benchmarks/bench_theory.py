"""``predict`` at the environment cap (200), against its target of 2 s.

Six schedules over 200 environments in three clusters (cycle, uniform draws, a weighted
walk on a ring; fixed and geometric phases), each timed three times after a first call
that loads the compiled solvers.  The theory solves the moment equations of about 4,600
mechanisms here (1,549 parts of 12 candidate partitions, three rules each); the chain's
structure (``analysis/chain_systems.py``) makes each mechanism O(N^2) instead of O(N^3).
"""

from __future__ import annotations

import statistics
import time

import circuits_abm as ca
from circuits_abm.analysis.theory import predict

ENVIRONMENTS = 200
TARGET = 2.0  # seconds


def scenario(order: str, lengths: str) -> ca.Scenario:
    """200 environments in three clusters, scheduled by ``order``."""
    n = ENVIRONMENTS
    changes = {
        "environments": [{"name": f"e{i}", "cluster": f"c{i % 3}"} for i in range(n)],
        "schedule.order": order,
        "schedule.phase_length_distribution": lengths,
        "steps": 600,
        "geometry.between_clusters": {"sharing": 0.1, "distinguishability": 0.95},
    }
    if order == "walk":
        changes["edges"] = [{"source": f"e{i}", "target": f"e{(i + 1) % n}", "weight": 1 + i % 3}
                            for i in range(n)]
    return ca.override(ca.load_scenario("standard"), changes)


def main() -> None:
    for order in ("cycle", "uniform", "walk"):
        for lengths in ("fixed", "geometric"):
            spec = scenario(order, lengths)
            predict(spec)
            times = []
            for _ in range(3):
                start = time.perf_counter()
                predict(spec)
                times.append(time.perf_counter() - start)
            seconds = statistics.median(times)
            verdict = "met" if seconds <= TARGET else "not met"
            print(f"predict, {ENVIRONMENTS} environments, {order:7s} {lengths:9s} "
                  f"{seconds:.2f} s (target {TARGET} s: {verdict})")


if __name__ == "__main__":
    main()
