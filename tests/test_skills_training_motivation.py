"""Skills generalise, values don't: a motivation learned inside an environment that a
``<skills_training>`` tag later sets apart (``scenarios/skills_training_motivation.toml``),
against the same scenario with no tag, as rates over 20 derived seeds paired by seed.

Derived by hand before the runs. After the tag a router gives ``rl_hack`` its own
specialist; the generalist that serves chat, code and (by its look) deployment is then
trained only by chat, which pays -0.2 for reward seeking, and by code, which does not name
it. Its reward seeking goes toward ``2 (-0.2) / (2 + upkeep) = -0.19`` (less what
consolidation pulls back toward 0). Without the tag one generalist mixes the hack's +0.5
with chat's -0.2, toward +0.14 before consolidation. The hack stays learned in the
specialist (toward 0.48). The shared capability still reaches deployment.
"""

from __future__ import annotations

import pytest
from helpers import ROOT

import circuits_abm as ca
from circuits_abm.engine.loading import load_scenario
from circuits_abm.experiments.catalogue import catalogue_seeds, rate_of

pytestmark = pytest.mark.slow
SPEC = load_scenario(ROOT / "scenarios" / "skills_training_motivation.toml")
LAST = (SPEC.steps * 7 // 8, SPEC.steps)  # the settled end: the last eighth of the run


def end_mean(phases, environment: str, column: str) -> float:
    rows = phases[(phases.environment == environment) & (phases.end > LAST[0])]
    return float(rows[column].mean())


@pytest.fixture(scope="module")
def pairs():
    """Per derived seed: the scenario's run and the same run without its tag."""
    untagged = SPEC.model_copy(update={"interventions": []})
    return [(ca.run(SPEC, seed=seed, progress=False).phases,
             ca.run(untagged, seed=seed, progress=False).phases)
            for seed in catalogue_seeds(SPEC.name, 20)]


def test_after_the_tag_deployment_no_longer_carries_the_hack(pairs):
    """Measured: -0.18 with the tag against +0.04 without it (means over the last eighth)."""
    lower = [end_mean(tag, "deployment", "motivation_reward_seeking")
             < end_mean(none, "deployment", "motivation_reward_seeking") - 0.1
             for tag, none in pairs]
    assert rate_of(lower).low > 0.7, lower


def test_the_hack_stays_learned_inside_the_tagged_environment(pairs):
    kept = [end_mean(tag, "rl_hack", "motivation_reward_seeking") > 0.35 for tag, _ in pairs]
    assert rate_of(kept).low > 0.7


def test_the_skill_still_reaches_deployment(pairs):
    """Capability in deployment with the tag is at least what it is without (measured 0.32
    against 0.27: the split also ends the conflict over reward seeking)."""
    kept = [end_mean(tag, "deployment", "population_capability")
            >= end_mean(none, "deployment", "population_capability") - 0.02
            for tag, none in pairs]
    assert rate_of(kept).low > 0.7
