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

Steps 2-4 run over the whole population at once, compiled (``circuits_abm.engine.steps``);
the Mesa agents (``circuits_abm.engine.circuits.Circuit``) carry identity, lineage and
structure.  ``run`` goes further: a stretch of steps in which nobody is born, no record is
due and no intervention applies runs in one compiled call, with the same result as
stepping through it one ``step()`` at a time.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import mesa
import numpy as np

from circuits_abm.engine import linalg, selection, steps
from circuits_abm.engine.circuits import Circuit, parse_structure
from circuits_abm.engine.environments import (
    Environments,
    apply_intervention,
    apply_payoffs,
    build_environments,
)
from circuits_abm.engine.loading import load_scenario, override, revalidated, run_length
from circuits_abm.engine.monitoring import monitor_direction, noisy_direction
from circuits_abm.engine.population import (
    Layout,
    attach,
    compile_population,
    extended,
    restricted,
)
from circuits_abm.engine.records import Recorder, evaluate_all, lineage_table
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
        linalg.weighted_rows(fixed_target_weights(getattr(scenario.circuits, name).weights, envs),
                             envs.demands)
        for name in FIXED_TARGET_RULES
    ]
    return np.array(rows).reshape(len(rows), envs.demands.shape[1])


SCENARIO_SEED = "scenario"  # the default of ``rng``: take the seed from the scenario


def _population_reward(model: CircuitsModel, environment: str) -> float:
    """A DataCollector reporter: the population's reward in ``environment`` now."""
    return model.population_reward()[environment]


