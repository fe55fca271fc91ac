"""The full heterogeneous reward-seeking sweep: wall time on two cores (goal: under 5 min).

Runs ``scenarios/reward_seeking/heterogeneous.toml`` as shipped (three geometries, each
calibrated, 16 values of N from 1 to 10,000, 10 resamples, 5 priors batched) with two
worker processes, and prints the time of the calibration and of the whole run, and the
environment-steps per second of the largest system.  ``make bench`` runs it.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

from circuits_abm.reward_seeking.dynamics import integrate
from circuits_abm.reward_seeking.experiments import load_experiment, run_experiment
from circuits_abm.reward_seeking.heterogeneous import heterogeneous_system, resample_rng

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = ROOT / "scenarios" / "reward_seeking" / "heterogeneous.toml"
GOAL_SECONDS = 300


def largest_system_rate() -> str:
    """Environment-steps per second of one N = 10,000 integration on one core."""
    spec = load_experiment(EXPERIMENT)
    n = spec.n.integers()[-1]
    system = heterogeneous_system(n, spec.priors, spec.heterogeneity("plane", 4.0),
                                  resample_rng(spec.seed, "plane", 0, n))
    with threadpool_limits(1):
        started = time.perf_counter()
        trajectory = integrate(system)
        seconds = time.perf_counter() - started
    return (f"N={n:,}, {len(spec.priors)} priors: {trajectory.steps} Euler steps in "
            f"{seconds:.1f} s ({n * trajectory.steps / seconds:,.0f} environment-steps/s)")


def main() -> None:
    print("largest system:", largest_system_rate())
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        run_experiment(EXPERIMENT, tmp, workers=2, progress=False)
        seconds = time.perf_counter() - started
        meta = json.loads((Path(tmp) / "experiment.json").read_text())
    verdict = "meets" if seconds < GOAL_SECONDS else "MISSES"
    print(f"full heterogeneous sweep, 2 workers: {seconds:.0f} s "
          f"(calibration {meta['calibration_seconds']:.0f} s); {verdict} the "
          f"{GOAL_SECONDS} s goal")


if __name__ == "__main__":
    main()
