"""The critical number of environments: how many interchangeable environments it takes
before one specialist per environment stops beating the best single mechanism (the cost
of separation grows with N, the loss from sharing one mechanism does not).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from circuits_abm.analysis.candidates import Problem, routers_reachable, routing
from circuits_abm.engine.environments import build_environments
from circuits_abm.engine.loading import scenario_from_dict
from circuits_abm.engine.scenario import Scenario


def homogeneous_variant(spec: Scenario, n: int) -> Scenario:
    """``spec`` with ``n`` interchangeable environments at its global sharing and
    distinguishability (a walk becomes a walk on the complete graph, a sequence a cycle)."""
    data = spec.model_dump(mode="json")
    names = [f"e{i:02d}" for i in range(n)]
    data["environments"] = [{"name": name} for name in names]
    data["edges"] = []
    data["interventions"] = []
    data["geometry"] = {
        "sharing": spec.geometry.sharing,
        "distinguishability": spec.geometry.distinguishability,
    }
    schedule = data["schedule"]
    schedule.update(sequence=None, start=None, mixtures={})
    if schedule["order"] == "sequence":
        schedule["order"] = "cycle"
    if schedule["order"] == "walk":
        data["edges"] = [{"source": a, "target": b} for i, a in enumerate(names)
                         for b in names[i + 1:]]
    data["circuits"]["weighted"]["weights"] = None
    data["population"]["initial"] = None
    return scenario_from_dict(data, source=f"{spec.name} with {n} environments")


def specialists_minus_one_mechanism(spec: Scenario, n: int) -> float:
    """Fitness of one specialist per environment minus that of the best single mechanism,
    in the homogeneous variant with ``n`` environments.  By symmetry every specialist earns
    the same, so one is solved and multiplied."""
    variant = homogeneous_variant(spec, n)
    problem = Problem(variant, build_environments(variant))
    blocks = tuple((e,) for e in problem.training)
    costs = variant.costs
    best = -np.inf
    for beta in problem.sharpness:
        routed = routing(problem.envs.cues, blocks, problem.training, beta, problem.trained)
        _, stats = problem.best_leaf(routed[0])
        fitness = n * stats.reward - n * costs.per_mechanism - costs.per_sharpness * beta
        best = max(best, fitness)
    return best - problem.candidate((problem.training,)).fitness


@cache
def _critical(spec_json: str, largest: int) -> int | None:
    spec = Scenario.model_validate_json(spec_json)
    if not routers_reachable(spec):
        return None
    if spec.geometry.sharing < 0:  # n vectors can conflict pairwise by at most -1/(n-1)
        largest = min(largest, int(1 + 1 / -spec.geometry.sharing))
    gap = lambda n: specialists_minus_one_mechanism(spec, n)  # noqa: E731
    if gap(2) <= 0:
        return 2
    if gap(largest) > 0:
        return None
    low, high = 2, largest  # gap(low) > 0 >= gap(high)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if gap(mid) > 0 else (low, mid)
    return high


def critical_environments(spec: Scenario, largest: int = 64) -> int | None:
    """The critical number of environments: the smallest N at which, with N interchangeable
    environments at the scenario's global geometry, one specialist per environment no
    longer beats the best single mechanism (costs grow with N, the loss from sharing one
    mechanism does not).  2 if specialists never win, None if they still win at ``largest``
    (or no router can arise; with negative global sharing, ``largest`` shrinks to the most
    environments that can all conflict that much).  Found by bisection, assuming one
    crossing."""
    return _critical(spec.model_dump_json(), largest)
