"""Sweep analysis: Sobol and Morris indices against functions whose indices are known in
closed form, PRIM and CART against a planted box, and the commands end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from circuits_abm.analysis import discovery, sensitivity
from circuits_abm.cli import app

runner = CliRunner()


def ishigami(x: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    return np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])


def ishigami_indices(a: float = 7.0, b: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """First-order and total indices of the Ishigami function, from its variance terms
    (Ishigami & Homma 1990; Sobol' & Levitan 1999)."""
    v1 = 0.5 * (1 + b * np.pi**4 / 5) ** 2
    v2 = a**2 / 8
    v13 = b**2 * np.pi**8 * (1 / 18 - 1 / 50)
    total = v1 + v2 + v13
    return np.array([v1, v2, 0.0]) / total, np.array([v1 + v13, v2, v13]) / total


def test_sobol_indices_of_the_ishigami_function_match_the_closed_form():
    axes = {name: {"range": [-np.pi, np.pi]} for name in ("x1", "x2", "x3")}
    points = sensitivity.saltelli_points(axes, 2048, seed=3)
    x = np.array([[p[name] for name in axes] for p in points])
    assert len(points) == 2048 * (3 + 2)
    table = sensitivity.sobol_indices(pd.DataFrame({"y": ishigami(x)}), axes, ["y"], seed=3)
    first, total = ishigami_indices()
    np.testing.assert_allclose(table.S1, first, atol=0.04)
    np.testing.assert_allclose(table.ST, total, atol=0.04)
    assert (table.S1_conf > 0).all() and (table.S1_conf < 0.1).all()


def test_morris_measures_change_per_whole_range_and_log_axes_in_decades():
    """y = 3a over a in [0, 2] changes by 6 across the range; y = log10(b) over b in [1, 100]
    (a log axis) changes by 2; an axis the function ignores has mu* = 0."""
    axes = {"a": {"range": [0.0, 2.0]}, "b": {"range": [1.0, 100.0], "scale": "log"},
            "c": {"range": [0.0, 1.0]}}
    points = sensitivity.morris_points(axes, 30, seed=1)
    results = pd.DataFrame([{**p, "point": i, "status": "ok"} for i, p in enumerate(points)])
    assert results.b.between(1.0, 100.0).all()
    x = sensitivity.design_matrix(results, axes, len(points))
    y = pd.DataFrame({"y": 3 * results.a + np.log10(results.b)})
    table = sensitivity.morris_indices(y, x, axes, ["y"], seed=1).set_index("axis")
    assert table.mu_star.to_dict() == pytest.approx({"a": 6.0, "b": 2.0, "c": 0.0}, abs=1e-9)


def test_point_outcomes_average_each_points_seeds():
    results = pd.DataFrame({
        "point": [0, 0, 0, 1, 1],
        "status": ["ok", "ok", "ok", "ok", "failed"],
        "regime": ["conditional_policy", "conditional_policy", "strategy_churn",
                   "ecological_generalist", ""],
        "router_share": [0.9, 0.6, 0.0, 0.0, np.nan],
        "predicted_regime": ["conditional_policy"] * 3 + ["ecological_generalist"] * 2,
    })
    table = sensitivity.point_outcomes(results, 2)
    assert table.p_conditional_policy.tolist() == pytest.approx([2 / 3, 0.0])
    assert table.p_ecological_generalist.tolist() == pytest.approx([0.0, 1.0])
    assert table.router_share.tolist() == pytest.approx([0.5, 0.0])
    assert table.theory_p_conditional_policy.tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="no finished run"):
        sensitivity.point_outcomes(results, 3)


def test_prim_finds_a_planted_box_and_cart_splits_on_its_edges():
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.uniform(size=(3000, 3)), columns=["a", "b", "c"])
    inside = x.a.between(0.2, 0.6) & x.b.between(0.5, 0.9)
    y = (inside ^ (rng.uniform(size=len(x)) < 0.03)).to_numpy()
    trajectory, chosen, box = discovery.prim_box(x, y)
    box = box.set_index("axis")
    assert box.loc["a", ["low", "high"]].tolist() == pytest.approx([0.2, 0.6], abs=0.06)
    assert box.loc["b", ["low", "high"]].tolist() == pytest.approx([0.5, 0.9], abs=0.06)
    assert box.restricted.to_dict() == {"a": True, "b": True, "c": False}
    assert trajectory.density.iloc[chosen] > 0.85 > y.mean()
    assert trajectory.coverage.iloc[chosen] >= discovery.MIN_COVERAGE
    rules = discovery.cart_rules(x, y)
    thresholds = {name: [float(line.rsplit(" ", 1)[1]) for line in rules.splitlines()
                         if f" {name} <=" in line] for name in ("a", "b")}
    assert any(abs(t - 0.2) < 0.05 for t in thresholds["a"])
    assert any(abs(t - 0.5) < 0.05 for t in thresholds["b"])


