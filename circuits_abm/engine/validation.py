"""Checks that span a scenario's fields: names that must exist, graphs a walk can use,
motivations a monitor can watch.

The scenario schema (``circuits_abm.engine.scenario``) checks each field alone and calls
``cross_reference_problems`` on every scenario it validates, however it is built.  The
checks need no geometry, so they import nothing from the engine but the rule registry;
the geometry's own checks (overlaps no vectors can have) run when a scenario is loaded
(``circuits_abm.engine.loading``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import networkx as nx

from circuits_abm.defaults import MAX_RECORDS
from circuits_abm.engine.rules import FIXED_TARGET_RULES
from circuits_abm.regimes import REGIMES, parse

if TYPE_CHECKING:
    from circuits_abm.engine.scenario import Scenario


def _cycle_start_problems(s: Scenario, training: list[str]) -> list[str]:
    """A cycle or sequence starts at one of its own phases (the sequence's, or the training
    environments'), so a ``start`` outside it would be ignored: say so instead."""
    sched = s.schedule
    items = sched.sequence or training
    if (sched.order not in ("cycle", "sequence") or sched.start in items
            or sched.start not in sched.mixtures and sched.start not in training):
        return []  # in the cycle, or unknown or held out (reported as such)
    return [f"`schedule.start`: {sched.start!r} is not one of the {sched.order}'s phases; "
            f"allowed: {', '.join(dict.fromkeys(items))}"]


def cross_reference_problems(s: Scenario) -> list[str]:
    """Checks that span fields: names that must exist, and graphs that a walk can use."""
    problems: list[str] = []
    names = s.environment_names
    known = set(names)
    training = s.training_names
    mixtures = set(s.schedule.mixtures)
    allowed = ", ".join(names)

    def unknown(field: str, name: str, extra: set[str] = frozenset()) -> None:
        if name not in known and name not in extra:
            options = allowed + (f"; mixtures: {', '.join(sorted(extra))}" if extra else "")
            problems.append(f"`{field}`: unknown environment {name!r}; allowed: {options}")

    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"`environments`: duplicate names {duplicates}")
    if not training:
        problems.append("`environments`: every environment is held_out; at least one must train")
    for i, edge in enumerate(s.edges):
        unknown(f"edges.{i}.source", edge.source)
        unknown(f"edges.{i}.target", edge.target)
        if edge.source == edge.target:
            problems.append(f"`edges.{i}`: an edge must join two different environments")
    problems.extend(_conflicting_edges(s))
    for name, mixture in s.schedule.mixtures.items():
        if name in known:
            problems.append(
                f"`schedule.mixtures.{name}`: a mixture may not reuse an environment name"
            )
        for env in mixture:
            unknown(f"schedule.mixtures.{name}", env)
            if env in known and env not in training:
                problems.append(
                    f"`schedule.mixtures.{name}`: {env!r} is held out and never trained"
                )
    for i, env in enumerate(s.schedule.sequence or []):
        unknown(f"schedule.sequence.{i}", env, mixtures)
        if env in known and env not in training:
            problems.append(f"`schedule.sequence.{i}`: {env!r} is held out and never trained")
    if s.schedule.start is not None:
        unknown("schedule.start", s.schedule.start, mixtures)
        if s.schedule.start in known and s.schedule.start not in training:
            problems.append(f"`schedule.start`: {s.schedule.start!r} is held out")
        problems.extend(_cycle_start_problems(s, training))
    if s.schedule.sequence is not None and not s.schedule.sequence:
        problems.append("`schedule.sequence`: empty; name at least one environment or mixture, "
                        "or leave it out to train every environment in file order")
    elif s.schedule.order == "sequence" and not s.schedule.sequence:
        problems.append("`schedule.sequence`: order = 'sequence' needs a non-empty sequence")
    if s.schedule.order == "walk":
        problems.extend(_walk_problems(s))
        if s.schedule.start in mixtures:
            problems.append("`schedule.start`: a walk starts at an environment, not a mixture")
    for i, iv in enumerate(s.interventions):
        for node in iv.nodes:
            unknown(f"interventions.{i}.nodes", node)
        for a, b in iv.edges:
            unknown(f"interventions.{i}.edges", a)
            unknown(f"interventions.{i}.edges", b)
        if iv.step >= s.steps:
            problems.append(
                f"`interventions.{i}.step`: {iv.step} is not before the end ({s.steps})"
            )
        for env, motivations in iv.pays.items():
            unknown(f"interventions.{i}.pays", env)
            for name in motivations:
                if name not in s.motivation_names:
                    problems.append(
                        f"`interventions.{i}.pays.{env}.{name}`: unknown motivation; allowed: "
                        + (", ".join(s.motivation_names) or "none declared"))
    problems.extend(_conflicting_interventions(s))
    clusters = {e.cluster for e in s.environments if e.cluster}
    for name in s.geometry.clusters:
        if name not in clusters:
            problems.append(
                f"`geometry.clusters.{name}`: no environment is in cluster {name!r}; "
                f"clusters: {', '.join(sorted(clusters)) or 'none'}"
            )
    for rule in FIXED_TARGET_RULES:
        weights = getattr(s.circuits, rule).weights or {}
        for env in weights:
            unknown(f"circuits.{rule}.weights", env)
        if weights and not any(weights.values()):
            problems.append(f"`circuits.{rule}.weights`: all zero; give some environment weight")
    problems.extend(_motivation_problems(s))
    problems.extend(record_problems(s, s.steps))
    problems.extend(_expected_problems(s))
    return problems