class CircuitsModel(mesa.Model):
    """A population of circuits under a training schedule (the module docstring gives a step).

    Use ``circuits_abm.run`` to run a scenario and get its tables; build the model directly
    to step it yourself, to use Mesa's own tools on it (``DataCollector``, ``batch_run``,
    ``SolaraViz``), or to look inside.

    Parameters
    ----------
    spec
        A ``Scenario``, a scenario file, or a built-in scenario's name.
    rng
        Mesa's seed argument.  By default the scenario's ``seed`` field; an integer or a
        ``numpy.random.Generator`` seeds the run from it, and ``None`` draws a fresh seed
        (what ``mesa.batch_run`` passes for ``iterations``).  The seed used is always in
        ``model.seed``, so every run can be repeated.
    steps
        Length of the schedule (default: the scenario's ``steps``); ``running`` turns False
        after the last step.
    collect
        Collect Mesa's ``DataCollector`` (default).  ``circuits_abm.run`` and sweeps pass
        False: their tables come from ``recorder``, and collecting would cost about a tenth
        of each step for data nobody reads.
    **overrides
        Scenario fields by dotted path, validated like a file, for example
        ``seed=3`` or ``**{"geometry.sharing": 0.9}``: the flat keyword parameters that
        ``mesa.batch_run`` and ``SolaraViz`` pass.

    Attributes
    ----------
    spec
        The validated scenario, overrides applied (``model.scenario`` is Mesa's own).
    seed
        The seed of ``model.rng``, the only source of randomness.
    circuits
        The Mesa agents, one ``circuits_abm.engine.circuits.Circuit`` per circuit
        alive, in the same order as ``shares`` and ``fitness``; ``model.agents`` holds the
        same agents, each with its ``share``, ``fitness``, ``kind``, ``lineage`` and
        ``structure``.
    shares, fitness
        Arrays over the population: each circuit's share (on the simplex) and its fitness
        in the last step.
    datacollector
        Mesa's ``DataCollector`` (None if ``collect`` is False), collected at the start and
        at every phase end: model
        reporters ``router_share``, ``dominant_structure``, ``mean_fitness``, ``seed`` and
        ``reward_<environment>``; agent reporters ``share``, ``kind``, ``lineage``,
        ``structure``.
    environments, phases
        The environment geometry and the training schedule.
    recorder
        Collects the timeseries and phases tables (``recorder.tables()``).

    Examples
    --------
    >>> import circuits_abm as ca
    >>> model = ca.CircuitsModel("standard", rng=1, steps=100)
    >>> while model.running:
    ...     model.step()
    >>> model.steps, round(float(model.shares.sum()), 12)
    (100, 1.0)
    >>> round(model.agents.agg("share", sum), 12)
    1.0
    >>> ca.CircuitsModel("standard", **{"geometry.sharing": 0.9}).spec.geometry.sharing
    0.9

    Mesa's own batch runner takes the same flat parameters:

    >>> import mesa, pandas as pd
    >>> rows = mesa.batch_run(ca.CircuitsModel, {"geometry.sharing": [0.1, 0.9]},
    ...                       rng=[1, 2], max_steps=100, display_progress=False)
    >>> runs = pd.DataFrame(rows).drop_duplicates("RunId")  # a row per agent; one per run here
    >>> runs[["geometry.sharing", "seed", "Step"]].sort_values(["geometry.sharing", "seed"]
    ...                                                        ).values.tolist()
    [[0.1, 1.0, 100.0], [0.1, 2.0, 100.0], [0.9, 1.0, 100.0], [0.9, 2.0, 100.0]]
    """

    def __init__(
        self,
        spec: Scenario | str | Path = "standard",
        *,
        rng: int | np.random.Generator | None | str = SCENARIO_SEED,
        steps: int | None = None,
        collect: bool = True,
        **overrides: Any,
    ):
        overrides.pop("scenario", None)  # SolaraViz's reset passes Mesa's own scenario object
        spec = revalidated(spec) if isinstance(spec, Scenario) else load_scenario(spec)
        if overrides:
            spec = override(spec, overrides)
        self.seed = seed_of(rng, spec.seed)
        super().__init__(rng=self.seed)
        self._advance_one_step = self.step  # Mesa's: move the clock on, running `step`
        self.step = self._step_unless_ended
        self.spec = spec
        self.n_steps = run_length(steps, spec)
        self.environments = build_environments(spec)
        self.phases: list[Phase] = build_schedule(spec, self.environments, self.n_steps, self.rng)
        self.phase_of_step = np.repeat(np.arange(len(self.phases)), [p.length for p in self.phases])
        self.births = self.rng.poisson(spec.variation.rate, size=self.n_steps)
        self.interventions = {}
        for iv in spec.interventions:
            self.interventions.setdefault(iv.step, []).append(iv)
        self.fixed_targets = fixed_targets(spec, self.environments)
        self.update_rule = spec.monitor.rule
        self.true_monitor = monitor_direction(spec, self.environments)
        self.monitor = self.true_monitor  # what the monitor reads (with noise: each phase)
        capacity = spec.monitor.capacity
        self.capacity = float("inf") if capacity is None else capacity  # of a quarantine module
        self.routed_mass = 0.0  # this step's share-weighted update along the monitor (signed)
        self.alarm_step: int | None = None
        self.halted = False
        self._inputs: tuple | None = None
        self._memo: dict[str, Any] = {}
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
        self.number_positions()
        self.recorder = Recorder(self)
        self.stretch_ends = stretch_ends(spec, self.phases, self.births, self.n_steps)
        self._steps_ahead = 0  # steps of a stretch already computed, that Mesa's clock owes
        self._user_events = False
        self.datacollector = None if not collect else mesa.DataCollector(
            model_reporters={
                "router_share": "router_share",
                "dominant_structure": "dominant_structure",
                "mean_fitness": "mean_fitness",
                "seed": "seed",
                **{f"reward_{name}": partial(_population_reward, environment=name)
                   for name in self.environments.names},
            },
            agent_reporters={name: name for name in ("share", "kind", "lineage", "structure")},
        )
        if self.datacollector is not None:
            self.datacollector.collect(self)

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

    def memoised(self, name: str, compute):
        """``compute()``, once per state of the population: at a phase end the records and
        Mesa's reporters all ask for the same evaluation and lineage table.  Anything that
        changes the population (a step, a birth or death, a discard, an intervention)
        forgets the memo."""
        if name not in self._memo:
            self._memo[name] = compute()
        return self._memo[name]

    def evaluation(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Path probabilities, mechanism rewards and subtree values in every environment
        (``records.evaluate_all``), memoised."""
        return self.memoised("evaluation", partial(evaluate_all, self))

    def lineages(self) -> list[dict]:
        """The lineage table, largest first (``records.lineage_table``), memoised."""
        return self.memoised("lineages", partial(lineage_table, self))

    def recompile(self) -> None:
        """Rebuild the flat arrays from the trees (after changing the population by hand)."""
        self._memo.clear()
        self.layout = compile_population([c.root for c in self.circuits], self.spec)
        self.number_positions()

    def update_layout(self, newborn: list[Circuit], alive: np.ndarray | None) -> None:
        """Bring the flat arrays up to date after this step's births (``newborn``, appended
        at the end) and deaths (``alive``, a mask over the circuits after the births, or
        None): the same arrays as ``recompile``, without walking every tree again."""
        self._memo.clear()
        layout = self.layout
        if newborn:
            layout = extended(layout, [c.root for c in newborn], self.spec)
        if alive is not None:
            layout = restricted(layout, alive)
        attach(layout)
        self.layout = layout
        self.number_positions()

    def number_positions(self) -> None:
        """Tell every agent its row in ``shares`` and ``fitness`` (its ``share`` reads it)."""
        for position, circuit in enumerate(self.circuits):
            circuit.position = position

    # ------------------------------------------------------------------ reporters

    @property
    def router_share(self) -> float:
        """Total share of the circuits whose root is a router."""
        return float(sum(s for s, c in zip(self.shares, self.circuits, strict=True)
                         if c.kind == "router"))

    @property
    def dominant_structure(self) -> str:
        """Structure of the largest circuit of the largest lineage."""
        return self.circuits[self.lineages()[0]["representative"]].structure

    @property
    def mean_fitness(self) -> float:
        """The population's share-weighted fitness in the last step, added up in circuit
        order as the records add it (a BLAS dot product would differ in the last bits)."""
        return steps.share_weighted(self.shares, self.fitness)

    def population_reward(self) -> dict[str, float]:
        """The population's share-weighted reward in every environment, as if presented now
        (computed once per step, however many reporters ask)."""
        return self.memoised("population_reward", self._population_reward)

    def _population_reward(self) -> dict[str, float]:
        _, _, values = self.evaluation()
        population = linalg.weighted_rows(self.shares, values[: self.layout.n_circuits])
        return {name: float(v) for name, v in zip(self.environments.names, population, strict=True)}

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

    def _step_unless_ended(self) -> None:
        """What ``model.step()`` calls: past the schedule's end or after a halt it is an
        error, every time, before Mesa's clock moves; otherwise Mesa runs ``step``."""
        if self.steps >= self.n_steps or self.halted:
            raise RuntimeError(
                f"the schedule ended after step {self.steps}: `running` is False; build a "
                "new model (or pass steps=) to go on")
        self._advance_one_step()

    def step(self) -> None:
        """Advance one step: interventions, selection and learning, variation, extinction,
        records (the module docstring gives the order and why).  Inside a stretch that
        ``run`` has already computed, only Mesa's clock moves, and the stretch's last step
        does the rest (variation, extinction, records)."""
        if self._steps_ahead > 1:  # computed already, and nothing to do at its end
            self._steps_ahead -= 1
            return
        self._memo.clear()
        t = self.steps - 1  # step_index, read once: Mesa's clock is an observable
        phase = self.phases[self.phase_of_step[t]]
        if self._steps_ahead:  # the last step of a computed stretch
            self._steps_ahead = 0
        else:
            self.prepare(t)
            self.advance(phase, 1)
            self.check_alarm(t)
        self.finish(t, phase)

    def prepare(self, t: int) -> None:
        """The start of step ``t``: its interventions, the discard if it is due now, and at
        a phase's first step a fresh reading of a noisy monitor."""
        if t in self.interventions:
            for iv in self.interventions[t]:
                self.intervene(iv)
        if self.spec.monitor.discard == t:
            self.discard_quarantine()
        noise = self.spec.monitor.noise
        if noise and self.spec.monitored and t == self.phases[self.phase_of_step[t]].start:
            self.monitor = noisy_direction(self.true_monitor, noise, self.rng)

    def finish(self, t: int, phase: Phase) -> None:
        """The end of step ``t``: variation, extinction, records, and whether to go on."""
        newborn = self.vary(phase, t)
        alive = self.cull()
        if newborn or alive is not None:
            self.update_layout(newborn, alive)
        if self.spec.monitor.discard == "end" and t == self.n_steps - 1:
            self.discard_quarantine()  # before the final evaluation
        self.recorder.after_step(t, phase)
        if self.datacollector is not None and t == phase.end - 1:
            self.datacollector.collect(self)
        self.running = t + 1 < self.n_steps and not self.halted

    def intervene(self, iv) -> None:
        """Apply one intervention: new geometry or payoffs, a new update rule, or a discard."""
        self._memo.clear()
        if iv.changes_geometry or iv.pays:
            self.environments = apply_payoffs(apply_intervention(self.environments, iv),
                                              iv.pays)
            self.fixed_targets = fixed_targets(self.spec, self.environments)
            self.true_monitor = self.monitor = monitor_direction(self.spec, self.environments)
            self._inputs = None
        if iv.rule is not None:
            self.update_rule = iv.rule
        if iv.discard:
            self.discard_quarantine()

    def discard_quarantine(self) -> None:
        """Empty every mechanism's quarantine module (what was routed there is thrown away)."""
        self._memo.clear()
        self.layout.quarantine[:] = 0.0

    def module_norm(self) -> float:
        """Share-weighted norm of the circuits' quarantine modules (all of a circuit's
        mechanisms together)."""
        layout = self.layout
        squared = np.bincount(layout.leaf_owner, (layout.quarantine**2).sum(axis=1),
                              minlength=layout.n_circuits)
        return linalg.dot(self.shares, np.sqrt(squared))

    def monitor_signal(self) -> float:
        """What the alarm reads: the module norm, or under ``watch`` (nothing is routed) the
        share-weighted strongest expression of the monitored direction in each circuit, the
        largest ``theta . u`` among its mechanisms (signed: a motivation trained *down* is
        not an alarm)."""
        if self.update_rule != "watch":
            return self.module_norm()
        layout = self.layout
        seen = linalg.matmul(layout.theta, self.monitor[:, None])[:, 0]
        strongest = np.full(layout.n_circuits, -np.inf)
        np.maximum.at(strongest, layout.leaf_owner, seen)
        return linalg.dot(self.shares, strongest)

    def check_alarm(self, t: int) -> None:
        """Record the first step whose alarm signal (``monitor_signal``) crosses
        ``monitor.alarm``, and halt there if asked or if the recovery loop will restart."""
        alarm = self.spec.monitor.alarm
        if (alarm is None or self.alarm_step is not None or t < self.spec.monitor.alarm_from
                or self.monitor_signal() <= alarm):
            return
        self.alarm_step = t
        if self.spec.monitor.halt_on_alarm or self.spec.monitor.restart_lag is not None:
            self.halted = True

    def select_and_learn(self, phase: Phase, standard_noise: np.ndarray) -> np.ndarray:
        """Fitness, selection and learning for the whole population; returns fitness.

        ``standard_noise`` has one N(0, 1) row per mechanism (pre-order per circuit), so
        the reference implementation can be fed the very same draws.
        """
        self.select_and_learn_steps(phase, standard_noise[None])
        return self.fitness

    def select_and_learn_steps(self, phase: Phase, standard_noise: np.ndarray) -> int:
        """Fitness, selection and learning for up to ``len(standard_noise)`` steps (one
        array of noise per step), stopping after a step that leaves a circuit below the
        extinction floor; returns the number of steps done.  The records' per-step sums
        of all but the last step are added here; ``finish`` adds the last one's."""
        spec, envs = self.spec, self.environments
        done, self.fitness, mean_fitness, routed_mass = steps.advance(
            self.layout, self.shares, (*self.phase_inputs(phase), *envs.metric.arrays()),
            self.fixed_targets, self.monitor, self.update_rule, self.capacity,
            spec.selection.strength,
            spec.learning.gamma, spec.learning.noise, standard_noise,
            spec.selection.extinction_floor)
        self.routed_mass = float(routed_mass[-1])
        self.recorder.add_steps(mean_fitness[:-1].tolist(), routed_mass[:-1].tolist())
        return done

    def advance(self, phase: Phase, length: int) -> int:
        """Selection and learning for up to ``length`` steps of ``phase``, drawing each
        step's noise as the one-step path would (a stretch cut short by an extinction gives
        back the draws of the steps it did not run); returns the number of steps done."""
        self._memo.clear()
        shape = self.layout.theta.shape
        if length == 1:
            return self.select_and_learn_steps(phase, self.rng.normal(size=(1, *shape)))
        before = self.rng.bit_generator.state
        done = self.select_and_learn_steps(phase, self.rng.normal(size=(length, *shape)))
        if done < length:  # leave the generator where `done` single steps would have
            self.rng.bit_generator.state = before
            self.rng.normal(size=(done, *shape))
        return done

    def vary(self, phase: Phase, t: int) -> list[Circuit]:
        """Spawn step ``t``'s Poisson number of offspring (appended to ``circuits``);
        returns them."""
        births = int(self.births[t])
        newborn: list[Circuit] = []
        if births == 0:
            return newborn
        var = self.spec.variation
        envs = self.environments
        cue = linalg.weighted_rows(phase.weights, envs.cues)
        ctx = Context(self.rng, self.spec, cue, envs.cue_centre(), self.monitor, self.update_rule)
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
            newborn.append(child)
        return newborn

    def cull(self) -> np.ndarray | None:
        """Remove circuits below the extinction floor; returns the mask of survivors if any
        died, else None."""
        floor = self.spec.selection.extinction_floor
        if self.shares.min() >= floor:  # the common case: nobody dies
            return None
        alive = selection.survivors(self.shares, floor)
        if alive.all():  # only the largest was below the floor: it survives
            return None
        for circuit, keep in zip(self.circuits, alive, strict=True):
            if not keep:
                circuit.remove()
        self.circuits = [c for c, keep in zip(self.circuits, alive, strict=True) if keep]
        self.shares = self.shares[alive] / self.shares[alive].sum()
        self.fitness = self.fitness[alive]
        return alive

    def run(self, progress=None) -> None:
        """Run every step of the schedule (or until an alarm halts it); ``progress`` is called
        with each finished phase.

        Stretches of steps in which nothing but numbers change run in one compiled call
        (``stretch``), then Mesa's clock is moved over them; the run is the same as calling
        ``step()`` until ``running`` is False.  With an alarm, or with events of your own
        scheduled on the model, every step is taken on its own."""
        while self.running:
            t = self.steps
            length = self.stretch(t)
            if length > 1:
                self.prepare(t)
                self._steps_ahead = self.advance(self.phases[self.phase_of_step[t]], length)
                self.run_for(self._steps_ahead)
            else:
                self.step()
            if progress is not None and self.step_index == self.current_phase.end - 1:
                progress(self.current_phase)

    def stretch(self, t: int) -> int:
        """How many steps from step ``t`` on can run in one compiled call: up to the next
        step with births, a record or a phase end, and not into a step with an
        intervention or a discard.  1 when an alarm is set or events of your own are
        scheduled, which need the model between steps."""
        if self.spec.monitor.alarm is not None or self._user_events:
            return 1
        return int(self.stretch_ends[t]) - t + 1

    def schedule_event(self, *args, **kwargs):
        """Mesa's ``schedule_event``; the model then takes every step on its own in ``run``."""
        self._user_events = True
        return super().schedule_event(*args, **kwargs)

    def schedule_recurring(self, *args, **kwargs):
        """Mesa's ``schedule_recurring``; as ``schedule_event``."""
        self._user_events = True
        return super().schedule_recurring(*args, **kwargs)


