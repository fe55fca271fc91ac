"""Are the canonical regime rates what they were before the step's floating-point order changed?

Where an optimisation cannot keep results seed-for-seed identical (``identity.py``), issue 18
asks for them to be *statistically* identical: the same regime rates over the canonical
library.  ``record()`` runs the catalogue (every scenario with an ``expected`` regime, on
the catalogue's 40 derived seeds per scenario) and stores the regime each seed produced in
``regime_rates.json``; ``compare()`` runs it again with the current code and reports, per
scenario:

* the rate of the expected regime before and now, each with its Wilson interval, and a
  two-sided Fisher exact test of "same rate" (flagged below 0.05 / number of scenarios);
* the paired agreement: on how many of the same seeds the two codes gave the same regime.
  Round-off differences make trajectories drift apart, so this need not be 100%, but a
  change in the mechanism would show as disagreement well beyond the runs near a boundary.

``python benchmarks/regime_rates.py --write`` records the current code's regimes; without
it, prints the comparison.  The record was last written when the arithmetic became the same
on every processor (docs/reproducibility.md), after this comparison against the one before
(recorded at commit 7cf361f) found all 15 scenarios statistically the same and the same
regime on 597 of 600 paired seeds, although every trajectory had changed.  Since results
no longer depend on the processor, the per-seed regimes in the record are exact on every
x86-64 machine with the lock's versions.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scipy.stats import fisher_exact

from circuits_abm.analysis.rates import wilson
from circuits_abm.experiments.catalogue import canonical_scenarios, run_catalogue

ROOT = Path(__file__).resolve().parent.parent
RECORD = Path(__file__).with_name("regime_rates.json")
FAMILY_ALPHA = 0.05


def observed_regimes(workers: int = 2) -> dict[str, dict]:
    """``{scenario: {"expected": ..., "seeds": {seed: observed}}}`` over the catalogue."""
    specs = [spec for _, spec in canonical_scenarios(ROOT / "scenarios")]
    outcomes = run_catalogue(specs, workers=workers, progress=False)
    table: dict[str, dict] = {}
    for o in outcomes:
        entry = table.setdefault(o.scenario, {"expected": o.expected, "seeds": {}})
        entry["seeds"][str(o.seed)] = [o.observed, o.matches]
    return table


def compare(workers: int = 2) -> list[dict]:
    """One row per scenario: rates before and now, Fisher p, paired agreement."""
    before = json.loads(RECORD.read_text())
    now = observed_regimes(workers)
    rows = []
    for name, entry in before.items():
        old, new = entry["seeds"], now[name]["seeds"]
        k_old = sum(match for _, match in old.values())
        k_new = sum(match for _, match in new.values())
        n = len(old)
        _, p = fisher_exact([[k_old, n - k_old], [k_new, n - k_new]])
        same = sum(old[seed][0] == new[seed][0] for seed in old)
        rows.append({"scenario": name, "before": wilson(k_old, n), "now": wilson(k_new, n),
                     "p": p, "paired": same, "n": n})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="record the current regimes")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.write:
        RECORD.write_text(json.dumps(observed_regimes(args.workers), indent=1) + "\n")
        print(f"wrote {RECORD}")
        return
    rows = compare(args.workers)
    threshold = FAMILY_ALPHA / len(rows)
    print(f"canonical regime rates, before ({RECORD.name}) and now, "
          f"{rows[0]['n']} derived seeds per scenario:")
    for row in rows:
        flag = "  DIFFERENT" if row["p"] < threshold else ""
        print(f"  {row['scenario']:<34} before {row['before'].text():<28} now "
              f"{row['now'].text():<28} Fisher p = {row['p']:.2f}, same regime on "
              f"{row['paired']}/{row['n']} seeds{flag}")
    paired = sum(r["paired"] for r in rows)
    total = sum(r["n"] for r in rows)
    differing = sum(r["p"] < threshold for r in rows)
    print(f"regime rates: {len(rows) - differing} of {len(rows)} scenarios statistically the "
          f"same (Fisher, family-wise alpha {FAMILY_ALPHA}); the same regime on "
          f"{wilson(paired, total).text()} of the paired seeds")


if __name__ == "__main__":
    main()
