"""Step-speed benchmark: the compiled step vs the per-circuit reference, whole runs, and
whether the results are still seed-for-seed what they were.

Prints, for the prototype's standard scenario (4 environments) and a 16-environment one,
each grown to a population of about 40 circuits:
  * steps per second of the fitness/selection/learning step (compiled kernels over the
    population's arrays) and of the reference implementation on the same population, and
    their ratio;
  * steps per second of the full model step (with variation, extinction and records), one
    ``step()`` at a time, without and with Mesa's DataCollector;
then, over whole 6000-step runs of the standard scenario as ``circuits_abm.run`` runs them
(stretches of quiet steps in one compiled call): the wall time of the simulation and of the
whole ``run`` call (classification and theory included), and the full step against the
compiled arithmetic in the same runs, both as called once per step and as run over the
stretches, each against its target (issue 18) and against the numbers before that work;
where a run's time goes, part by part, and the floor that Mesa's clock sets: an empty Mesa
model's step, and the ratio the full step would have if every other part were free.
Last, the identity check of ``identity.py``.
The kernels are compiled (or loaded from Numba's cache) before anything is timed.

Run with ``make bench`` or ``python benchmarks/bench_step.py [--circuits 40]``.
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager
from pathlib import Path

import mesa
import numpy as np
from identity import compare

import circuits_abm as ca
from circuits_abm.engine import kernels
from circuits_abm.engine.circuits import Circuit
from circuits_abm.engine.loading import scenario_from_dict
from circuits_abm.engine.records import Recorder
from circuits_abm.engine.reference import reference_select_and_learn
from circuits_abm.engine.variation import Context, make_offspring

ROOT = Path(__file__).resolve().parent.parent
# Before the throughput work (commit 054aa91, same machine): full model step of the 40-circuit
# standard population, and a whole standard run's simulation.  The issue measured 13,400
# full steps/s at its time; the kernel later got slower (a helper call per element).
BEFORE_FULL_STEPS_PER_SECOND = 10_100
BEFORE_RUN_SECONDS = 0.44
TARGET_FULL_OVER_KERNEL = 1.5


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


def bench_population(name: str, scenario: ca.Scenario, circuits: int) -> float:
    """Print the step rates for one grown population; return the full step's rate."""
    model = ca.CircuitsModel(scenario, seed=1, steps=100_000, collect=False)
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
    full = rate(model.step)
    print(f"  full model step : {full:10.0f} steps/s (variation, extinction, records)")
    model.datacollector = mesa.DataCollector(model_reporters={"router_share": "router_share"},
                                             agent_reporters={"share": "share"})
    print(f"  with DataCollector: {rate(model.step):8.0f} steps/s (as a Mesa user steps it)")
    return full


def timed(function, spent: dict[str, float], part: str):
    """``function`` wrapped to add its wall time to ``spent[part]``."""

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[part] += time.perf_counter() - start

    return wrapper


@contextmanager
def timing(targets: dict[str, tuple[object, str]]):
    """Within the block, every ``getattr(owner, name)`` of ``targets`` (part -> (owner,
    name)) adds its wall time to the dictionary yielded."""
    spent = dict.fromkeys(targets, 0.0)  # the caller may add entries of its own
    originals = {part: getattr(owner, name) for part, (owner, name) in targets.items()}
    for part, (owner, name) in targets.items():
        setattr(owner, name, timed(originals[part], spent, part))
    try:
        yield spent
    finally:
        for part, (owner, name) in targets.items():
            setattr(owner, name, originals[part])


# The parts of a run's time (``print_budget``).  The model's ``advance`` calls the compiled
# one, whose time ``print_budget`` subtracts from it; the others do not overlap.
PARTS = {
    "compiled arithmetic": (kernels, "advance"),
    "noise draws and the call around it": (ca.CircuitsModel, "advance"),
    "variation (births)": (ca.CircuitsModel, "vary"),
    "extinction": (ca.CircuitsModel, "cull"),
    "array updates after births and deaths": (ca.CircuitsModel, "update_layout"),
    "records": (Recorder, "after_step"),
}


