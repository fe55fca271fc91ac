"""The Mesa model: circuits competing for share while training phases switch.

One step, in order (docs/model.md):

1. apply interventions scheduled for this step (they change the environment geometry, the
   motivation update rule, or discard the quarantine modules);
2. fitness of every circuit in the current objective mix (reward minus structural cost);
3. exponential-replicator selection;
4. learning, weighted by ``share**gamma``: mechanisms take routed noisy gradient steps,
   router keys take policy-gradient steps;
5. variation: a Poisson number of offspring, parents drawn by share;
6. extinction below the share floor;
7. records (after discarding the quarantine modules, on the last step, when the scenario
   discards them at the end).

Steps 2-4 run over the whole population at once (``circuits_abm.engine.learning``); the Mesa
agents (``circuits_abm.engine.circuits.Circuit``) carry identity, lineage and structure.
"""

from __future__ import annotations

import mesa
import numpy as np

from circuits_abm.engine import learning, selection
from circuits_abm.engine.circuits import Circuit, parse_structure
from circuits_abm.engine.environments import Environments, apply_intervention, build_environments
from circuits_abm.engine.monitoring import monitor_direction
from circuits_abm.engine.population import Layout, compile_population
from circuits_abm.engine.records import Recorder
from circuits_abm.engine.rules import FIXED_TARGET_RULES, fixed_target_weights
from circuits_abm.engine.scenario import Scenario
from circuits_abm.engine.schedule import Phase, build_schedule
from circuits_abm.engine.variation import PARAMETER_ONLY, Context, choose_operator, make_offspring


def default_population(scenario: Scenario) -> list[str]:
    """The prototype's start: a router over one naive child per training env, plus n, w, g."""
    n_training = max(2, len(scenario.training_names))
    return ["R[" + ",".join(["n"] * n_training) + "]", "n", "w", "g"]


def fixed_targets(scenario: Scenario, envs: Environments) -> np.ndarray:
    """One row per fixed-target rule (the weighted optimiser): the demand vector it learns
    toward, a fixed weighted sum of the environments' demands."""
    rows = [
        fixed_target_weights(getattr(scenario.circuits, name).weights, envs) @ envs.demands
        for name in FIXED_TARGET_RULES
    ]
    return np.array(rows).reshape(len(rows), envs.demands.shape[1])


