"""Stretches of steps in one compiled call (``circuits_abm.engine.steps``).

``CircuitsModel.run`` computes stretches of quiet steps at once; stepping the model with
``step()`` computes one step per call.  The two must give the same run bit for bit (the
same tables, population and random generator afterwards), and the stretches must end
where Python has work to do, which is checked against ends worked out by hand.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from helpers import ROOT, make_scenario

from circuits_abm.engine.loading import load_scenario, override
from circuits_abm.engine.model import CircuitsModel, stretch_ends


def fingerprint(model: CircuitsModel) -> str:
    """sha256 of the run's tables at full precision and of its final population."""
    digest = hashlib.sha256()
    for table in model.recorder.tables():
        digest.update(table.to_csv(float_format="%r").encode())
    for array in (model.shares, model.layout.theta, model.layout.keys, model.layout.quarantine):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(" ".join(c.structure for c in model.circuits).encode())
    return digest.hexdigest()


def stepped(spec, seed: int, steps: int) -> CircuitsModel:
    """The model stepped one ``step()`` at a time, as a Mesa user would."""
    model = CircuitsModel(spec, rng=seed, steps=steps)
    while model.running:
        model.step()
    return model


@pytest.mark.parametrize("name", ["standard", "quarantine", "inoculation", "on_policy",
                                  "switching_fast", "nested_churn_clusters", "recovery_loop"])
def test_run_gives_the_same_run_as_stepping_one_step_at_a_time(name):
    # Scenarios with births and deaths inside stretches, interventions, the route rule with
    # a discard, gamma > 0, and short phases.
    spec = ROOT / "scenarios" / f"{name}.toml"
    fast = CircuitsModel(spec, rng=5, steps=1500)
    fast.run()
    slow = stepped(spec, 5, 1500)
    assert fingerprint(fast) == fingerprint(slow)
    assert fast.steps == slow.steps == 1500 and fast.time == slow.time
    assert fast.rng.random() == slow.rng.random()  # the generator ends in the same state
    assert fast.datacollector.get_model_vars_dataframe().equals(
        slow.datacollector.get_model_vars_dataframe())


@pytest.mark.parametrize("rule", ["route", "block"])
def test_a_noisy_monitor_draws_its_readings_the_same_way_in_stretches_and_steps(rule):
    # A fresh reading at every phase start draws from the model's generator between
    # stretches; stepping one step at a time must draw the same numbers at the same steps.
    spec = override(load_scenario("quarantine"), {"monitor.noise": 0.5, "monitor.rule": rule})
    fast = CircuitsModel(spec, rng=7, steps=900)
    fast.run()
    slow = stepped(spec, 7, 900)
    assert fingerprint(fast) == fingerprint(slow)
    assert fast.rng.random() == slow.rng.random()


def test_a_stretch_cut_short_by_an_extinction_gives_back_its_unused_noise():
    # A strong selection with a high floor: circuits die inside stretches from the first
    # phase on, so most stretches stop early and must rewind the generator.
    spec = make_scenario(2, steps=200, selection={"strength": 20.0, "extinction_floor": 0.05},
                         variation={"rate": 0.5})
    fast = CircuitsModel(spec, rng=11)
    early = []
    advance = fast.advance

    def spy(phase, length):
        done = advance(phase, length)
        early.append(done < length)
        return done

    fast.advance = spy
    fast.run()
    slow = stepped(spec, 11, 200)
    assert any(early), "no stretch was cut short: the test does not test the rewind"
    assert fingerprint(fast) == fingerprint(slow)
    assert fast.rng.random() == slow.rng.random()


def test_stretches_end_where_python_has_work_worked_out_by_hand():
    # 30 steps in phases of 10; births in steps 3 and 15; an intervention at the start of
    # step 7.  A stretch ends after a birth step (3, 15), after a phase's last step (9, 19,
    # 29), and before the intervention (6).
    spec = make_scenario(2, steps=30, schedule={"phase_length": 10},
                         interventions=[{"step": 7, "edges": [["e0", "e1"]], "sharing": 0.5}])
    model = CircuitsModel(spec, rng=0)
    births = np.zeros(30, dtype=int)
    births[[3, 15]] = 1
    ends = stretch_ends(spec, model.phases, births, 30)
    expected = [3] * 4 + [6] * 3 + [9] * 3 + [15] * 6 + [19] * 4 + [29] * 10
    assert ends.tolist() == expected


def test_records_every_n_steps_end_stretches_too():
    spec = make_scenario(2, steps=12, schedule={"phase_length": 6}, records={"every": 4})
    model = CircuitsModel(spec, rng=0)
    ends = stretch_ends(spec, model.phases, np.zeros(12, dtype=int), 12)
    # record steps 3, 7, 11; phase ends 5, 11
    assert ends.tolist() == [3] * 4 + [5] * 2 + [7] * 2 + [11] * 4


def test_an_event_of_your_own_sees_the_model_at_its_own_step():
    # With a scheduled event, run() takes every step on its own: the event at time 25 sees
    # the shares after exactly 25 steps.
    spec = ROOT / "scenarios" / "standard.toml"
    model = CircuitsModel(spec, rng=3, steps=60)
    seen = []

    def look():
        seen.append((model.steps, model.shares.copy()))

    model.schedule_event(look, at=25.5)
    model.run()
    reference = CircuitsModel(spec, rng=3, steps=60)
    for _ in range(25):
        reference.step()
    assert seen[0][0] == 25
    assert np.array_equal(seen[0][1], reference.shares)