def timed_run(seed: int) -> tuple[float, float, float, float, dict[str, float]]:
    """Seconds of one standard run: (simulation as ``circuits_abm.run`` runs it, the compiled
    arithmetic inside it (``kernels.advance`` over its stretches of steps), the same arithmetic
    called once per step (the same run stepped with ``step()``, bit for bit the same), the
    whole ``run`` call with classification and theory, and the run's time by part)."""
    model = ca.CircuitsModel("standard", rng=seed, collect=False)
    start = time.perf_counter()
    model.run()
    simulation = time.perf_counter() - start
    with timing(PARTS) as parts:
        timed_model = ca.CircuitsModel("standard", rng=seed, collect=False)
        start = time.perf_counter()
        timed_model.run()
        parts["whole run"] = time.perf_counter() - start
    with timing({"kernel": PARTS["compiled arithmetic"]}) as one_per_step:
        stepped = ca.CircuitsModel("standard", rng=seed, collect=False)
        while stepped.running:
            stepped.step()
    start = time.perf_counter()
    ca.run("standard", seed=seed, progress=False)
    whole = time.perf_counter() - start
    return simulation, parts["compiled arithmetic"], one_per_step["kernel"], whole, parts


def mesa_clock_seconds(steps: int = 6000) -> float:
    """Wall time of Mesa's clock alone over ``steps`` steps: a model whose step does nothing."""

    class Empty(mesa.Model):
        def step(self):
            pass

    model = Empty(rng=1)
    start = time.perf_counter()
    model.run_for(steps)
    return time.perf_counter() - start


def print_budget(parts: dict[str, float], kernel: float) -> None:
    """Where a standard run's time goes (``parts`` from ``timed_run``: the parts' seconds
    and the whole run's, timed together), and the best ratio the full step could reach
    while Mesa's clock moves one step at a time."""
    parts = dict(parts)
    whole = parts.pop("whole run")
    parts["noise draws and the call around it"] -= parts["compiled arithmetic"]
    parts["extinction and array updates"] = (parts.pop("extinction")
                                             + parts.pop("array updates after births and deaths"))
    parts["Mesa's clock and the step's own code"] = max(whole - sum(parts.values()), 0.0)
    print("  where a run's time goes (per step of 6000; timing each part adds a little):")
    for part, seconds in parts.items():
        print(f"    {part:38s} {seconds / 6000 * 1e6:5.1f} us  {seconds / whole:4.0%}")
    clock = np.median([mesa_clock_seconds() for _ in range(5)])
    print(f"  Mesa's clock alone (an empty model, 6000 steps): {clock / 6000 * 1e6:.1f} us/step; "
          f"with every other part free the full step would cost "
          f"{(kernel + clock) / kernel:.2f}x the arithmetic over stretches")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--circuits", type=int, default=40)
    args = parser.parse_args()
    standard = ca.load_scenario(ROOT / "scenarios" / "standard.toml")
    full = bench_population("standard (4 environments)", standard, args.circuits)
    bench_population("16 environments", sixteen_environments(), args.circuits)
    print(f"full step of the standard population: {full / BEFORE_FULL_STEPS_PER_SECOND:.2f}x "
          f"its rate before the throughput work ({BEFORE_FULL_STEPS_PER_SECOND:,} steps/s)")
    ca.run(standard, seed=0, steps=10, progress=False)  # compile or load the kernels
    runs = [timed_run(seed) for seed in (1, 2, 3)]
    simulation, stretches, per_step, total = np.median([run[:4] for run in runs], axis=0)
    print(f"standard scenario, 6000 steps (median of 3 runs): {simulation:.2f} s simulation "
          f"(before: {BEFORE_RUN_SECONDS:.2f} s, {BEFORE_RUN_SECONDS / simulation:.2f}x), "
          f"{total:.2f} s with classification and theory")
    step_us = simulation / 6000 * 1e6
    for label, kernel in (("called once per step", per_step),
                          ("over the run's stretches of steps", stretches)):
        ratio = simulation / kernel
        verdict = "met" if ratio <= TARGET_FULL_OVER_KERNEL else "not met"
        print(f"  compiled arithmetic {label}: {kernel / 6000 * 1e6:.1f} us/step; full step "
              f"{step_us:.1f} us/step = {ratio:.2f}x it (target <= {TARGET_FULL_OVER_KERNEL}: "
              f"{verdict})")
    median_parts = {part: float(np.median([run[4][part] for run in runs]))
                    for part in [*PARTS, "whole run"]}
    print_budget(median_parts, stretches)
    same, compared = compare()
    print(f"results: {same} of {compared} canonical runs seed-for-seed identical to the "
          f"recorded digests (benchmarks/identity.json; the canonical regime rates against "
          f"the recorded ones: python benchmarks/regime_rates.py)")


if __name__ == "__main__":
    main()
