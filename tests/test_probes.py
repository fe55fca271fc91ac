"""Hostile and careless input, probe by probe, as a user types it: each probe writes its
files, runs one command in its own process under a 2 GiB address-space limit, and must end
cleanly.  Clean means: the expected exit code (2 for bad input), one ``error:`` line that
names what is wrong (or, for an option out of its bounds, the command line's usage
message), no traceback, and nothing written anywhere but the probe's own output
folder (which a refusal leaves empty or absent).

The probes are of the kinds that once ended badly (tracebacks, blow-ups, silent
acceptance, poor messages): scenario files, sweep files, reward-seeking experiments, run
and sweep folders edited by hand, and output folders that are not what they seem.  Signals
and full disks need a process to stop mid-way; ``test_interruptions.py`` has those.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT

from circuits_abm.experiments.storage import read_parquet, write_parquet

MEMORY_LIMIT = 2 * 1024**3  # bytes of address space for each probe's process
STANDARD = (ROOT / "scenarios" / "standard.toml").read_text()


@dataclass(frozen=True)
class Probe:
    """One command on prepared files: ``files`` are written first, the saved run or sweep
    named by ``copies`` is copied to ``out``, ``prepare`` (given the probe's folder) edits
    what it needs, then ``args`` run in that folder."""

    name: str
    args: tuple[str, ...]
    said: str  # a fragment the error line must contain
    files: dict[str, str | bytes] = field(default_factory=dict)
    prepare: Callable[[Path], None] | None = None
    copies: str | None = None  # "run" or "sweep"
    code: int = 2


def scenario(replace: dict[str, str] | None = None, extra: str = "") -> str:
    """The standard scenario file with some lines replaced and ``extra`` appended."""
    text = STANDARD
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    return text + extra


def run_probe() -> tuple[str, ...]:
    """Run the probe's scenario file ``bad.toml`` into ``out``."""
    return ("run", "bad.toml", "--steps", "50", "--out", "out")


SWEEP_HEAD = 'name = "big"\nbase = "standard"\n'
AXIS = '[axes."geometry.sharing"]\n'


def spoil(name: str, change: Callable) -> Callable[[Path], None]:
    """Copy the saved run (or sweep) into ``out`` and rewrite its table ``name``."""
    def prepare(folder: Path) -> None:
        table = read_parquet(folder / "out" / name)
        write_parquet(folder / "out" / name, change(table).reset_index(drop=True))
    return prepare


def summary_with(key: str, literal: str) -> Callable[[Path], None]:
    """Set the saved run's summary field ``key`` to the JSON text ``literal``."""
    def prepare(folder: Path) -> None:
        path = folder / "out" / "summary.json"
        summary = json.loads(path.read_text())
        summary[key] = "PLACEHOLDER"
        path.write_text(json.dumps(summary).replace('"PLACEHOLDER"', literal))
    return prepare


def link_journal(folder: Path) -> None:
    """A runs.jsonl inside --out that is a link to a file outside it."""
    (folder / "outside.txt").write_text("mine\n")
    (folder / "out").mkdir()
    (folder / "out" / "runs.jsonl").symlink_to(folder / "outside.txt")


SCENARIO_PROBES = [
    Probe("unknown-field", run_probe(), "`colour`", {"bad.toml": "colour = 1\n" + STANDARD}),
    Probe("out-of-range", run_probe(), "`geometry.sharing`",
          {"bad.toml": scenario(replace={"sharing = 0.1": "sharing = 1.5"})}),
    Probe("bool-for-number", run_probe(), "`schedule.phase_length`",
          {"bad.toml": scenario(replace={"phase_length = 10": "phase_length = true"})}),
    Probe("numeric-string", run_probe(), "`geometry.sharing`",
          {"bad.toml": scenario(replace={"sharing = 0.1": 'sharing = "0.1"'})}),
    Probe("infinite", run_probe(), "`geometry.distinguishability`",
          {"bad.toml": scenario(replace={"distinguishability = 0.9":
                                         "distinguishability = inf"})}),
    Probe("unknown-environment", run_probe(), "allowed: sft_chat",
          {"bad.toml": scenario(replace={'order = "cycle"': 'order = "sequence"\n'
                                         'sequence = ["sft_chat", "nowhere"]'})}),
    Probe("empty-sequence", run_probe(), "`schedule.sequence`",
          {"bad.toml": scenario(replace={'order = "cycle"':
                                         'order = "sequence"\nsequence = []'})}),
    Probe("expected-unparsable", run_probe(), "`expected`",
          {"bad.toml": scenario(replace={'expected = "conditional_policy[':
                                         'expected = "conditional_policy'})}),
    Probe("deep-structure", run_probe(), "nest more than 32 deep",
          {"bad.toml": scenario(extra="\n[population]\ninitial = [\""
                                + "R[" * 3000 + "n" + ",n]" * 3000 + "\"]\n")}),
    Probe("deep-toml", run_probe(), "nest too deeply",
          {"bad.toml": "a = " + "[" * 100_000 + "]" * 100_000 + "\n"}),
    Probe("not-utf8", run_probe(), "not UTF-8", {"bad.toml": b'name = "\xff\xfe"\n'}),
    Probe("steps-huge", ("run", "standard", "--steps", str(10**12), "--out", "out"),
          "--steps"),
    Probe("records-every-step", ("run", "standard", "--steps", "800000", "--set",
                                 "records.every=1", "--out", "out"), "`records`"),
    Probe("environments-201", run_probe(), "environments",
          {"bad.toml": "name = \"many\"\n" + "".join(
              f'[[environments]]\nname = "e{i}"\n' for i in range(201))}),
]

SWEEP_PROBES = [
    Probe(f"sweep-{name}", ("sweep", "big.toml", "--out", "out"), said, {"big.toml": text})
    for name, text, said in [
        ("axis-count", SWEEP_HEAD + AXIS + "linspace = [0.0, 0.9, 10000000]\n", "linspace.2"),
        ("seeds", SWEEP_HEAD + "seeds = 1000000000\n" + AXIS + "values = [0.1]\n", "`seeds`"),
        ("steps", SWEEP_HEAD + "steps = 1000000000\n" + AXIS + "values = [0.1]\n", "`steps`"),
        ("runs", SWEEP_HEAD + "seeds = 1000\n" + AXIS + "linspace = [0.0, 0.9, 1000]\n",
         "1,000,000 runs; at most 100,000"),
        ("records", SWEEP_HEAD + 'steps = 800000\n[overrides]\n"records.every" = 1\n' + AXIS
         + "values = [0.1]\n", "at most 500,000"),
        ("unknown-path", SWEEP_HEAD + '[axes."geometry.sharpness"]\nvalues = [0.1]\n',
         "geometry.sharpness"),
        ("no-base", 'name = "x"\nbase = "nowhere"\n' + AXIS + "values = [0.1]\n", "nowhere"),
        ("both-axis-and-override", SWEEP_HEAD + '[overrides]\n"geometry.sharing" = 0.2\n'
         + AXIS + "values = [0.1]\n", "both swept"),
    ]
]

REWARD_SEEKING_PROBES = [
    Probe(f"reward-seeking-{name}", ("reward-seeking", "run", "big.toml", "--out", "out"),
          said, {"big.toml": text})
    for name, text, said in [
        ("single-grid", 'kind = "single"\n[alpha_s]\nlow = 0.01\nhigh = 100\ncount = 10000\n'
         '[alpha_l]\nlow = 0.01\nhigh = 100\ncount = 10000\n', "300,000,000 cells; at most"),
        ("homogeneous-grid", 'kind = "homogeneous"\n[priors]\nlow = 0.0001\nhigh = 0.1\n'
         'count = 10000\n[n]\nlow = 1\nhigh = 10000\ncount = 10000\n', "cells; at most"),
        ("environments", 'kind = "heterogeneous"\n[n]\nlow = 1\nhigh = 1000000\ncount = 16\n',
         "1,000,000 environments; at most"),
        ("features", 'kind = "heterogeneous"\nn_features = 8192\n',
         "coupling entries per kernel; at most"),
        ("seed", 'kind = "heterogeneous"\nseed = -1\n', "`seed`"),
        ("horizon", 'kind = "single"\n[integration]\nhorizon = inf\n', "a finite number"),
        ("kind", 'kind = "everything"\n', "`kind`"),
    ]
]

RUN_FOLDER_PROBES = [
    Probe(f"{command}-{name}", (*command.split(), "out"), said, prepare=prepare,
          copies="run")
    for command in ("classify", "figures run")
    for name, prepare, said in [
        ("renamed-column", spoil("timeseries.parquet", lambda t: t.rename(
            columns={"share": "weight"})), "missing column share"),
        ("text-shares", spoil("timeseries.parquet", lambda t: t.assign(
            share=t["share"].astype(str))), "must hold numbers"),
        ("tripled-rows", spoil("phases.parquet", lambda t: t.loc[t.index.repeat(3)]),
         "repeated rows"),
        ("nan-rewards", spoil("phases.parquet", lambda t: t.assign(
            population_reward=np.nan)), "infinite or NaN"),
        ("infinite-seed", summary_with("seed", "Infinity"), "`seed`"),
    ]
]

SWEEP_FOLDER_PROBES = [
    Probe(f"phase-diagram-{name}", ("figures", "phase-diagram", "out", "--out",
                                    "out/map.png"), said, prepare=prepare, copies="sweep")
    for name, prepare, said in [
        ("status", spoil("results.parquet", lambda t: t.assign(status="maybe")),
         "status 'maybe'"),
        ("share-above-one", spoil("aggregate.parquet", lambda t: t.assign(
            share_strategy_churn=1.5)), "outside [0, 1]"),
    ]
]

OUTPUT_PROBES = [
    Probe("out-is-a-file", ("run", "standard", "--steps", "50", "--out", "taken"),
          "taken", {"taken": "a file\n"}),
    Probe("linked-journal", ("sweep", "small.toml", "--out", "out"), "runs.jsonl",
          {"small.toml": SWEEP_HEAD + "seeds = 1\nsteps = 50\n" + AXIS + "values = [0.1]\n"},
          prepare=link_journal),
]

PROBES = [*SCENARIO_PROBES, *SWEEP_PROBES, *REWARD_SEEKING_PROBES, *RUN_FOLDER_PROBES,
          *SWEEP_FOLDER_PROBES, *OUTPUT_PROBES]


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    """A finished run and a finished sweep, copied into the probes that edit one."""
    import circuits_abm as ca  # noqa: PLC0415

    root = tmp_path_factory.mktemp("saved")
    ca.run("standard", seed=0, steps=200, progress=False).save(root / "run")
    design = {"name": "tiny", "base": "standard", "seeds": 2, "steps": 200,
              "axes": {"geometry.sharing": {"values": [0.1, 0.9]},
                       "geometry.distinguishability": {"values": [0.2, 0.8]}}}
    ca.sweep(design, root / "sweep", executor="serial", progress=False)
    return {"run": root / "run", "sweep": root / "sweep"}


def limited_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` but those in ``out`` (links read as their target's
    path), with its contents."""
    return {str(p.relative_to(folder)): (str(p.readlink()).encode() if p.is_symlink()
                                         else p.read_bytes())
            for p in sorted(folder.rglob("*")) if (p.is_file() or p.is_symlink())
            and p.relative_to(folder).parts[0] != "out"}


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.name)
def test_each_probe_ends_cleanly(tmp_path, probe, saved):
    for name, text in probe.files.items():
        (tmp_path / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    if probe.copies is not None:
        shutil.copytree(saved[probe.copies], tmp_path / "out")
    if probe.prepare is not None:
        probe.prepare(tmp_path)
    before = snapshot(tmp_path)
    out_before = sorted(p.name for p in (tmp_path / "out").iterdir()) \
        if (tmp_path / "out").is_dir() else None

    done = subprocess.run([sys.executable, "-m", "circuits_abm.cli", *probe.args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          preexec_fn=limited_memory, check=False)

    assert done.returncode == probe.code, done.stderr[-3000:]
    assert "Traceback" not in done.stderr + done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 or "Usage: circuits-abm" in done.stderr, done.stderr[-3000:]
    assert probe.said in done.stderr, done.stderr[-3000:]
    assert snapshot(tmp_path) == before  # nothing written outside the output folder
    if out_before is None:
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    else:
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == out_before