EXPECTATIONS = ("expected", "expected_before_interventions")


def _expected_problems(s: Scenario) -> list[str]:
    """``expected`` and ``expected_before_interventions`` must be lines the classifier can
    write.  The environments they name are checked where a claim is run (the catalogue's
    ``expectation_problems``): an override or a sweep may rename or replace them."""
    problems = []
    for field in EXPECTATIONS:
        line = getattr(s, field)
        if line is None:
            continue
        try:
            parse(line)
        except ValueError as exc:
            problems.append(f"`{field}`: {exc}; a regime is one of {', '.join(REGIMES)}")
    return problems


def record_count(s: Scenario, steps: int) -> int:
    """How many records a run of ``steps`` steps keeps in memory: a snapshot of the
    lineages per record (at every phase end, or every ``records.every`` steps) and one row
    per phase and environment (expected numbers when phase lengths are geometric)."""
    phases = math.ceil(steps / s.schedule.phase_length)
    every = s.records.every
    snapshots = phases if every == "phase" else steps // every
    return snapshots + phases * len(s.environments)


def record_problems(s: Scenario, steps: int) -> list[str]:
    """A run whose records would not fit in memory (``MAX_RECORDS``), with what to change."""
    count = record_count(s, steps)
    if count <= MAX_RECORDS:
        return []
    return [f"`records`: {steps} steps in phases of {s.schedule.phase_length} with "
            f"{len(s.environments)} environments and records.every = {s.records.every!r} "
            f"keep about {count:,} records in memory; at most {MAX_RECORDS:,}: run fewer "
            "steps, longer phases or a larger records.every"]


def _conflicting_edges(s: Scenario) -> list[str]:
    """Two edges on the same pair (in either direction) that set its sharing or its
    distinguishability to different values: a pair has one geometry."""
    problems: list[str] = []
    seen: dict[frozenset[str], int] = {}
    for i, edge in enumerate(s.edges):
        pair = frozenset((edge.source, edge.target))
        if pair in seen:
            first = s.edges[seen[pair]]
            for field in ("sharing", "distinguishability"):
                a, b = getattr(first, field), getattr(edge, field)
                if a is not None and b is not None and a != b:
                    problems.append(
                        f"`edges.{i}.{field}`: {b} for the pair {edge.source}-{edge.target}, "
                        f"which `edges.{seen[pair]}` already sets to {a}; give it once")
        else:
            seen[pair] = i
    return problems


