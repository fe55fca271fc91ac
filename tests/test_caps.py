"""Everything that scales has a cap, checked before anything runs: a sweep's seeds, steps,
axis values and runs, and what a run keeps in memory.  Each oversized input is refused with
one line naming the field and the limit, under a 2 GiB memory limit (the refusal itself
must not need the memory the input asks for), and nothing is written."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

import circuits_abm as ca
from circuits_abm.defaults import MAX_RECORDS, MAX_SWEEP_RUNS
from circuits_abm.engine.scenario import ScenarioError
from circuits_abm.engine.validation import record_count

MEMORY_LIMIT = 2 * 1024**3  # bytes of address space


def limited_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def refused_under_the_limit(args: list[str], cwd) -> str:
    """Run the command line in a process limited to MEMORY_LIMIT; it must exit 2 with one
    ``error:`` line and no traceback.  Returns stderr."""
    done = subprocess.run([sys.executable, "-m", "circuits_abm.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          preexec_fn=limited_memory, check=False)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ")
    return done.stderr


SWEEP_HEAD = 'name = "big"\nbase = "standard"\n'
AXIS = '[axes."geometry.sharing"]\n'


@pytest.mark.parametrize(("text", "said"), [
    (SWEEP_HEAD + AXIS + "linspace = [0.0, 0.9, 10000000]\n", "linspace.2"),
    (SWEEP_HEAD + "seeds = 1000000000\n" + AXIS + "values = [0.1]\n", "`seeds`"),
    (SWEEP_HEAD + "steps = 1000000000\n" + AXIS + "values = [0.1]\n", "`steps`"),
    (SWEEP_HEAD + "seeds = 1000\n" + AXIS + "linspace = [0.0, 0.9, 1000]\n",
     f"1,000,000 runs; at most {MAX_SWEEP_RUNS:,}"),
    (SWEEP_HEAD + 'steps = 800000\n[overrides]\n"records.every" = 1\n' + AXIS
     + "values = [0.1]\n", f"at most {MAX_RECORDS:,}"),
], ids=["axis-count", "seeds", "steps", "runs", "records"])
def test_an_oversized_sweep_is_refused_before_it_builds_anything(tmp_path, text, said):
    (tmp_path / "big.toml").write_text(text)
    stderr = refused_under_the_limit(["sweep", "big.toml", "--out", "out"], tmp_path)
    assert said in stderr
    assert not (tmp_path / "out").exists()


def test_a_run_that_would_keep_too_many_records_is_refused(tmp_path):
    stderr = refused_under_the_limit(
        ["run", "standard", "--steps", "800000", "--set", "records.every=1", "--out", "out"],
        tmp_path)
    assert "`records`" in stderr and "records.every" in stderr
    assert not list(tmp_path.glob("out/*.parquet"))
    with pytest.raises(ScenarioError, match="records"):
        ca.run(ca.override(ca.load_scenario("standard"), {"records.every": 1}), steps=800_000)


def test_the_record_count_is_what_a_run_keeps():
    spec = ca.load_scenario("standard")  # 4 environments, phases of 10 steps, fixed lengths
    assert record_count(spec, 6000) == 600 + 600 * 4  # a snapshot per phase, a row per env
    result = ca.run(spec, steps=500)
    phases = 500 // 10
    assert len(result.phases) == phases * 4
    assert result.timeseries["step"].nunique() == phases
    every = ca.override(spec, {"records.every": 7})
    assert record_count(every, 500) == 500 // 7 + phases * 4
    assert ca.run(every, steps=500).timeseries["step"].nunique() == 500 // 7


@pytest.mark.parametrize(("text", "said"), [
    ('kind = "single"\n[alpha_s]\nlow = 0.01\nhigh = 100\ncount = 10000\n'
     '[alpha_l]\nlow = 0.01\nhigh = 100\ncount = 10000\n', "300,000,000 cells; at most"),
    ('kind = "homogeneous"\n[priors]\nlow = 0.0001\nhigh = 0.1\ncount = 10000\n'
     '[n]\nlow = 1\nhigh = 10000\ncount = 10000\n', "cells; at most"),
    ('kind = "heterogeneous"\n[n]\nlow = 1\nhigh = 1000000\ncount = 16\n',
     "1,000,000 environments; at most"),
    ('kind = "heterogeneous"\nn_features = 8192\n', "coupling entries per kernel; at most"),
    ('kind = "heterogeneous"\nseed = -1\n', "`seed`"),
    ('kind = "single"\n[integration]\nhorizon = inf\n', "a finite number"),
], ids=["single-grid", "homogeneous-grid", "heterogeneous-n", "features", "seed", "horizon"])
def test_an_oversized_or_impossible_reward_seeking_experiment_is_refused(tmp_path, text, said):
    (tmp_path / "big.toml").write_text(text)
    stderr = refused_under_the_limit(["reward-seeking", "run", "big.toml", "--out", "out"],
                                     tmp_path)
    assert said in stderr
    assert not (tmp_path / "out").exists()
