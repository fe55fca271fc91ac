"""Step-speed benchmark: the compiled step vs the per-circuit reference, and whole runs.

Prints, for the prototype's standard scenario (4 environments) and a 16-environment one,
each grown to a population of about 40 circuits:
  * steps per second of the fitness/selection/learning step (compiled kernels over the
    population's arrays) and of the reference implementation on the same population, and
    their ratio;
  * steps per second of the full model step (with variation, extinction and records);
  * the wall time of a whole 6000-step run of the standard scenario: the simulation, and
    the whole ``run`` call including the regime classification.  The kernels are compiled
    (or loaded from Numba's cache) before anything is timed.

Run with ``make bench`` or ``python benchmarks/bench_step.py [--circuits 40]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import circuits_abm as ca
from circuits_abm.engine.circuits import Circuit
from circuits_abm.engine.reference import reference_select_and_learn
from circuits_abm.engine.scenario import scenario_from_dict
from circuits_abm.engine.variation import Context, make_offspring

ROOT = Path(__file__).resolve().parent.parent


def sixteen_environments() -> ca.Scenario:
    """16 environments with a nested router population (default untrained routers die fast)."""
    quad = "R[n,n,n,n]"
    return scenario_from_dict(
        {
            "name": "sixteen",
            "environments": [{"name": f"env{i:02d}"} for i in range(16)],
            "geometry": {"sharing": 0.1, "distinguishability": 0.9},
            "selection": {"strength": 1.0},
            "population": {"initial": [f"R[{quad},{quad},{quad},{quad}]", "R[g,g]", "n", "w", "g"]},
        }
    )


def grow(model: ca.CircuitsModel, target: int) -> None:
    """Warm up briefly (routers still present), then add mutated variants up to ``target``."""
    for _ in range(200):
        model.step()
    envs = model.environments
    phase = model.current_phase
    ctx = Context(model.rng, model.spec, phase.weights @ envs.cues, envs.cue_centre())
    while len(model.circuits) < target:
        parent = model.circuits[int(model.rng.integers(len(model.circuits)))]
        model.circuits.append(
            Circuit(model, make_offspring(parent.root, "mutate", ctx), lineage=parent.lineage)
        )
    model.shares = np.full(len(model.circuits), 1.0 / len(model.circuits))
    model.fitness = np.zeros(len(model.circuits))
    model.recompile()


def rate(fn, min_time: float = 1.0) -> float:
    """Calls per second of ``fn``, measured for at least ``min_time`` seconds."""
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < min_time:
        fn()
        calls += 1
    return calls / elapsed


def bench_population(name: str, scenario: ca.Scenario, circuits: int) -> None:
    model = ca.CircuitsModel(scenario, seed=1, steps=100_000)
    grow(model, circuits)
    phase = model.current_phase
    noise = model.rng.normal(size=model.layout.theta.shape)
    state = model.layout.theta.copy(), model.layout.keys.copy(), model.shares.copy()

    def restore():
        model.layout.theta[:], model.layout.keys[:], model.shares = (a.copy() for a in state)

    def fast():
        restore()
        model.select_and_learn(phase, noise)

    def reference():
        restore()
        reference_select_and_learn(model, phase, noise)

    fast_rate, ref_rate = rate(fast), rate(reference)
    nodes = len(model.layout.nodes)
    print(f"{name}: {len(model.circuits)} circuits, {nodes} nodes, {model.environments.size} envs")
    print(f"  compiled step   : {fast_rate:10.0f} steps/s")
    print(f"  reference step  : {ref_rate:10.0f} steps/s")
    print(f"  speed-up        : {fast_rate / ref_rate:10.1f}x")
    restore()
    print(f"  full model step : {rate(model.step):10.0f} steps/s (variation, extinction, records)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--circuits", type=int, default=40)
    args = parser.parse_args()
    standard = ca.load_scenario(ROOT / "scenarios" / "standard.toml")
    bench_population("standard (4 environments)", standard, args.circuits)
    bench_population("16 environments", sixteen_environments(), args.circuits)
    ca.run(standard, seed=0, steps=10)  # compile the kernels or load them from the cache
    simulation, total = [], []
    for seed in (1, 2, 3):
        start = time.perf_counter()
        result = ca.run(standard, seed=seed)
        total.append(time.perf_counter() - start)
        simulation.append(result.summary["wall_time_seconds"])
    print(f"standard scenario, 6000 steps: {np.median(simulation):.2f} s simulation, "
          f"{np.median(total):.2f} s with classification (median of 3 runs)")

if __name__ == "__main__":
    main()
