"""Cross-check: the agent-based model's analogue of reward seeking against the mean field.

The analogue: one *generalist* mechanism, whose single parameter vector learns from every
environment (its skill transfers, like reward-seeking skill), competes with a router of N
naive *specialists*, each of which learns only in its own environment (local skills).  The
generalist's population share plays the propensity p.  Every specialist learns 1/N of the
time while the generalist learns always, so as N grows the transferable mechanism's
learnability advantage grows like N: the homogeneous mean field with ``c_z = c_S = 1`` and
``c_L = 0``.  Variation is off, so the two strategies only compete (no new circuits), and
learning is on-policy (γ = 1: a circuit learns in proportion to its share, as S learns in
proportion to p and L to 1 - p), and separation costs nothing by default (the mean field has no
costs; a cost per mechanism penalises the N specialists and lowers the agent-based N*).
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from circuits_abm.engine.loading import scenario_from_dict
from circuits_abm.engine.scenario import CircuitsSpec, Scenario
from circuits_abm.reward_seeking.dynamics import (
    Initial,
    effective_learnability,
    integrate,
    single_system,
)


class CrossCheckExperiment(BaseModel):
    """A ``crosscheck`` experiment file: the agent-based family of scenarios beside the
    mean-field model, over a range of environment counts."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: Literal["crosscheck"]
    ns: list[Annotated[int, Field(ge=1, le=200)]] = Field(
        default=[1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64], min_length=2)
    seeds: list[Annotated[int, Field(ge=0, le=2**63 - 1)]] = Field(default=[1, 2, 3, 4, 5],
                                                                 min_length=1, max_length=1000)
    rivals: Annotated[int, Field(ge=1, le=100)] = 1  # routers of specialists at the start
    sharing: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.5
    distinguishability: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0
    phase_length: Annotated[int, Field(ge=1)] = 10
    steps: Annotated[int, Field(ge=10)] = 3000
    gamma: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0
    cost_per_mechanism: Annotated[float, Field(ge=0.0)] = 0.0  # the mean field has no costs
    initial_skill: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2  # mean field: S = L at start
    threshold: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5

    @property
    def prior(self) -> float:
        """The generalist's initial share: one circuit among ``1 + rivals``."""
        return 1.0 / (1 + self.rivals)

    @property
    def ratio(self) -> float:
        """α^S / α^L of the mean field: the generalist's learning rate over the naive
        specialists' (the scenario defaults, 0.03 / 0.3)."""
        rules = CircuitsSpec()
        return rules.generalist.learning_rate / rules.naive.learning_rate


def family_scenario(spec: CrossCheckExperiment, n: int) -> Scenario:
    """The member of the family with N environments: one generalist against ``rivals``
    routers of N specialists, equal sharing and distinguishability, a cycle schedule."""
    router = "R[" + ",".join(["n"] * n) + "]" if n > 1 else "n"
    return scenario_from_dict({
        "name": f"crosscheck_n{n}",
        "environments": [{"name": f"env{i}", "kind": "rl"} for i in range(n)],
        "geometry": {"sharing": spec.sharing, "distinguishability": spec.distinguishability},
        "schedule": {"order": "cycle", "phase_length": spec.phase_length},
        "learning": {"gamma": spec.gamma},
        "costs": {"per_mechanism": spec.cost_per_mechanism, "per_sharpness": 0.0},
        "variation": {"rate": 0.0},
        "population": {"initial": ["g"] + [router] * spec.rivals},
        "steps": spec.steps,
    }, source=f"crosscheck family (N={n})")


def _abm_task(spec: CrossCheckExperiment, n: int, seed: int) -> dict:
    from circuits_abm.experiments.runs import run  # noqa: PLC0415 (keeps the mean field free of Mesa)

    result = run(family_scenario(spec, n), seed=seed)
    share = sum(c["share"] for c in result.summary["final_population"]
                if c["kind"] == "generalist")
    return {"source": "agent-based", "n": n, "seed": seed, "final": float(share),
            "regime": result.summary["regime"]}


def mean_field(spec: CrossCheckExperiment, ns) -> pd.DataFrame:
    """Homogeneous mean-field propensity against N (c_z = c_S = 1, c_L = 0, equal initial
    skills, prior = the generalist's initial share, α^S/α^L = the learning-rate ratio)."""
    ns = np.asarray(ns)
    final = integrate(single_system(
        alpha_s=effective_learnability(spec.ratio, ns, 1.0), alpha_l=np.ones(len(ns)),
        alpha_z=effective_learnability(1.0, ns, 1.0),
        initial=Initial(spec.prior, spec.initial_skill, spec.initial_skill),
    )).propensity[:, 0]
    return pd.DataFrame({"source": "mean-field", "n": ns, "seed": -1, "final": final,
                         "regime": ""})


def run_crosscheck(spec: CrossCheckExperiment, workers: int = 1,
                   progress: bool = True) -> pd.DataFrame:
    """Every (N, seed) of the agent-based family, then the mean field on a fine N grid."""
    from circuits_abm.experiments.executors import map_in_processes  # noqa: PLC0415 (pools on demand)

    tasks = [(spec, n, seed) for n in spec.ns for seed in spec.seeds]
    rows = map_in_processes(_abm_task, tasks, workers, "agent-based runs", "run", progress)
    fine = np.unique(np.round(np.geomspace(min(spec.ns), max(spec.ns), 60)).astype(int))
    return pd.concat([pd.DataFrame(rows), mean_field(spec, fine)], ignore_index=True)
