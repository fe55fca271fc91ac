"""Fixtures shared by the tests: the session's catalogue runs and the scenario folder
(helpers to import are in helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import CATALOGUE_RUNS, ROOT
from hypothesis import settings

# `make mutation` runs the fast tests once per surviving mutant with the JIT off: there the
# property tests draw 5 examples each instead of 25 (pytest --hypothesis-profile=mutation).
settings.register_profile("mutation", max_examples=5)

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
