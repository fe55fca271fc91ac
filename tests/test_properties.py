"""Invariants over random scenarios (hypothesis): simplex, finiteness, determinism."""

from __future__ import annotations

import numpy as np
from conftest import make_scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circuits_abm.model import CircuitsModel

scenario_params = st.fixed_dictionaries(
    {
        "sharing": st.floats(-0.3, 1.0),
        "distinguishability": st.floats(0.0, 1.0),
        "strength": st.sampled_from([0.0, 1.0, 5.0, 1e3, 1e6]),
        "noise": st.sampled_from([0.0, 0.3, 3.0, 50.0]),
        "gamma": st.floats(0.0, 1.0),
        "rate": st.sampled_from([0.0, 0.3, 2.0]),
        "seed": st.integers(0, 2**31 - 1),
    }
)

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def build(p: dict, steps: int = 120) -> CircuitsModel:
    n_envs = 4
    sharing = max(p["sharing"], -1 / (n_envs - 1) + 0.01)  # keep the homogeneous Gram matrix PSD
    scenario = make_scenario(
        n_envs=n_envs,
        steps=steps,
        geometry={"sharing": sharing, "distinguishability": p["distinguishability"]},
        selection={"strength": p["strength"]},
        learning={"noise": p["noise"], "gamma": p["gamma"]},
        variation={"rate": p["rate"]},
        schedule={"phase_length": 3},
    )
    return CircuitsModel(scenario, seed=p["seed"])


@SETTINGS
@given(scenario_params)
def test_shares_stay_on_the_simplex_and_everything_stays_finite(p):
    model = build(p)
    for _ in range(model.n_steps):
        model.step()
        assert np.all(model.shares >= 0)
        assert abs(model.shares.sum() - 1.0) < 1e-9
        assert len(model.shares) == len(model.circuits) == model.layout.n_circuits
        assert np.all(np.isfinite(model.shares))
        assert np.all(np.isfinite(model.layout.theta))
        assert np.all(np.isfinite(model.layout.keys))
    assert np.all(np.isfinite(model.fitness))


@SETTINGS
@given(scenario_params)
def test_same_seed_gives_the_same_run(p):
    a, b = build(p, steps=60), build(p, steps=60)
    a.run()
    b.run()
    assert [c.structure for c in a.circuits] == [c.structure for c in b.circuits]
    assert [c.lineage for c in a.circuits] == [c.lineage for c in b.circuits]
    np.testing.assert_array_equal(a.shares, b.shares)
    np.testing.assert_array_equal(a.layout.theta, b.layout.theta)
    np.testing.assert_array_equal(a.layout.keys, b.layout.keys)
