"""Invariants over random scenarios (hypothesis): simplex, finiteness, determinism."""

from __future__ import annotations

import numpy as np
from helpers import make_scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circuits_abm.engine import learning, population
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


LAYOUT_ARRAYS = ("depth", "parent", "owner", "sharpness", "key_step", "keys", "leaf_rows",
                 "leaf_owner", "leaf_starts", "theta", "quarantine", "learning_rate",
                 "consolidation", "target_row", "cost")


@SETTINGS
@given(before=st.lists(structures, min_size=1, max_size=5),
       born=st.lists(structures, min_size=0, max_size=3),
       dies=st.lists(st.booleans(), min_size=8, max_size=8),
       seed=st.integers(0, 2**31 - 1))
def test_updating_the_layout_after_births_and_deaths_gives_exactly_a_fresh_compile(
    before, born, dies, seed
):
    """The step appends newborns and drops the dead by array indexing instead of walking
    every tree again; the arrays must be the ones a full compile of the survivors gives,
    row for row, and every node's numbers must be views into them."""
    model = CircuitsModel(make_scenario(population={"initial": before + born}), seed=seed)
    model.layout.theta[:] = model.rng.normal(size=model.layout.theta.shape)  # distinguishable
    model.layout.quarantine[:] = model.rng.normal(size=model.layout.quarantine.shape)
    roots = [c.root for c in model.circuits]
    old = population.compile_population(roots[: len(before)], model.spec)
    alive = ~np.array(dies[: len(roots)])
    alive[0] = True  # the largest always survives
    updated = population.extended(old, roots[len(before):], model.spec) if born else old
    updated = population.restricted(updated, alive)
    population.attach(updated)
    survivors = [root for root, keep in zip(roots, alive, strict=True) if keep]
    fresh = population.compile_population(survivors, model.spec)
    assert updated.n_circuits == fresh.n_circuits
    assert [id(n) for n in updated.nodes] == [id(n) for n in fresh.nodes]
    for name in LAYOUT_ARRAYS:
        np.testing.assert_array_equal(getattr(updated, name), getattr(fresh, name), err_msg=name)
    population.attach(updated)
    for row, leaf in zip(updated.leaf_rows, updated.theta, strict=True):
        assert np.shares_memory(updated.nodes[row].theta, leaf)
