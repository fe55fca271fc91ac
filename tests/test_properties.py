"""Invariants over random scenarios (hypothesis): simplex, finiteness, determinism."""

from __future__ import annotations

import numpy as np
from conftest import make_scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circuits_abm.engine import learning
from circuits_abm.engine.model import CircuitsModel

scenario_params = st.fixed_dictionaries(
    {
        "sharing": st.floats(-0.3, 1.0),
        "distinguishability": st.floats(0.0, 1.0),
        "strength": st.sampled_from([0.0, 1.0, 5.0, 100.0]),  # 100: the schema's cap
        "noise": st.sampled_from([0.0, 0.3, 3.0, 10.0]),
        "gamma": st.floats(0.0, 1.0),
        "rate": st.sampled_from([0.0, 0.3, 2.0]),
        "seed": st.integers(0, 2**31 - 1),
    }
)

# 25 examples per property; fewer under the "mutation" profile (conftest.py), where every
# surviving mutant reruns these tests with the JIT off.
SETTINGS = settings(max_examples=min(25, settings.default.max_examples), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


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


structures = st.recursive(
    st.sampled_from(["n", "w", "g"]),
    lambda child: st.lists(child, min_size=2, max_size=4).map(lambda cs: f"R[{','.join(cs)}]"),
    max_leaves=12,
)


@SETTINGS
@given(population=st.lists(structures, min_size=1, max_size=6), seed=st.integers(0, 2**31 - 1))
def test_layout_puts_parents_first_and_routes_every_circuit_with_total_probability_one(
    population, seed
):
    """The compiled step multiplies path probabilities down in one forward pass over the rows,
    which is only right if every parent's row comes before its children's."""
    model = CircuitsModel(make_scenario(population={"initial": population}), seed=seed)
    layout = model.layout
    rows = np.arange(len(layout.nodes))
    assert np.all(layout.parent[: layout.n_circuits] == -1)
    assert np.all(layout.parent[layout.n_circuits :] < rows[layout.n_circuits :])
    assert [c.structure for c in model.circuits] == population
    _, path = learning.routing(layout, model.environments.cues)
    per_circuit = np.zeros((layout.n_circuits, path.shape[1]))
    np.add.at(per_circuit, layout.leaf_owner, path[layout.leaf_rows])
    np.testing.assert_allclose(per_circuit, 1.0, atol=1e-12)
