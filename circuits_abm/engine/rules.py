"""Learning rules: the one place a kind of mechanism is defined.

A mechanism learns by routed, noisy gradient steps on its current objective (see
``circuits_abm.engine.learning``).  Rules differ in three numbers the compiled step reads
per mechanism: how fast it learns, how fast it forgets (consolidation, a decay of its
parameters each step), and what it learns toward:

* ``naive`` (letter ``n``): fast, toward the current objective;
* ``weighted`` (``w``): toward a fixed weighted sum of the training objectives, whatever the
  phase (``weights`` per environment; all training environments alike by default);
* ``generalist`` (``g``): slow, toward the current objective, with consolidation.

Each rule has a settings table in scenarios (``[circuits.<name>]``, a table sets only the
fields it names).  The registry ``REGISTRY`` is what the rest of the package reads: the
structure grammar's letters, the scenario schema, the population's arrays, the theory's
candidates, ``switch_rule``, and the figures' colours.  A new rule that is a new
combination of rate, consolidation and target is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from circuits_abm.engine.environments import Environments

LearningRate = Annotated[float, Field(ge=0.0, le=1.0)]
Consolidation = Annotated[float, Field(ge=0.0, lt=1.0)]


class RuleSettings(BaseModel):
    """A rule's table in a scenario: strict like every scenario table (unknown fields and
    non-finite numbers are errors)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    learning_rate: LearningRate
    consolidation: Consolidation = 0.0


class NaiveRule(RuleSettings):
    """The naive optimiser: learns the current objective fast."""

    learning_rate: LearningRate = 0.3


class WeightedRule(RuleSettings):
    """The weighted optimiser: learns toward a fixed weighted sum of the training objectives
    (``weights`` by environment name; every training environment alike when unset)."""

    learning_rate: LearningRate = 0.1
    weights: dict[str, Annotated[float, Field(ge=0.0)]] | None = None


class GeneralistRule(RuleSettings):
    """The generalist: learns slowly and consolidates (decays what the phases fight over)."""

    learning_rate: LearningRate = 0.03
    consolidation: Consolidation = 0.001


@dataclass(frozen=True)
class LearningRule:
    """One kind of mechanism: its name, its letter in structure strings, its settings table,
    and whether it learns toward a fixed mix of objectives instead of the current one."""

    name: str
    letter: str
    settings: type[RuleSettings]
    fixed_target: bool = False


REGISTRY: dict[str, LearningRule] = {
    rule.name: rule
    for rule in (
        LearningRule("naive", "n", NaiveRule),
        LearningRule("weighted", "w", WeightedRule, fixed_target=True),
        LearningRule("generalist", "g", GeneralistRule),
    )
}
RULES = tuple(REGISTRY)
RULE_LETTERS = {rule.name: rule.letter for rule in REGISTRY.values()}
LETTER_RULES = {rule.letter: rule.name for rule in REGISTRY.values()}
FIXED_TARGET_RULES = tuple(name for name, rule in REGISTRY.items() if rule.fixed_target)


def fixed_target_weights(weights: dict[str, float] | None, envs: Environments) -> np.ndarray:
    """Per environment, the share of a fixed-target rule's objective (sums to 1): ``weights``
    normalised, or every training environment alike when there are none."""
    w = np.zeros(envs.size)
    if weights:
        for name, value in weights.items():
            w[envs.index(name)] = value
    else:
        w[envs.training] = 1.0
    return w / w.sum()
