"""Evasion over training time: a monitor that watches some of a motivation's pathways
(docs/motivations.md, "Many pathways").

The quarantine scenario with a third, weak pathway (gains ``GAINS``) that the monitor does
not watch (``monitor.watched = 2``), run under ``plain``, ``block`` and ``route`` with the
monitor at each angle of ``ANGLES``, on derived seeds.  Each run is read at ``CHECKPOINTS``:
the motivation in the held-out deployment environment carried by the mechanisms'
parameters (a quarantine module is not counted: it is what a discard at that step would
leave), averaged over the last ``WINDOW`` steps (one cycle through the four training
environments, so that every reading follows the same environments).  A second part runs
``block`` at angle 0 under several selection strengths.

``prediction`` derives, before any run, what the geometry of the model says: the leak of
each rule relative to plain learning at the end, and the time scales on which plain and
block approach it (see its docstring).  The runs measure both.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from circuits_abm.analysis.rates import half_width, wilson
from circuits_abm.engine.loading import load_scenario, override
from circuits_abm.engine.scenario import Scenario
from circuits_abm.experiments.executors import map_in_processes
from circuits_abm.experiments.runs import run as run_agents
from circuits_abm.experiments.sweep.design import derive_seed

SCENARIO = "quarantine"
GAINS = (1.0, 1.0, 0.3)
WATCHED = 2
ANGLES = (0.0, 20.0, 40.0)
RULES = ("plain", "block", "route")
STRENGTHS = (1.25, 5.0, 20.0)
STEPS = 3000
WINDOW = 12  # the scenario's cycle: four training environments, three steps each
CHECKPOINTS = (12, 24, 48, 96, 192, 384, 768, 1536, 3000)
# Written before the 20-seed run: a predicted ratio agrees when it is within this of the
# measured one (leak over plain learning's, at the end).
AGREEMENT = 0.05


def scenario(rule: str, angle: float, strength: float | None = None) -> Scenario:
    """The quarantine scenario with the weak unwatched pathway, under ``rule`` at ``angle``
    (and a selection ``strength`` when given)."""
    changes: dict[str, Any] = {"motivations.0.gains": list(GAINS), "monitor.watched": WATCHED,
                               "monitor.rule": rule, "monitor.angle": angle, "steps": STEPS}
    if strength is not None:
        changes["selection.strength"] = strength
    return override(load_scenario(SCENARIO), changes)


def readings(phases: pd.DataFrame, column: str) -> list[float]:
    """The held-out motivation at each checkpoint: its mean over the phase ends in the last
    ``WINDOW`` steps up to the checkpoint."""
    held = phases[phases.held_out].groupby("end")[column].mean()
    return [float(held[(held.index > t - WINDOW) & (held.index <= t)].mean())
            for t in CHECKPOINTS]


def leak_run(rule: str, angle: float, seed: int, strength: float | None = None
             ) -> list[dict[str, Any]]:
    """One run: a row per checkpoint with the held-out motivation left in the parameters."""
    spec = scenario(rule, angle, strength)
    result = run_agents(spec, seed=seed, progress=False)
    values = readings(result.phases, f"motivation_{spec.monitored}")
    return [{"rule": rule, "angle": angle, "strength": spec.selection.strength, "seed": seed,
             "step": step, "leak": value} for step, value in zip(CHECKPOINTS, values, strict=True)]


def tasks(seeds: int, root_seed: int = 2026) -> list[tuple]:
    """Plain once (it ignores the monitor, so one run serves every angle), block and route
    at every angle, and block at angle 0 under each selection strength; one derived seed
    list for all, so that runs compare paired."""
    seed_list = [derive_seed(root_seed, {"experiment": "evasion"}, r) for r in range(seeds)]
    jobs: list[tuple] = [("plain", 0.0, s) for s in seed_list]
    jobs += [(rule, angle, s) for rule in RULES[1:] for angle in ANGLES for s in seed_list]
    jobs += [("block", 0.0, s, strength) for strength in STRENGTHS for s in seed_list]
    return jobs


def experiment(seeds: int = 20, workers: int = 1, root_seed: int = 2026,
               progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both parts over ``seeds`` derived seeds: the leak table (a row per rule, angle,
    seed and checkpoint; plain's rows repeated at every angle) and the selection table
    (block at angle 0, a row per strength, seed and checkpoint)."""
    jobs = tasks(seeds, root_seed)
    done = map_in_processes(leak_run, jobs, workers, "evasion", "run", progress)
    rows = [row for (job, result) in zip(jobs, done, strict=True) if len(job) == 3
            for row in result]
    leaks = pd.DataFrame(rows)
    plain = leaks[leaks.rule == "plain"]
    leaks = pd.concat([plain.assign(angle=angle) for angle in ANGLES]
                      + [leaks[leaks.rule != "plain"]], ignore_index=True)
    selection = pd.DataFrame([row for (job, result) in zip(jobs, done, strict=True)
                              if len(job) == 4 for row in result])
    return leaks, selection