def test_prim_needs_at_least_one_run_of_the_regime():
    x = pd.DataFrame({"a": [0.1, 0.2]})
    with pytest.raises(ValueError, match="nothing to find"):
        discovery.prim_box(x, np.array([False, False]))


def _sweep(tmp_path, design: str) -> str:
    axes = ('[axes."geometry.sharing"]\nrange = [0.0, 0.9]\n'
            '[axes."geometry.distinguishability"]\nrange = [0.0, 1.0]\n')
    if design == "grid":
        axes = ('[axes."geometry.sharing"]\nvalues = [0.1, 0.9]\n'
                '[axes."geometry.distinguishability"]\nvalues = [0.1, 0.9]\n')
    header = f'name = "t"\nbase = "standard"\nseeds = 2\nsteps = 300\ndesign = "{design}"\n'
    if design != "grid":
        header += "samples = 4\n"
    (tmp_path / "s.toml").write_text(header + axes)
    out = tmp_path / "out"
    done = runner.invoke(app, ["sweep", str(tmp_path / "s.toml"), "--out", str(out),
                               "--executor", "serial"])
    assert done.exit_code == 0, done.output
    return str(out)


@pytest.mark.parametrize("design", ["saltelli", "morris"])
def test_analyse_sensitivity_writes_its_table_and_figure(tmp_path, design):
    out = _sweep(tmp_path, design)
    done = runner.invoke(app, ["analyse", "sensitivity", out])
    assert done.exit_code == 0, done.output
    table = pd.read_parquet(f"{out}/sensitivity.parquet")
    assert set(table.axis) == {"geometry.sharing", "geometry.distinguishability"}
    assert table.method.iloc[0] == ("sobol" if design == "saltelli" else "morris")
    assert (tmp_path / "out" / "figures" / "sensitivity.png").stat().st_size > 10_000


def test_sensitivity_of_a_grid_is_refused_and_discovery_works_on_it(tmp_path):
    out = _sweep(tmp_path, "grid")
    refused = runner.invoke(app, ["analyse", "sensitivity", out])
    assert refused.exit_code == 2 and "saltelli" in refused.output
    unknown = runner.invoke(app, ["analyse", "discover", out, "--regime", "chaos"])
    assert unknown.exit_code == 2 and "unknown regime" in unknown.output
    found = runner.invoke(app, ["analyse", "discover", out, "--regime", "ecological_generalist"])
    assert found.exit_code == 0, found.output
    assert "density" in found.output and "CART rules" in found.output
    box = pd.read_parquet(f"{out}/discovery_ecological_generalist_box.parquet")
    assert set(box.axis) == {"geometry.sharing", "geometry.distinguishability"}
    assert (tmp_path / "out" / "figures" / "discovery_ecological_generalist.png").is_file()


def test_smoothed_probability_is_a_local_share_of_hits():
    """All hits give 1 everywhere; hits on the left half of a uniform design give about 1
    far left, about 0 far right and 1/2 on the midline (by symmetry)."""
    rng = np.random.default_rng(1)
    u, v = rng.uniform(size=4000), rng.uniform(size=4000)
    from circuits_abm.analysis.rates import smoothed_probability  # noqa: PLC0415

    np.testing.assert_allclose(smoothed_probability(u, v, np.ones(4000, bool), cells=10), 1.0)
    left = smoothed_probability(u, v, u < 0.5, cells=20, bandwidth=0.05)
    assert left[:, 0].min() > 0.95 and left[:, -1].max() < 0.05
    midline = (left[:, 9] + left[:, 10]) / 2
    assert abs(midline.mean() - 0.5) < 0.05


def test_a_scattered_sweep_gets_a_scatter_map_with_pairwise_panels(tmp_path):
    out = _sweep(tmp_path, "latin_hypercube")
    done = runner.invoke(app, ["figures", "phase-diagram", out])
    assert done.exit_code == 0, done.output
    from circuits_abm.experiments.sweep.journal import load_results  # noqa: PLC0415
    from circuits_abm.viz.scatter import scatter_diagram  # noqa: PLC0415

    results = load_results(out)[0]
    fig = scatter_diagram(results, ["geometry.sharing", "geometry.distinguishability"])
    ax = fig.axes[0]
    points = ax.collections[-1].get_offsets()
    assert len(points) == results.point.nunique()  # one marker per parameter point
    three = results.assign(extra=results["geometry.sharing"] * 2)
    assert len([a for a in scatter_diagram(three, ["geometry.sharing",
                                                   "geometry.distinguishability",
                                                   "extra"]).axes if a.get_visible()]) == 3


def test_the_router_share_metric_is_the_mean_over_the_last_quarter_of_the_phases():
    import circuits_abm as ca  # noqa: PLC0415

    result = ca.run("standard", seed=4, steps=800, progress=False)  # 80 phases: window 20
    per_phase = result.phases.groupby("phase").router_share.first()
    expected = per_phase.iloc[-20:].mean()
    assert ca.classify(result.phases).tree.metrics["router_share"] == pytest.approx(expected)
