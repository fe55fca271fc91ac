"""Shared helpers: small scenarios built in code, so each test states what it varies."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from circuits_abm.scenario import Scenario, scenario_from_dict

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


@pytest.fixture
def scenarios_dir() -> Path:
    return ROOT / "scenarios"