def prediction(spec: Scenario) -> dict[str, float]:
    """What the geometry predicts, derived from the model's equations for one generalist
    mechanism (the scenario's regime).

    With gains ``g``, upkeep ``c`` and the monitored direction ``u``, learning under
    ``block`` stays in the plane orthogonal to ``u``, where the behaviour's direction is
    ``g' = g - (g.u) u``.  The best behaviour there is ``m |g'|^2 / (c' + |g'|^2)`` against
    plain learning's ``m |g|^2 / (c' + |g|^2)``.  Under ``route`` the parameters and the
    module together reach plain learning's optimum, and the discard removes its part along
    ``u``: ``m |g'|^2 / (c' + |g|^2)`` is left.  ``c'`` adds the generalist's consolidation
    to the upkeep: ``kappa / (eta f)``, with ``f`` the share of training environments that
    name the motivation (where the pull acts).  The behaviour approaches its end value with
    time constant ``1 / (eta f (c' + |g|^2))`` under plain learning and ``1 / (eta f (c' +
    |g'|^2))`` under block: a weak unwatched pathway is recruited slowly.

    Returns ``block`` and ``route`` (leak over plain learning's), ``tau_plain`` and
    ``tau_block`` (steps)."""
    from circuits_abm.engine.environments import build_environments  # noqa: PLC0415
    from circuits_abm.engine.monitoring import monitor_direction  # noqa: PLC0415

    envs = build_environments(spec)
    motivation = next(m for m in spec.motivations if m.name == spec.monitored)
    pathways = envs.pathways(spec.monitored)
    g = np.array(motivation.gains)
    u = monitor_direction(spec, envs)[pathways]
    g_free = g - (g @ u) * u
    training = [e for e in spec.environments if not e.held_out]
    share = sum(spec.monitored in e.motivations for e in training) / len(training)
    generalist = spec.circuits.generalist
    rate, consolidation = generalist.learning_rate, generalist.consolidation
    upkeep = motivation.upkeep + consolidation / (rate * share)
    whole, free = float(g @ g), float(g_free @ g_free)
    plain = whole / (upkeep + whole)
    return {"block": free / (upkeep + free) / plain,
            "route": free / (upkeep + whole) / plain,
            "tau_plain": 1.0 / (rate * share * (upkeep + whole)),
            "tau_block": 1.0 / (rate * share * (upkeep + free))}


def _final(leaks: pd.DataFrame) -> pd.DataFrame:
    """The last reading of every run, a row per angle and seed and a column per rule."""
    last = leaks[leaks.step == CHECKPOINTS[-1]]
    return last.pivot_table(index=["angle", "seed"], columns="rule", values="leak")


def claims(leaks: pd.DataFrame) -> list[dict[str, Any]]:
    """Per angle, counted over paired seeds: block's leak grows after plain learning has
    settled (its end reading above its reading at ``early``, the first checkpoint past
    three of plain learning's time constants), and route leaks less than block at the end.
    Each with its Wilson interval."""
    out = []
    early = next(t for t in CHECKPOINTS if t >= 3 * prediction(scenario("block", 0.0))["tau_plain"])
    for angle in ANGLES:
        block = leaks[(leaks.rule == "block") & (leaks.angle == angle)].pivot_table(
            index="seed", columns="step", values="leak")
        grows = int((block[CHECKPOINTS[-1]] > block[early]).sum())
        final = _final(leaks).loc[angle]
        below = int((final.route < final.block).sum())
        n = len(block)
        for claim, k in ((f"block's leak grows from step {early} to the end", grows),
                         ("route leaks less than block at the end", below)):
            interval = wilson(k, n)
            out.append({"angle": angle, "claim": claim, "runs": f"{k}/{n}",
                        "low": interval.low, "high": interval.high})
    return out


def ratios(leaks: pd.DataFrame) -> pd.DataFrame:
    """Per angle and rule: the measured leak over plain learning's at the end (the ratio
    of the means over seeds, with the normal 95% half-width of each seed's leak over
    plain's mean), the predicted ratio, and whether they agree within ``AGREEMENT``."""
    final = _final(leaks)
    rows = []
    for angle in ANGLES:
        runs = final.loc[angle]
        predicted = prediction(scenario("block", angle))
        for rule in ("block", "route"):
            ratio = runs[rule].mean() / runs.plain.mean()
            half = half_width(runs[rule] / runs.plain.mean())
            rows.append({"angle": angle, "rule": rule, "plain": runs.plain.mean(),
                         "leak": runs[rule].mean(), "ratio": ratio, "half_width": half,
                         "predicted": predicted[rule],
                         "agrees": abs(ratio - predicted[rule]) <= AGREEMENT})
    return pd.DataFrame(rows)


def markdown(leaks: pd.DataFrame, selection: pd.DataFrame) -> str:
    """The tables for docs/motivations.md: predicted against measured ratios, the counted
    claims, and block's end leak under each selection strength."""
    seeds = leaks.seed.nunique()
    theory = prediction(scenario("block", 0.0))
    lines = [f"Gains {list(GAINS)}, the monitor watching the first {WATCHED} pathways; "
             f"{seeds} seeds per point, {STEPS} steps. Leak: the held-out motivation left "
             "in the parameters at the end, over plain learning's. Predicted time constants "
             f"at 0°: plain {theory['tau_plain']:.0f} steps, block {theory['tau_block']:.0f} "
             "steps.", "",
             "| angle | rule | leak | leak / plain | predicted | agrees (±0.05) |",
             "|---|---|---|---|---|---|"]
    for r in ratios(leaks).itertuples():
        lines.append(f"| {r.angle:g}° | {r.rule} | {r.leak:.3f} | {r.ratio:.2f} ± "
                     f"{r.half_width:.2f} | {r.predicted:.2f} | {'yes' if r.agrees else 'no'} |")
    lines += ["", "| angle | claim | runs | 95% interval |", "|---|---|---|---|"]
    for c in claims(leaks):
        lines.append(f"| {c['angle']:g}° | {c['claim']} | {c['runs']} | "
                     f"[{c['low']:.2f}, {c['high']:.2f}] |")
    last = selection[selection.step == CHECKPOINTS[-1]].groupby("strength").leak
    lines += ["", "Block at 0°, the end leak under each selection strength (mean ± 95% "
              "interval over seeds):", "", "| selection strength | leak |", "|---|---|"]
    for strength, values in last:
        lines.append(f"| {strength:g} | {values.mean():.3f} ± {half_width(values):.3f} |")
    return "\n".join(lines)