class CircuitsModel(mesa.Model):
    """A population of circuits under a training schedule (the module docstring gives a step).

    Use ``circuits_abm.run`` to run a scenario and get its tables; build the model
    directly to step it yourself or to look inside.

    Parameters
    ----------
    spec
        A validated ``circuits_abm.engine.scenario.Scenario``.
    seed
        The seed of ``model.rng``, the only source of randomness (default: ``spec.seed``).
    steps
        Number of steps in the schedule (default: ``spec.steps``).

    Attributes
    ----------
    circuits
        The Mesa agents, one ``circuits_abm.engine.circuits.Circuit`` per circuit
        alive, in the same order as ``shares`` and ``fitness``.
    shares, fitness
        Arrays over the population: each circuit's share (on the simplex) and its fitness
        in the last step.
    environments, phases
        The environment geometry and the training schedule.
    recorder
        Collects the timeseries and phases tables (``recorder.tables()``).

    Examples
    --------
    >>> import circuits_abm as ca
    >>> model = ca.CircuitsModel(ca.load_scenario("standard"), seed=1, steps=100)
    >>> for _ in range(100):
    ...     model.step()
    >>> round(float(model.shares.sum()), 12)
    1.0
    >>> [circuit.structure for circuit in model.circuits][:2]  # doctest: +SKIP
    ['R[n,n,n,n]', 'n']
    """

    def __init__(self, spec: Scenario, seed: int | None = None, steps: int | None = None):
        self.seed = spec.seed if seed is None else seed
        super().__init__(rng=self.seed)
        self.spec = spec
        self.n_steps = spec.steps if steps is None else steps
        self.environments = build_environments(spec)
        self.phases: list[Phase] = build_schedule(spec, self.environments, self.n_steps, self.rng)
        self.phase_of_step = np.repeat(np.arange(len(self.phases)), [p.length for p in self.phases])
        self.births = self.rng.poisson(spec.variation.rate, size=self.n_steps)
        self.interventions = {}
        for iv in spec.interventions:
            self.interventions.setdefault(iv.step, []).append(iv)
        self.fixed_targets = fixed_targets(spec, self.environments)
        self.update_rule = spec.monitor.rule
        self.monitor = monitor_direction(spec, self.environments)
        self.routed_mass = 0.0  # this step's share-weighted update along the monitor (signed)
        self.alarm_step: int | None = None
        self.halted = False
        self._inputs: tuple | None = None
        self._lineages = 0
        demand_dim, cue_dim = self.environments.demands.shape[1], self.environments.cues.shape[1]
        sharpness = spec.circuits.router.initial_sharpness
        self.circuits: list[Circuit] = [
            Circuit(self, parse_structure(text, demand_dim, cue_dim, sharpness, self.rng))
            for text in spec.population.initial or default_population(spec)
        ]
        self.shares = np.full(len(self.circuits), 1.0 / len(self.circuits))
        self.layout: Layout = compile_population([c.root for c in self.circuits], spec)
        self.fitness = np.zeros(len(self.circuits))
        self.recorder = Recorder(self)

    # ------------------------------------------------------------------ helpers

    def new_lineage(self) -> int:
        """A fresh lineage id (1, 2, 3, ... in order of founding)."""
        self._lineages += 1
        return self._lineages

    @property
    def step_index(self) -> int:
        """0-based index of the step being run (Mesa counts steps from 1)."""
        return self.steps - 1

    @property
    def current_phase(self) -> Phase:
        """The phase the step being run belongs to."""
        return self.phases[self.phase_of_step[min(self.step_index, self.n_steps - 1)]]

    def recompile(self) -> None:
        """Rebuild the flat arrays after the population's structure changed."""
        self.layout = compile_population([c.root for c in self.circuits], self.spec)

    def phase_inputs(self, phase: Phase) -> tuple[np.ndarray, ...]:
        """(mix weights, demands, cues, relevance) of the phase's active environments,
        cached per phase."""
        if self._inputs is None or self._inputs[0] != phase.index:
            active = phase.active
            envs = self.environments
            self._inputs = (
                phase.index,
                phase.weights[active],
                envs.demands[active],
                envs.cues[active],
                envs.relevance[active],
            )
        return self._inputs[1:]

    # ------------------------------------------------------------------ the step

    def step(self) -> None:
        """Advance one step: interventions, selection and learning, variation, extinction,
        records (the module docstring gives the order and why)."""
        t = self.step_index
        phase = self.current_phase
        for iv in self.interventions.get(t, []):
            self.intervene(iv)
        if self.spec.monitor.discard == t:
            self.discard_quarantine()
        self.fitness = self.select_and_learn(phase, self.rng.normal(size=self.layout.theta.shape))
        self.check_alarm(t)
        changed = self.vary(phase)
        changed |= self.cull()
        if changed:
            self.recompile()
        if t == self.n_steps - 1 and self.spec.monitor.discard == "end":
            self.discard_quarantine()  # before the final evaluation
        self.recorder.after_step(t, phase)

    def intervene(self, iv) -> None:
        """Apply one intervention: new geometry, a new update rule, or a discard."""
        if iv.changes_geometry:
            self.environments = apply_intervention(self.environments, iv)
            self.fixed_targets = fixed_targets(self.spec, self.environments)
            self.monitor = monitor_direction(self.spec, self.environments)
            self._inputs = None
        if iv.rule is not None:
            self.update_rule = iv.rule
        if iv.discard:
            self.discard_quarantine()

    def discard_quarantine(self) -> None:
        """Empty every mechanism's quarantine module (what was routed there is thrown away)."""
        self.layout.quarantine[:] = 0.0

    def module_norm(self) -> float:
        """Share-weighted norm of the circuits' quarantine modules (all of a circuit's
        mechanisms together)."""
        layout = self.layout
        squared = np.bincount(layout.leaf_owner, (layout.quarantine**2).sum(axis=1),
                              minlength=layout.n_circuits)
        return float(self.shares @ np.sqrt(squared))

    def check_alarm(self, t: int) -> None:
        """Record the first step whose module norm crosses ``monitor.alarm`` (and halt there
        if asked)."""
        alarm = self.spec.monitor.alarm
        if alarm is None or self.alarm_step is not None or self.module_norm() <= alarm:
            return
        self.alarm_step = t
        if self.spec.monitor.halt_on_alarm:
            self.halted = True

    def select_and_learn(self, phase: Phase, standard_noise: np.ndarray) -> np.ndarray:
        """Fitness, selection and learning for the whole population; returns fitness.

        ``standard_noise`` has one N(0, 1) row per mechanism (pre-order per circuit), so
        the reference implementation can be fed the very same draws.
        """
        spec, layout = self.spec, self.layout
        mix, demands, cues, relevance = self.phase_inputs(phase)
        prob, path = learning.routing(layout, cues)
        envs = self.environments
        rewards = learning.leaf_rewards(layout.effective_theta, demands, envs.partner,
                                        envs.upkeep, relevance)
        values = learning.subtree_values(layout, prob, rewards)
        fit = selection.fitness(values[: layout.n_circuits], mix, layout.cost)
        self.shares = selection.replicator(self.shares, fit, spec.selection.strength)
        weight = self.shares**spec.learning.gamma  # gamma = 0: every circuit learns fully
        routed = learning.learn(layout, prob, path, values, mix, demands, cues,
                                self.fixed_targets, weight, spec.learning.noise * standard_noise,
                                self.monitor, envs.partner, envs.upkeep, relevance,
                                self.update_rule)
        self.routed_mass = float(self.shares[layout.leaf_owner] @ routed)
        return fit

    def vary(self, phase: Phase) -> bool:
        """Spawn a Poisson number of offspring; True if any was born."""
        var = self.spec.variation
        births = int(self.births[self.step_index])
        if births == 0:
            return False
        envs = self.environments
        ctx = Context(self.rng, self.spec, phase.weights @ envs.cues, envs.cue_centre(),
                      self.monitor, self.update_rule)
        born = False
        for _ in range(births):
            i = int(self.rng.choice(len(self.circuits), p=self.shares))
            parent = self.circuits[i]
            operator = choose_operator(parent.root, ctx)
            if not operator:
                continue
            keep = operator in PARAMETER_ONLY
            child = Circuit(
                self,
                make_offspring(parent.root, operator, ctx),
                lineage=parent.lineage if keep else None,
                parent_lineage=parent.parent_lineage if keep else parent.lineage,
                parent_id=parent.unique_id,
            )
            given = min(var.offspring_share, self.shares[i] / 2)
            self.shares[i] -= given
            self.shares = np.append(self.shares, given)
            self.fitness = np.append(self.fitness, self.fitness[i])
            self.circuits.append(child)
            born = True
        return born

    def cull(self) -> bool:
        """Remove circuits below the extinction floor; True if any died."""
        alive = selection.survivors(self.shares, self.spec.selection.extinction_floor)
        if alive.all():
            return False
        for circuit, keep in zip(self.circuits, alive, strict=True):
            if not keep:
                circuit.remove()
        self.circuits = [c for c, keep in zip(self.circuits, alive, strict=True) if keep]
        self.shares = self.shares[alive] / self.shares[alive].sum()
        self.fitness = self.fitness[alive]
        return True

    def run(self, progress=None) -> None:
        """Run every step of the schedule (or until an alarm halts it); ``progress`` is called
        with each finished phase."""
        while self.steps < self.n_steps and not self.halted:
            self.step()
            if progress is not None and self.step_index == self.current_phase.end - 1:
                progress(self.current_phase)
