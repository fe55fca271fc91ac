"""Shared helpers: small scenarios built in code, so each test states what it varies."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from hypothesis import settings

from circuits_abm.engine.loading import scenario_from_dict
from circuits_abm.engine.scenario import Scenario
from circuits_abm.experiments.catalogue import DEFAULT_RUNS

# `make mutation` runs the fast tests once per surviving mutant with the JIT off: there the
# property tests draw 5 examples each instead of 25 (pytest --hypothesis-profile=mutation).
settings.register_profile("mutation", max_examples=5)

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


@pytest.fixture(scope="session")
def catalogue(tmp_path_factory):
    """Every canonical scenario on CATALOGUE_RUNS seeds derived from the root seed, run once
    per test session on every core; runs are saved so claim-specific tests can read them.
    Only tests/test_canonical_scenarios.py uses it: `make test` keeps each file on one
    pytest-xdist worker (--dist loadfile), so the catalogue runs once."""
    import os

    from circuits_abm.experiments.catalogue import (
        DEFAULT_ROOT_SEED,
        canonical_scenarios,
        run_catalogue,
    )


    folder = tmp_path_factory.mktemp("catalogue")
    specs = {spec.name: spec for _, spec in canonical_scenarios(ROOT / "scenarios")}
    outcomes = run_catalogue(list(specs.values()), CATALOGUE_RUNS, DEFAULT_ROOT_SEED,
                             workers=os.cpu_count() or 1, save_dir=folder, progress=False)
    return Catalogue(specs, outcomes, folder)


CATALOGUE_RUNS = DEFAULT_RUNS  # seeds per canonical scenario (40)


class Catalogue:
    """The session's catalogue runs: outcomes, and each run's stored tables on demand."""

    def __init__(self, specs, outcomes, folder: Path):
        self.specs = specs
        self.outcomes = outcomes
        self.folder = folder

    def runs(self, name: str):
        """Every stored run of scenario ``name``, in seed order."""
        from circuits_abm.experiments.runs import load_run

        seeds = [o.seed for o in self.outcomes if o.scenario == name]
        return [load_run(self.folder / f"{name}-{seed}") for seed in seeds]
