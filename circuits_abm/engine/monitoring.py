"""Motivations and gradient routing: the monitored direction, and what the monitor saw.

A scenario can declare motivation directions (such as reward seeking); each environment
rewards or penalises them (docs/model.md).  Under the ``block`` and ``route`` update rules a
monitor watches one direction of demand space; under ``route`` what it catches goes into
quarantine modules that are discarded (``circuits_abm.engine.learning``,
``circuits_abm.engine.model.CircuitsModel``).  This module says where the monitor looks and
reads its record: which environments pushed the quarantine, and whether those are the
hackable ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from circuits_abm.engine import kernels
from circuits_abm.engine.environments import Environments
from circuits_abm.engine.scenario import Scenario

if TYPE_CHECKING:
    from circuits_abm.engine.model import CircuitsModel


def monitor_direction(scenario: Scenario, envs: Environments) -> np.ndarray:
    """The unit direction the monitor watches: the monitored motivation's behaviour through
    its watched pathways (``monitor.watched``, all by default; ``g_i`` on each, normalised)
    turned by ``monitor.angle`` degrees toward the direction that ``monitor.tilt`` names.
    ``inert``: the combination ``g_2 e_1 - g_1 e_2`` of the first two pathways, which
    changes no behaviour (at 90 degrees the monitor sees nothing that matters).
    ``capability``: the unit mean training demand on the capability dimensions (at 90
    degrees it watches the shared skill alone).  Zeros when there is no motivation."""
    direction = np.zeros(envs.demands.shape[1])
    name = scenario.monitored
    if name is None:
        return direction
    pathways = envs.pathways(name)
    watched = pathways[: scenario.monitor.watched or len(pathways)]
    seen = np.zeros_like(direction)
    seen[watched] = envs.metric.gain[watched]
    norm = np.sqrt(seen @ seen)
    # kernels.sin_cos gives the same bits on every CPU for t = x - pi/4 in [-pi/4, pi/4],
    # with x the angle: cos x = (cos t - sin t) / sqrt 2 and sin x = (cos t + sin t) / sqrt 2.
    sine, cosine = kernels.sin_cos((scenario.monitor.angle - 45.0) * (np.pi / 180.0))
    if scenario.monitor.tilt == "capability":
        shared = envs.capability[envs.training].mean(axis=0)
        behaviour = (cosine - sine) / np.sqrt(2.0)  # cos x
        skill = (cosine + sine) / np.sqrt(2.0)  # sin x
        direction[watched] = behaviour * seen[watched] / norm
        direction[: envs.width] = skill * shared / np.sqrt(shared @ shared)
        return direction
    if len(watched) < 2:  # validation allows no inert tilt here: the angle is 0
        return seen / norm
    a, b = pathways[:2]
    inert = np.zeros_like(direction)
    inert[a], inert[b] = envs.metric.gain[b], -envs.metric.gain[a]
    behaviour, inert = seen / norm, inert / np.sqrt(inert @ inert)
    # cos x B + sin x I = cos t P - sin t M, with P = (B + I)/sqrt 2 and M = (B - I)/sqrt 2,
    # two orthonormal vectors (normalised one by one, they are exactly e_1 and e_2 for two
    # pathways of gain 1, so that model's monitor keeps its bits).
    plus, minus = behaviour + inert, behaviour - inert
    return plus / np.sqrt(plus @ plus) * cosine - minus / np.sqrt(minus @ minus) * sine


def noisy_direction(direction: np.ndarray, noise: float,
                    rng: np.random.Generator) -> np.ndarray:
    """One reading of the monitored ``direction`` by a monitor with error ``noise``: the
    direction plus Gaussian noise of expected squared norm ``noise^2`` spread over every
    demand dimension, back to unit length.  For a unit ``u`` in ``D`` dimensions the reading
    keeps about ``1 / (1 + noise^2)`` of ``u``'s square and puts about ``noise^2 / (D (1 +
    noise^2))`` on each other unit direction."""
    reading = direction + noise * rng.standard_normal(direction.shape) / np.sqrt(direction.size)
    return reading / np.sqrt(reading @ reading)


def pushes_by_environment(quarantine: pd.DataFrame, spec: Scenario) -> dict[str, list[float]]:
    """Each training environment's push on the monitored motivation in every phase that
    trained it (positive: toward the motivation); a mixture phase's push is shared among
    its environments by their weights."""
    pushes: dict[str, list[float]] = {env: [] for env in spec.training_names}
    for label, routed in zip(quarantine.trained, quarantine.routed, strict=True):
        mixture = spec.schedule.mixtures.get(label, {label: 1.0})
        total = sum(mixture.values())
        for env, weight in mixture.items():
            pushes[env].append(float(routed) * weight / total)
    return pushes


def pushed_up(pushes: list[float], z: float = 3.0) -> bool:
    """Whether an environment's phases pushed the motivation up beyond what their own
    phase-to-phase noise explains: the mean push is more than ``z`` standard errors above 0
    (gradient noise alone gives a mean near 0 with either sign)."""
    if len(pushes) < 2:
        return False
    values = np.asarray(pushes)
    error = values.std(ddof=1) / np.sqrt(len(values))
    return bool(values.mean() > z * error) if error > 0 else bool(values.mean() > 0)


def settled(quarantine: pd.DataFrame) -> pd.DataFrame:
    """The second half of the run's phases: the population has settled, and the transient
    of circuits that push every environment alike (a weighted optimiser learns toward the
    same mixture whatever is trained) no longer dominates."""
    if quarantine.empty:
        return quarantine
    return quarantine[quarantine.phase >= quarantine.phase.max() / 2]


def attribution(quarantine: pd.DataFrame, spec: Scenario) -> dict[str, Any]:
    """Which environments the monitor flags, against the ones that reward the monitored
    motivation.  Flagged: pushed the motivation up, beyond the noise of its own phases
    (``pushed_up``).  Increases come from where the behaviour pays, decreases from where
    it is penalised; where it is useless, gradient noise pushes either way.  Precision and
    recall are None when there is nothing to flag or nothing hackable.  Read over the
    settled second half of the run (``settled``)."""
    pushes = pushes_by_environment(settled(quarantine), spec)
    pushed = {env: float(np.sum(values)) for env, values in pushes.items()}
    name = spec.monitored
    hackable = {e.name for e in spec.environments
                if not e.held_out and e.motivations.get(name, 0.0) > 0}
    flagged = {env for env, values in pushes.items() if pushed_up(values)}
    return {"pushed": {env: round(mass, 6) for env, mass in pushed.items()},
            **scored(flagged, hackable)}


def scored(flagged: set[str], hackable: set[str]) -> dict[str, Any]:
    """``flagged`` and ``hackable`` (sorted) with the precision and recall of the one
    against the other, None when there is nothing to flag or nothing hackable."""
    hits = len(flagged & hackable)
    return {
        "flagged": sorted(flagged),
        "hackable": sorted(hackable),
        "precision": hits / len(flagged) if flagged else None,
        "recall": hits / len(hackable) if hackable else None,
    }


PROBE_FLOOR = 0.01  # the least probe value worth fixing (reward per unit along the monitor)


def probe(model: CircuitsModel) -> dict[str, float]:
    """Per training environment: would it teach the monitored behaviour to a model that did
    not have it?  Each mechanism's parameters (with any quarantine module) lose their
    component along the monitored direction ``u`` (the ablation an investigator can do),
    and the environment's reward gradient there is read along ``u``:
    ``(d_e - A_e theta_ablated) . u``, weighted by the mechanism's share and routed path in
    that environment.  Positive: training there pushes toward the behaviour.

    Unlike the flows (``attribution``), the probe does not depend on how far learning has
    already gone: an environment that pays less for the behaviour than the population
    already has still pushes a behaviour-free model toward it.  With every pathway watched
    at angle 0 the ablated model expresses no behaviour at all, so the probe is ``m_e g.u``:
    the payoff itself, an identity.  With an angle or unwatched pathways the ablated model
    keeps some behaviour, and an environment paying less than that reads negative."""
    envs, layout, u = model.environments, model.layout, model.monitor
    theta = layout.effective_theta
    ablated = theta - np.outer(theta @ u, u)
    path, _, _ = model.evaluation()
    weight = path[layout.leaf_rows] * model.shares[layout.leaf_owner][:, None]
    dense = envs.metric.matrix()
    out = {}
    for e in envs.training:
        mask = envs.relevance[e]
        gradient = envs.demands[e] - ablated @ (dense * mask[:, None] * mask[None, :])
        out[envs.names[e]] = float(weight[:, e] @ (gradient @ u))
    return out


def probe_attribution(model: CircuitsModel) -> dict[str, Any]:
    """The environments the probe flags (above ``PROBE_FLOOR``) against those that pay for
    the monitored motivation now (the current payoffs, after any intervention that changed
    them): precision and recall, None when there is nothing to flag or nothing hackable."""
    values = probe(model)
    envs = model.environments
    column = envs.motivations.index(model.spec.monitored)
    hackable = {envs.names[e] for e in envs.training if envs.motive[e, column] > 0}
    flagged = {env for env, value in values.items() if value > PROBE_FLOOR}
    return {"values": {env: round(value, 6) for env, value in values.items()},
            **scored(flagged, hackable)}


def readings_at_the_end(spec: Scenario, phases: pd.DataFrame) -> dict[str, Any]:
    """What the last phase end shows, after any discard: the monitored motivation per
    environment (``final_motivation``) and its mean over training, held-out and evaluation
    environments (``motivation``; None for a group with no environment), and the
    capability in the training environments (``capability_final``: what a discard kept)."""
    last = phases[phases.phase == phases.phase.max()].set_index("environment")
    final = {env: round(float(v), 6) for env, v in last[f"motivation_{spec.monitored}"].items()}
    kinds = {e.name: e for e in spec.environments}
    groups = {
        "training": [n for n in final if not kinds[n].held_out],
        "held_out": [n for n in final if kinds[n].held_out and kinds[n].kind != "eval"],
        "evaluation": [n for n in final if kinds[n].kind == "eval"],
    }
    return {
        "final_motivation": final,
        "motivation": {group: (round(float(np.mean([final[n] for n in names])), 6)
                               if names else None) for group, names in groups.items()},
        "capability_final": float(last[~last.held_out].population_capability.mean()),
    }