def _conflicting_interventions(s: Scenario) -> list[str]:
    """Interventions at the same step that disagree: different rules, or different values
    of the same pair's sharing or distinguishability (applied in file order, the last
    would silently win)."""
    problems: list[str] = []
    by_step: dict[int, list[int]] = {}
    for i, iv in enumerate(s.interventions):
        by_step.setdefault(iv.step, []).append(i)
    for step, indices in by_step.items():
        rules = {s.interventions[i].rule for i in indices} - {None}
        if len(rules) > 1:
            problems.append(f"`interventions`: step {step} switches the rule to "
                            f"{' and '.join(sorted(rules))}; give one rule per step")
        for field in ("sharing", "distinguishability"):
            values: dict[frozenset[str], float] = {}
            for i in indices:
                iv = s.interventions[i]
                value = getattr(iv, field)
                if value is None:
                    continue
                for pair in _pairs_touched(s, iv):
                    if pair in values and values[pair] != value:
                        a, b = sorted(pair)
                        problems.append(
                            f"`interventions.{i}.{field}`: step {step} sets the pair {a}-{b} "
                            f"to {value} and to {values[pair]}; give one value per step")
                        break
                    values[pair] = value
    return problems


def _pairs_touched(s: Scenario, iv) -> set[frozenset[str]]:
    """The environment pairs an intervention changes: its ``edges``, and every pair that
    involves one of its ``nodes``."""
    pairs = {frozenset(edge) for edge in iv.edges}
    for node in iv.nodes:
        pairs |= {frozenset((node, other)) for other in s.environment_names if other != node}
    return pairs


def _motivation_problems(s: Scenario) -> list[str]:
    """Motivation names that must be declared, and a monitor that has something to watch."""
    problems: list[str] = []
    declared = s.motivation_names
    allowed = ", ".join(declared) or "none declared (add [[motivations]] tables)"
    duplicates = sorted({n for n in declared if declared.count(n) > 1})
    if duplicates:
        problems.append(f"`motivations`: duplicate names {duplicates}")
    for i, env in enumerate(s.environments):
        for name in env.motivations:
            if name not in declared:
                problems.append(
                    f"`environments.{i}.motivations.{name}`: unknown motivation; allowed: {allowed}"
                )
    direction = s.monitor.direction
    if direction is not None and direction not in declared:
        problems.append(
            f"`monitor.direction`: unknown motivation {direction!r}; allowed: {allowed}"
        )
    rules = [s.monitor.rule, *(iv.rule for iv in s.interventions if iv.rule)]
    if any(rule != "plain" for rule in rules) and not declared:
        problems.append("`monitor.rule`: block and route need a motivation to monitor; "
                        "declare one with [[motivations]]")
    problems.extend(_monitor_pathway_problems(s))
    if s.monitor.restart_lag is not None and s.monitor.alarm is None:
        problems.append("`monitor.restart_lag`: the recovery loop restarts at an alarm; "
                        "set `monitor.alarm` too")
    discard = s.monitor.discard
    if isinstance(discard, int) and discard >= s.steps:
        problems.append(f"`monitor.discard`: step {discard} is not before the end ({s.steps})")
    return problems


def _monitor_pathway_problems(s: Scenario) -> list[str]:
    """The monitor cannot watch more pathways than the motivation has, and an inert tilt
    needs two watched pathways to turn within."""
    watched = s.monitor.watched
    gains = {m.name: m.gains for m in s.motivations}.get(s.monitored)
    if watched is None or gains is None:
        return []
    if watched > len(gains):
        return [f"`monitor.watched`: {watched}, but `{s.monitored}` has {len(gains)} pathways "
                f"(one per entry of its `gains`); allowed: 1 to {len(gains)}"]
    if watched < 2 and s.monitor.tilt == "inert" and s.monitor.angle > 0:
        return ["`monitor.watched`: an inert tilt (`monitor.angle` > 0) turns within the "
                "watched pathways and needs at least 2; watch 2 or more, or set angle = 0"]
    return []


def _walk_problems(s: Scenario) -> list[str]:
    """A graph walk needs every training environment reachable through training edges."""
    training = set(s.training_names)
    graph = nx.Graph()
    graph.add_nodes_from(training)
    graph.add_edges_from(
        (e.source, e.target) for e in s.edges if e.source in training and e.target in training
    )
    if graph.number_of_edges() == 0:
        return ["`edges`: order = 'walk' needs edges between training environments; there are none"]
    if not nx.is_connected(graph):
        parts = [sorted(c) for c in nx.connected_components(graph)]
        return [f"`edges`: order = 'walk' needs a connected training graph; components: {parts}"]
    return []
