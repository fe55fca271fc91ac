"""The geometry reproduces the overlaps a scenario asks for."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_scenario

from circuits_abm.engine.environments import apply_intervention, build_environments
from circuits_abm.engine.scenario import InterventionSpec


@pytest.mark.parametrize(("s", "d"), [(0.1, 0.9), (0.9, 0.1), (0.0, 1.0), (-0.2, 0.5)])
def test_homogeneous_geometry_has_requested_gram_matrices(s, d):
    envs = build_environments(make_scenario(geometry={"sharing": s, "distinguishability": d}))
    n = envs.size
    expected_g = s * np.ones((n, n)) + (1 - s) * np.eye(n)
    expected_q = (1 - d) * np.ones((n, n)) + d * np.eye(n)
    np.testing.assert_allclose(envs.demands @ envs.demands.T, expected_g, atol=1e-10)
    np.testing.assert_allclose(envs.cues @ envs.cues.T, expected_q, atol=1e-10)


def test_clusters_and_edge_overrides_take_precedence():
    scenario = make_scenario(
        environments=[
            {"name": "a1", "cluster": "a"},
            {"name": "a2", "cluster": "a"},
            {"name": "b1", "cluster": "b"},
            {"name": "b2", "cluster": "b"},
        ],
        geometry={
            "sharing": 0.3,
            "clusters": {"a": {"sharing": 0.9, "distinguishability": 0.1}},
            "between_clusters": {"sharing": 0.0, "distinguishability": 0.9},
        },
        edges=[{"source": "b1", "target": "b2", "sharing": 0.5}],
    )
    envs = build_environments(scenario)
    g = envs.demands @ envs.demands.T
    q = envs.cues @ envs.cues.T
    assert g[0, 1] == pytest.approx(0.9)
    assert q[0, 1] == pytest.approx(0.9)  # 1 - distinguishability 0.1
    assert g[0, 2] == pytest.approx(0.0, abs=1e-12)
    assert q[0, 2] == pytest.approx(0.1)
    assert g[2, 3] == pytest.approx(0.5)  # edge override beats the global 0.3


def test_distance_kernel_attenuates_sharing_along_a_path():
    scenario = make_scenario(
        geometry={"sharing": 0.8, "distance_length": 1.0},
        edges=[{"source": f"e{i}", "target": f"e{i + 1}"} for i in range(3)],
    )
    g = build_environments(scenario).demand_overlap
    for hops in (1, 2, 3):
        assert g[0, hops] == pytest.approx(0.8 * np.exp(-hops))


def test_intervention_changes_only_named_pairs_and_keeps_basis_close():
    envs = build_environments(make_scenario(geometry={"sharing": 0.1, "distinguishability": 0.9}))
    after = apply_intervention(envs, InterventionSpec(step=1, edges=[("e0", "e1")], sharing=0.8))
    g = after.demands @ after.demands.T
    assert g[0, 1] == pytest.approx(0.8)
    assert g[2, 3] == pytest.approx(0.1)
    np.testing.assert_allclose(after.cues, envs.cues, atol=1e-9)  # cues untouched
    untouched_shift = np.linalg.norm(after.demands[2:] - envs.demands[2:])
    touched_shift = np.linalg.norm(after.demands[:2] - envs.demands[:2])
    assert untouched_shift < touched_shift


def test_node_intervention_raises_distinguishability_of_every_pair_of_a_tagged_node():
    envs = build_environments(make_scenario(geometry={"distinguishability": 0.1}))
    after = apply_intervention(envs, InterventionSpec(step=1, nodes=["e2"], distinguishability=0.9))
    q = after.cues @ after.cues.T
    assert q[2, 0] == pytest.approx(0.1) and q[2, 3] == pytest.approx(0.1)
    assert q[0, 1] == pytest.approx(0.9)