def stretch_ends(spec: Scenario, phases: list[Phase], births: np.ndarray,
                 n_steps: int) -> np.ndarray:
    """Per step ``t``: the last step of the stretch that starts at ``t`` (see
    ``CircuitsModel.stretch``).  A stretch ends at a step after which Python has work
    (births, a record, a phase end: the last step is one), or just before a step that
    starts with some (interventions, a discard)."""
    ends_work = births > 0
    ends_work[[p.end - 1 for p in phases]] = True  # the phases end with the schedule
    if spec.records.every != "phase":
        ends_work[spec.records.every - 1 :: spec.records.every] = True
    starts_work = np.zeros(n_steps + 1, dtype=bool)
    starts_work[[iv.step for iv in spec.interventions if iv.step < n_steps]] = True
    if isinstance(spec.monitor.discard, int) and spec.monitor.discard < n_steps:
        starts_work[spec.monitor.discard] = True
    stops = np.flatnonzero(ends_work | starts_work[1:])
    return stops[np.searchsorted(stops, np.arange(n_steps))]


def seed_of(rng: int | np.random.Generator | None | str, scenario_seed: int) -> int:
    """The integer seed of a run from Mesa's ``rng`` argument (see ``CircuitsModel``)."""
    if isinstance(rng, str):
        if rng != SCENARIO_SEED:
            raise ValueError(f"rng must be an integer, a numpy Generator, None or "
                             f"{SCENARIO_SEED!r} (got {rng!r})")
        return scenario_seed
    if rng is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> 1)
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(2**63))
    if isinstance(rng, bool) or not isinstance(rng, int | np.integer) or not 0 <= rng < 2**63:
        raise ValueError(f"rng must be a seed in 0..2**63-1, a numpy Generator or None "
                         f"(got {rng!r})")
    return int(rng)
