"""How the cost of a step grows: population size and number of environments, and where a
full model step spends its time.

* Time per full model step (one ``step()`` at a time, as a Mesa user steps it) against the
  number of circuits (10 to 200, 4 environments) and against the number of environments
  (4 to 64, 40 circuits), with the fitted exponent of cost against (mechanisms x
  environments).  The target: no faster than linear (exponent
  at most 1).
* A profile of a 2000-step run of the standard scenario as ``run`` runs it (stretches of
  steps in one compiled call): the functions that take the most time, so the next
  optimisation starts from a measurement.

Run with ``make bench`` or ``python benchmarks/bench_scaling.py``.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time

import numpy as np

from circuits_abm.engine.circuits import Circuit
from circuits_abm.engine.loading import load_scenario, override, scenario_from_dict
from circuits_abm.engine.model import CircuitsModel
from circuits_abm.engine.variation import Context, make_offspring

STEPS = 300


def scenario(environments: int):
    """``environments`` environments, sharing 0.1, distinguishability 0.9; variation off so
    that the population keeps the size it is given."""
    return scenario_from_dict({
        "name": f"scaling_{environments}",
        "environments": [{"name": f"e{i:02d}"} for i in range(environments)],
        "geometry": {"sharing": 0.1, "distinguishability": 0.9},
        "variation": {"rate": 0.0},
        "selection": {"strength": 1.0, "extinction_floor": 0.0},
    })


def seconds_per_step(environments: int, circuits: int) -> tuple[float, int]:
    """(seconds per full step, mechanisms) for a population of ``circuits`` circuits, each
    a router over four naive mechanisms or a single mechanism, grown by mutation."""
    model = CircuitsModel(scenario(environments), rng=1, steps=10 * STEPS, collect=False,
                          **{"population.initial": ["R[n,n,n,n]", "n", "w", "g"]})
    envs = model.environments
    ctx = Context(model.rng, model.spec, model.current_phase.weights @ envs.cues,
                  envs.cue_centre())
    while len(model.circuits) < circuits:
        parent = model.circuits[len(model.circuits) % 4]
        model.circuits.append(Circuit(model, make_offspring(parent.root, "mutate", ctx),
                                      lineage=parent.lineage))
    model.shares = np.full(len(model.circuits), 1.0 / len(model.circuits))
    model.fitness = np.zeros(len(model.circuits))
    model.recompile()
    for _ in range(20):  # warm up (kernels compiled or loaded from the cache)
        model.step()
    start = time.perf_counter()
    for _ in range(STEPS):
        model.step()
    return (time.perf_counter() - start) / STEPS, len(model.layout.leaf_rows)


def exponent(work: list[float], seconds: list[float]) -> float:
    """Slope of log(seconds) against log(work)."""
    return float(np.polyfit(np.log(work), np.log(seconds), 1)[0])


def main() -> None:
    print("full step against population size (4 environments):")
    work, cost = [], []
    for circuits in (10, 25, 50, 100, 200):
        seconds, mechanisms = seconds_per_step(4, circuits)
        work.append(mechanisms * 4)
        cost.append(seconds)
        print(f"  {circuits:4d} circuits, {mechanisms:4d} mechanisms: {seconds * 1e6:8.1f} us/step")
    print(f"  cost ~ (mechanisms x environments)^{exponent(work, cost):.2f}")
    print("full step against environments (40 circuits):")
    work2, cost2 = [], []
    for environments in (4, 8, 16, 32, 64):
        seconds, mechanisms = seconds_per_step(environments, 40)
        work2.append(mechanisms * environments)
        cost2.append(seconds)
        print(f"  {environments:4d} environments: {seconds * 1e6:8.1f} us/step")
    slope = exponent(work + work2, cost + cost2)
    verdict = "met" if slope <= 1.0 else "not met"
    print(f"  cost ~ (mechanisms x environments)^{exponent(work2, cost2):.2f}; over both: "
          f"^{slope:.2f} (target: at most linear, exponent <= 1: {verdict})")

    standard = override(load_scenario("standard"), {"seed": 1})
    CircuitsModel(standard, steps=20, collect=False).run()  # the kernels are loaded
    model = CircuitsModel(standard, steps=2000, collect=False)
    profiler = cProfile.Profile()
    profiler.enable()
    model.run()
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(12)
    print("profile of a 2000-step standard run, as `run` runs it (by own time):")
    print("\n".join(line for line in text.getvalue().splitlines()[4:] if line.strip()))


if __name__ == "__main__":
    main()
