"""Selection and learning for a stretch of steps in one compiled call.

Most steps change nothing but numbers: nobody is born, nobody dies, no record is due and no
intervention applies.  A run spends most of its time in such stretches, and a Python step
around the compiled arithmetic (Mesa's clock, the records' bookkeeping, argument checks on
every kernel call) used to cost twice the arithmetic itself.  ``advance`` therefore runs a
whole stretch in machine code (``kernels.advance``): per step, the evaluation, fitness
under the phase's mix, the replicator and learning, with pre-drawn noise for every step.
It stops early after a step that leaves a circuit below the extinction floor, so that the
model can remove it before the next step, exactly as the one-step path does.

The model's ordinary step is the same call for one step, so ``CircuitsModel.run`` (which
uses stretches) and stepping the model one ``step()`` at a time give bit-for-bit the same
run (``tests/test_steps.py``).
"""

from __future__ import annotations

import numpy as np

from circuits_abm.engine import kernels
from circuits_abm.engine.population import Layout


def advance(layout: Layout, shares: np.ndarray, inputs: tuple[np.ndarray, ...],
            fixed_targets: np.ndarray, monitor: np.ndarray, rule: str, capacity: float,
            strength: float, gamma: float, noise_level: float, standard_noise: np.ndarray,
            floor: float) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Up to ``len(standard_noise)`` steps of selection and learning, in place on
    ``layout`` and ``shares``.

    ``inputs`` is ``(mix, demands, cues, relevance, others, gain, upkeep)`` of the phase's
    active environments; ``capacity`` caps the quarantine modules' norm (``inf``: no cap);
    ``standard_noise`` holds one N(0, 1) array of the shape of ``layout.theta`` per step.
    Stops after the first step that leaves a share below ``floor``.  Returns ``(steps
    done, the last step's fitness, each step's share-weighted mean fitness, each step's
    share-weighted update along the monitor)``.
    """
    steps = len(standard_noise)
    fitness = np.empty(layout.n_circuits)
    mean_fitness, routed_mass = np.empty(steps), np.empty(steps)
    settings = kernels.StepSettings(fixed_targets, monitor, kernels.UPDATE_RULES[rule],
                                    float(capacity), float(strength), float(gamma),
                                    float(noise_level), float(floor))
    done = kernels.advance(layout.rows(), kernels.PhaseInputs(*inputs), settings, shares,
                           standard_noise, fitness, mean_fitness, routed_mass)
    return done, fitness, mean_fitness[:done], routed_mass[:done]


def share_weighted(shares: np.ndarray, values: np.ndarray) -> float:
    """``sum_i shares_i * values_i``, added up in index order: the model's mean fitness
    (records and Mesa's reporter alike), summed exactly as ``advance`` sums it."""
    return kernels.share_weighted(shares, values)
