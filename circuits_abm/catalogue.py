"""The canonical scenario library: run each scenario over seeds, compare with its expectation.

A canonical scenario is a file in ``scenarios/`` with an ``expected`` regime (a canonical
structure string, see :meth:`circuits_abm.classification.Node.canonical`).  Scenarios with
interventions may also state ``expected_before_interventions``, checked on the phases that
end before the first intervention.  The README's table of expected and observed regimes
is printed by ``circuits-abm catalogue --markdown``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from circuits_abm.api import run
from circuits_abm.classification import classify
from circuits_abm.scenario import Scenario, load_scenario
from circuits_abm.storage import atomic_write_bytes

DEFAULT_SEEDS = (1, 2, 3)


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
        before_ok = self.expected_before is None or self.expected_before == self.observed_before
        return self.expected == self.observed and before_ok


def canonical_scenarios(folder: str | Path) -> list[tuple[Path, Scenario]]:
    """Every scenario in ``folder`` that states an expected regime, by file name."""
    found = [(path, load_scenario(path)) for path in sorted(Path(folder).glob("*.toml"))]
    return [(path, spec) for path, spec in found if spec.expected]


def run_canonical(spec: Scenario, seed: int) -> Outcome:
    """Run one canonical scenario and classify its end (and its pre-intervention stretch)."""
    return outcome_of(spec, seed, run(spec, seed=seed).phases)


def outcome_of(spec: Scenario, seed: int, phases: pd.DataFrame) -> Outcome:
    """Classify a canonical scenario's phases table against its expectations."""
    result = classify(phases)
    before = None
    if spec.expected_before_interventions and spec.interventions:
        first = min(iv.step for iv in spec.interventions)
        before = classify(phases[phases.end <= first]).canonical
    return Outcome(
        spec.name,
        seed,
        spec.expected,
        result.canonical,
        result.tree.confidence,
        spec.expected_before_interventions,
        before,
    )


def markdown_table(outcomes: list[Outcome], specs: dict[str, Scenario]) -> str:
    """One row per scenario: claim, expected regime, what the seeds gave, how many matched.

    Identical observations are grouped: ``seeds 1,2,3: X (confidence 0.85-0.88)``.
    """
    lines = [
        "| scenario | claim | expected | observed | matched |",
        "|---|---|---|---|---|",
    ]
    for name, spec in specs.items():
        rows = [o for o in outcomes if o.scenario == name]
        expected = f"`{spec.expected}`"
        if spec.expected_before_interventions:
            expected = f"before: `{spec.expected_before_interventions}`<br>end: {expected}"
        matched = f"{sum(o.matches for o in rows)}/{len(rows)}"
        claim = spec.claim.replace("<", "&lt;").replace(">", "&gt;")
        lines.append(f"| `{name}` | {claim} | {expected} | {_grouped(rows)} | {matched} |")
    return "\n".join(lines)


START, END = "<!-- catalogue:start -->", "<!-- catalogue:end -->"


def splice_into(readme: Path, table: str) -> None:
    """Replace the text between the catalogue markers of ``readme`` with ``table``."""
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise ValueError(f"{readme} has no {START} ... {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    atomic_write_bytes(readme, f"{head}{START}\n{table}\n{END}{tail}".encode())


def _grouped(rows: list[Outcome]) -> str:
    groups: dict[tuple, list[Outcome]] = {}
    for o in rows:
        groups.setdefault((o.observed_before, o.observed), []).append(o)
    cells = []
    for (before, observed), members in groups.items():
        seeds = ",".join(str(o.seed) for o in members)
        low, high = min(o.confidence for o in members), max(o.confidence for o in members)
        spread = f"{low:.2f}" if low == high else f"{low:.2f}-{high:.2f}"
        text = f"`{observed}`" if before is None else f"before `{before}`, end `{observed}`"
        cells.append(f"seeds {seeds}: {text} (confidence {spread})")
    return "<br>".join(cells)
