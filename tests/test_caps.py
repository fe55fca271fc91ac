"""Everything that scales has a cap, checked before anything runs.  The command line's
refusals (sweeps, runs, reward-seeking experiments, each under a memory limit) are probes in
``test_probes.py``; here, the Python API's, and the record count the run's cap rests on."""

from __future__ import annotations

import pytest

import circuits_abm as ca
from circuits_abm.engine.scenario import ScenarioError
from circuits_abm.engine.validation import record_count


def test_a_run_that_would_keep_too_many_records_is_refused_by_the_api():
    every_step = ca.override(ca.load_scenario("standard"), {"records.every": 1})
    with pytest.raises(ScenarioError, match="records"):
        ca.run(every_step, steps=800_000)
    with pytest.raises(ScenarioError, match="records"):
        ca.override(every_step, {"steps": 800_000})


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
