"""A scenario's environments as tasks for a network, built from the scenario's own geometry.

* **Teachers from sharing.** Environment ``e``'s target for input ``z ~ N(0, I)`` is
  ``y_e(z) = <d_e, z>`` with ``d_e`` its demand vector, so ``E[y_e y_f] = G[e, f]``: the
  teachers overlap exactly as the demand Gram matrix says (negative for conflicting
  objectives).
* **Cues from distinguishability.** The network sees ``x = (z, q_e)``, with ``q_e`` the
  environment's cue vector, so two environments look alike exactly as much as
  ``Q[e, f] = <q_e, q_f>`` says: at distinguishability 0 nothing in the input tells them
  apart.
* **The schedule is the scenario's**: the same phases (``circuits_abm.engine.schedule``,
  drawn with the run's seed), mixtures, held-out environments (scored, never trained) and
  interventions (the geometry in force changes at their step).  One step is one update.
* **SFT and RL.** An ``rl`` environment trains by REINFORCE (``circuits_abm.networks.training``);
  every other training environment by regression on its teacher.

The score of a network in an environment is the agent-based model's reward on the same
scale, ``R_e = E[y_e^2] / 2 - E[(f(x) - y_e)^2] / 2``: at most 1/2 on unit-norm demands,
0 for a network that outputs nothing, -1/2 for one fitted to an orthogonal teacher.
* **Motivations are reward components.** An environment that names a motivation with
  payment ``m`` rewards the network's behaviour ``b`` for it by ``m b - b^2 / 2`` (the
  agent-based model's form: it saturates at ``b = m``); one that does not name it neither
  rewards nor trains it.  Each expert has a behaviour output per motivation
  (``circuits_abm.networks.networks``).

Networks learn by the plain rule only: a scenario whose monitor blocks or routes is refused
with a message saying so (``circuits_abm.networks.gradient_routing`` models gradient
routing in a network of its own, from ``scheduled_tasks``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuits_abm.engine.environments import Environments, apply_intervention, build_environments
from circuits_abm.engine.scenario import Scenario, ScenarioError
from circuits_abm.engine.schedule import Phase, build_schedule


@dataclass(frozen=True)
class Tasks:
    """Everything a training run needs from the scenario, as arrays.

    ``teachers`` and ``cues`` hold one geometry per *version* (the start, then one after each
    intervention): ``(versions, environments, dimensions)``.  Per step: the geometry version
    in force, the environments' weights in the step's objective, and whether the step ends a
    phase.
    """

    names: tuple[str, ...]
    rl: np.ndarray  # per environment: trained by REINFORCE
    held_out: np.ndarray  # per environment
    teachers: np.ndarray
    cues: np.ndarray
    motivations: tuple[str, ...]  # the declared motivations, in the scenario's order
    motive: np.ndarray  # (versions, environments, motivations): the payment m
    named: np.ndarray  # (versions, environments, motivations): the environment names it
    phases: tuple[Phase, ...]
    step_version: np.ndarray  # (steps,)
    step_mix: np.ndarray  # (steps, environments)
    phase_end: np.ndarray  # (steps,) bool


def refuse_what_networks_do_not_model(spec: Scenario) -> None:
    """A ``ScenarioError`` for scenario features a network run would silently ignore: a
    monitor that blocks or routes (``circuits-abm neural routing`` models one in a network
    of its own)."""
    rules = {spec.monitor.rule} | {iv.rule for iv in spec.interventions if iv.rule}
    if rules - {"plain"}:
        raise ScenarioError(spec.name, [
            f"`monitor.rule`: neural runs learn with the plain rule only, and this scenario "
            f"uses {', '.join(sorted(rules - {'plain'}))}; use the agent-based model "
            "(circuits-abm run), or circuits-abm neural routing for gradient routing in a "
            "network"])


def geometry_versions(spec: Scenario) -> tuple[list[Environments], list[int]]:
    """The environment geometry at the start and after each intervention that changes it,
    with the step from which each holds."""
    envs = build_environments(spec)
    versions, starts = [envs], [0]
    for iv in sorted(spec.interventions, key=lambda iv: iv.step):
        if iv.changes_geometry:
            envs = apply_intervention(envs, iv)
            versions.append(envs)
            starts.append(iv.step)
    return versions, starts


def build_tasks(spec: Scenario, steps: int, rng: np.random.Generator) -> Tasks:
    """The tasks of ``spec`` for a run of ``steps`` steps; ``rng`` draws the schedule.
    Refuses a scenario whose monitor blocks or routes (``refuse_what_networks_do_not_model``)."""
    refuse_what_networks_do_not_model(spec)
    return scheduled_tasks(spec, steps, rng)


def scheduled_tasks(spec: Scenario, steps: int, rng: np.random.Generator) -> Tasks:
    """``spec``'s tasks whatever its monitor does: for a caller that models the monitor
    itself (``circuits_abm.networks.gradient_routing``)."""
    versions, starts = geometry_versions(spec)
    first = versions[0]
    phases = tuple(build_schedule(spec, first, steps, rng))
    step_mix = np.zeros((steps, first.size))
    phase_end = np.zeros(steps, dtype=bool)
    for phase in phases:
        step_mix[phase.start:phase.end] = phase.weights / phase.weights.sum()
        phase_end[phase.end - 1] = True
    step_version = np.searchsorted(np.array(starts), np.arange(steps), side="right") - 1
    kinds = {e.name: e.kind for e in spec.environments}
    return Tasks(
        names=first.names,
        rl=np.array([kinds[n] == "rl" for n in first.names]),
        held_out=np.array(first.held_out, dtype=bool),
        teachers=np.stack([v.capability for v in versions]),
        cues=np.stack([v.cues for v in versions]),
        motivations=first.motivations,
        motive=np.stack([v.motive for v in versions]),
        named=np.stack([v.relevance[:, v.width::2] > 0 for v in versions]),
        phases=phases,
        step_version=step_version.astype(np.int32),
        step_mix=step_mix,
        phase_end=phase_end,
    )
