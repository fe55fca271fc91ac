"""The canonical scenario library, measured as rates over seeds.

A canonical scenario is a file in ``scenarios/`` with an ``expected`` regime (a canonical
structure string, see ``circuits_abm.analysis.classification.Node.canonical``).  Scenarios with
interventions may also state ``expected_before_interventions``, checked on the phases that
end before the first intervention.

A claim is never one run: every scenario runs on ``n`` seeds derived from a root seed (never
chosen by hand), and the claim is the probability that a run gives the expected regime,
reported as ``k/n`` with a Wilson 95% interval.  A claim *holds* when the interval's lower
bound is at least the scenario's ``expected_rate`` (0.7 unless the file states its own).
The README's table is written by ``circuits-abm catalogue --readme README.md``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from circuits_abm.analysis.classification import classify
from circuits_abm.analysis.rates import Rate, rate_of
from circuits_abm.defaults import CATALOGUE_ROOT_SEED, CATALOGUE_RUNS
from circuits_abm.engine.loading import load_scenario
from circuits_abm.engine.scenario import Scenario, ScenarioError
from circuits_abm.engine.validation import EXPECTATIONS
from circuits_abm.experiments.executors import map_in_processes
from circuits_abm.experiments.runs import run
from circuits_abm.experiments.sweep.design import derive_seed
from circuits_abm.regimes import canonical, parse

DEFAULT_RUNS = CATALOGUE_RUNS
DEFAULT_ROOT_SEED = CATALOGUE_ROOT_SEED


@dataclass(frozen=True)
class Outcome:
    """One canonical scenario run with one seed."""

    scenario: str
    seed: int
    expected: str
    observed: str
    confidence: float
    expected_before: str | None = None
    observed_before: str | None = None

    @property
    def matches(self) -> bool:
        """Whether the run gave the expected structure (and, with interventions, the expected one
        before them)."""
        before_ok = self.expected_before is None or self.expected_before == self.observed_before
        return self.expected == self.observed and before_ok


def catalogue_seeds(name: str, runs: int, root_seed: int = DEFAULT_ROOT_SEED) -> list[int]:
    """The seeds of one scenario: a hash of (root seed, scenario name, replicate)."""
    return [derive_seed(root_seed, {"scenario": name}, r) for r in range(runs)]


def canonical_scenarios(folder: str | Path) -> list[tuple[Path, Scenario]]:
    """Every scenario in ``folder`` that states an expected regime, by file name;
    ``ScenarioError`` naming the file and the field when an expectation is not a structure
    line of the scenario's environments (``expectation_problems``)."""
    found = [(path, load_scenario(path)) for path in sorted(Path(folder).glob("*.toml"))]
    for path, spec in found:
        problems = expectation_problems(spec)
        if problems:
            raise ScenarioError(str(path), problems)
    return [(path, spec) for path, spec in found if spec.expected]


def expectation_problems(spec: Scenario) -> list[str]:
    """Environments that ``expected`` or ``expected_before_interventions`` name but the
    scenario does not have (the lines themselves parse: loading checked them).  A line in
    another order than the classifier writes is fine: the catalogue compares canonical
    forms (``circuits_abm.regimes.canonical``)."""
    problems = []
    names = set(spec.environment_names)
    for field in EXPECTATIONS:
        line = getattr(spec, field)
        if line is None:
            continue
        unknown = sorted(parse(line).environment_names() - names)
        if unknown:
            problems.append(f"`{field}`: unknown environments {unknown}; allowed: "
                            + ", ".join(spec.environment_names))
    return problems


def run_canonical(spec: Scenario, seed: int, save_dir: Path | None = None) -> Outcome:
    """Run one canonical scenario and classify its end (and its pre-intervention stretch);
    with ``save_dir``, the run is also saved to ``save_dir/<name>-<seed>/``."""
    result = run(spec, seed=seed, progress=False)
    if save_dir is not None:
        result.save(Path(save_dir) / f"{spec.name}-{seed}")
    return outcome_of(spec, seed, result.phases)


def run_catalogue(
    specs: list[Scenario],
    runs: int = DEFAULT_RUNS,
    root_seed: int = DEFAULT_ROOT_SEED,
    workers: int = 1,
    save_dir: Path | None = None,
    progress: bool = True,
) -> list[Outcome]:
    """Every scenario on ``runs`` derived seeds, in ``workers`` processes."""
    tasks = [(spec, seed, save_dir) for spec in specs
             for seed in catalogue_seeds(spec.name, runs, root_seed)]
    return map_in_processes(run_canonical, tasks, workers, "catalogue", "run", progress)


def outcome_of(spec: Scenario, seed: int, phases: pd.DataFrame) -> Outcome:
    """Classify a canonical scenario's phases table against its expectations."""
    result = classify(phases)
    before = expected_before = None
    if spec.expected_before_interventions and spec.interventions:
        first = min(iv.step for iv in spec.interventions)
        before = classify(phases[phases.end <= first]).canonical
        expected_before = canonical(spec.expected_before_interventions)
    return Outcome(
        spec.name,
        seed,
        canonical(spec.expected),
        result.canonical,
        result.tree.confidence,
        expected_before,
        before,
    )


def claim_rate(outcomes: list[Outcome], name: str) -> Rate:
    """The rate at which ``name``'s runs gave its expected regime."""
    return rate_of([o.matches for o in outcomes if o.scenario == name])


def claim_holds(rate: Rate, spec: Scenario) -> bool:
    """The claim holds when the interval's lower bound reaches the required rate."""
    return rate.low >= spec.expected_rate


def markdown_table(outcomes: list[Outcome], specs: dict[str, Scenario]) -> str:
    """One row per scenario: claim, expected regime, the most frequent observations, and
    the rate at which runs matched with its Wilson interval, against the required rate."""
    lines = [
        "| scenario | claim | expected | most frequent observations | rate [95% CI] | holds |",
        "|---|---|---|---|---|---|",
    ]
    for name, spec in specs.items():
        rows = [o for o in outcomes if o.scenario == name]
        expected = f"`{spec.expected}`"
        if spec.expected_before_interventions:
            expected = f"before: `{spec.expected_before_interventions}`<br>end: {expected}"
        rate = claim_rate(outcomes, name)
        verdict = ("yes" if claim_holds(rate, spec) else "**no**") + f" (≥ {spec.expected_rate})"
        claim = spec.claim.replace("<", "&lt;").replace(">", "&gt;")
        lines.append(
            f"| `{name}` | {claim} | {expected} | {_observed(rows)} | {rate.text()} | {verdict} |"
        )
    return "\n".join(lines)


def _observed(rows: list[Outcome], top: int = 3) -> str:
    """The ``top`` most frequent observations with their counts (the rest summed)."""
    counts = Counter(
        f"`{o.observed}`" if o.observed_before is None
        else f"before `{o.observed_before}`, end `{o.observed}`"
        for o in rows
    )
    cells = [f"{n}× {text}" for text, n in counts.most_common(top)]
    rest = len(rows) - sum(n for _, n in counts.most_common(top))
    if rest:
        cells.append(f"{rest}× other")
    return "<br>".join(cells)
