"""Helpers the tests import: small scenarios built in code, so each test states what it
varies, and the settings that freeze a population (fixtures are in conftest.py)."""

from __future__ import annotations

import copy
from pathlib import Path

from circuits_abm.engine.loading import scenario_from_dict
from circuits_abm.engine.scenario import Scenario
from circuits_abm.experiments.catalogue import DEFAULT_RUNS

ROOT = Path(__file__).resolve().parent.parent


def deep_merge(base: dict, overrides: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def scenario_dict(n_envs: int = 4, **overrides) -> dict:
    base = {
        "name": "test",
        "steps": 200,
        "environments": [{"name": f"e{i}"} for i in range(n_envs)],
    }
    return deep_merge(base, overrides)


def make_scenario(n_envs: int = 4, **overrides) -> Scenario:
    return scenario_from_dict(scenario_dict(n_envs, **overrides))


CATALOGUE_RUNS = DEFAULT_RUNS  # seeds per canonical scenario (40)

# Nothing learns, nothing is born, nothing dies: a population frozen where a test put it.
FROZEN = {
    "circuits": {
        "naive": {"learning_rate": 0.0},
        "weighted": {"learning_rate": 0.0},
        "generalist": {"learning_rate": 0.0, "consolidation": 0.0},
        "router": {"key_learning_rate": 0.0},
    },
    "learning": {"noise": 0.0},
    "variation": {"rate": 0.0},
    "selection": {"extinction_floor": 0.0},
}
