"""Figures are drawn from a stored run only; checked through their matplotlib objects."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import scenario_dict
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from typer.testing import CliRunner

import circuits_abm as ca
from circuits_abm.cli import app
from circuits_abm.engine.loading import scenario_from_dict
from circuits_abm.regimes import compact
from circuits_abm.viz import motivation_figures, run_figures, sweep_figures

STEPS = 600


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A small stored run with clusters, a held-out environment and an intervention."""
    data = scenario_dict(
        steps=STEPS,
        environments=[
            {"name": "a1", "cluster": "a"},
            {"name": "a2", "cluster": "a"},
            {"name": "b1", "cluster": "b"},
            {"name": "probe", "held_out": True},
        ],
        geometry={"sharing": 0.1, "distinguishability": 0.9},
        interventions=[{"step": 300, "label": "tag", "nodes": ["b1"], "distinguishability": 0.95}],
    )
    out = tmp_path_factory.mktemp("run")
    ca.run(scenario_from_dict(data), seed=1).save(out)
    return out


@pytest.fixture(scope="module")
def run(run_dir):
    return ca.load_run(run_dir)


def legend_texts(legend):
    return [t.get_text() for t in legend.get_texts()]


def test_muller_plot_has_kind_legend_phase_band_and_intervention(run):
    fig = run_figures.muller_plot(run)
    ax = fig.axes[0]
    assert ax.get_title().startswith("Lineages by descent")
    stacked = run_figures.muller_plot(run, nested=False).axes[0]
    assert stacked.get_title() == "Lineages over time (colour: circuit kind; shades: lineages)"
    assert ax.get_xlabel() == "step" and ax.get_ylabel() == "share of the population"
    kinds = set(run.timeseries.kind)
    legends = [c for c in ax.get_children() if type(c).__name__ == "Legend"]
    titles = {lg.get_title().get_text(): legend_texts(lg) for lg in legends}
    assert set(titles["circuit kind"]) == kinds
    assert set(titles["training phase"]) == {"a1", "a2", "b1"}
    band = next(a for a in ax.child_axes if a.get_gid() == "phase-band")
    assert len(band.patches) == run.phases.phase.nunique() == STEPS // 10
    assert [line.get_xdata()[0] for line in ax.get_lines()] == [300]
    assert any(t.get_text() == "tag" for t in ax.texts)


def test_retention_heatmap_sets_held_out_apart_and_marks_the_trained_environment(run):
    fig = run_figures.retention_heatmap(run, last=20)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["a1", "a2", "b1", "probe\n(held out)"]
    assert ax.images[0].get_array().shape == (20, 4)
    dots = next(c for c in ax.collections if c.get_gid() == "trained")
    assert len(dots.get_offsets()) == 20
    assert "Retention" in ax.get_title()


def test_environment_graph_draws_every_pair_and_marks_held_out(run):
    fig = run_figures.environment_graph(run)
    ax = fig.axes[0]
    edges = [line for line in ax.get_lines() if line.get_gid() == "edge"]
    assert len(edges) == 6  # all pairs of four environments
    nodes = [c for c in ax.collections if isinstance(c, PathCollection) and c.get_gid() == "node"]
    assert len(nodes) == 4
    assert sorted(n.get_linewidths()[0] for n in nodes) == [0.8, 0.8, 0.8, 2.5]
    texts = {t.get_text() for t in ax.texts}
    assert "probe\n(held out)" in texts
    legend = legend_texts(ax.get_legend())
    assert "cluster a" in legend and "cluster b" in legend


def test_environment_labels_clear_the_edges_the_switch_counts_and_the_legend(run):
    """In display coordinates: no point of an edge, no switch count and no legend falls in
    an environment's label, and every label is on the page."""
    fig = run_figures.environment_graph(run)
    ax = fig.axes[0]
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    labels = [t.get_window_extent(renderer) for t in ax.texts if t.get_gid() == "environment"]
    counts = [t.get_window_extent(renderer) for t in ax.texts if t.get_gid() != "environment"]
    assert len(labels) == 4 and counts  # the run switched between environments
    along = np.linspace(0, 1, 400)[:, None]
    edges = [ax.transData.transform(np.column_stack(line.get_data()))
             for line in ax.get_lines() if line.get_gid() == "edge"]
    page = fig.bbox
    for label in labels:
        inside = label.expanded(0.98, 0.9)  # a label's own padding may touch a line
        for a, b in edges:
            points = a + along * (b - a)
            assert inside.count_contains(points) == 0
        assert not any(label.overlaps(count) for count in counts)
        assert not label.overlaps(ax.get_legend().get_window_extent(renderer))
        assert page.x0 <= label.x0 and label.x1 <= page.x1
        assert page.y0 <= label.y0 and label.y1 <= page.y1


def test_structure_diagram_shows_the_dominant_tree_and_its_regimes(run):
    fig = run_figures.structure_diagram(run)
    ax = fig.axes[0]
    structure = run.phases.dominant_structure.iloc[-1]
    nodes = [c for c in ax.collections if c.get_gid() == "tree-node"]
    assert len(nodes) == structure.count("R[") + sum(structure.count(k) for k in "nwg")
    assert ax.get_title() == f"Dominant circuit at the end: {structure}"
    texts = " ".join(t.get_text() for t in ax.texts)
    assert run.summary["regime"].replace("_", " ") in texts


def test_summary_figure_is_titled_with_scenario_and_structure(run):
    fig = run_figures.summary_figure(run)
    assert fig.get_suptitle() == f"test (seed 1): {run.summary['structure']}"
    assert len([a for a in fig.axes if a.get_title()]) >= 4


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_cli_writes_every_figure_in_the_requested_format(run_dir, tmp_path, fmt):
    result = CliRunner().invoke(
        app, ["figures", "run", str(run_dir), "--format", fmt, "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(f"{name}.{fmt}" for name in run_figures.FIGURES)
    assert all(p.stat().st_size > 1000 for p in tmp_path.iterdir())


def test_cli_rejects_an_unknown_format_and_a_missing_run(run_dir, tmp_path):
    runner = CliRunner()
    assert runner.invoke(app, ["figures", "run", str(run_dir), "--format", "gif"]).exit_code == 2
    assert runner.invoke(app, ["figures", "run", str(tmp_path / "nothing")]).exit_code == 2


@pytest.fixture(scope="module")
def motivation_run(tmp_path_factory):
    """A short route run with a hackable, a penalising and a held-out environment."""
    data = scenario_dict(
        steps=300,
        motivations=[{"name": "hack"}],
        monitor={"rule": "route"},
        environments=[{"name": "rl", "motivations": {"hack": 0.5}},
                      {"name": "chat", "motivations": {"hack": -0.2}},
                      {"name": "deploy", "held_out": True}],
    )
    out = tmp_path_factory.mktemp("motivation")
    ca.run(scenario_from_dict(data), seed=2).save(out)
    return out


def test_a_run_with_motivations_gets_motivation_and_attribution_figures(motivation_run, tmp_path):
    result = CliRunner().invoke(
        app, ["figures", "run", str(motivation_run), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert {"motivation.png", "quarantine.png"} <= {p.name for p in tmp_path.iterdir()}
    run = ca.load_run(motivation_run)
    fig = motivation_figures.motivation_plot(run)
    styles = {line.get_label(): line.get_linestyle() for line in fig.axes[0].lines
              if not line.get_label().startswith("_")}
    assert styles == {"rl (training)": "-", "chat (training)": "-", "deploy (held out)": "--"}
    ax = motivation_figures.quarantine_plot(run).axes[0]
    hatched = {tick.get_text(): bool(bar.get_hatch())
               for tick, bar in zip(ax.get_xticklabels(), ax.patches, strict=True)}
    assert hatched == {"rl": True, "chat": False}  # rl is hackable, chat is not


def test_sweep_curve_draws_the_mean_of_each_group_against_the_axis():
    import pandas as pd

    results = pd.DataFrame({
        "status": ["ok"] * 8,
        "angle": [0, 0, 10, 10, 0, 0, 10, 10],
        "rule": ["block"] * 4 + ["route"] * 4,
        "residual": [0.0, 0.2, 0.4, 0.6, 0.1, 0.1, 0.2, 0.4],
    })
    fig = sweep_figures.sweep_curve(results, "angle", "residual", "rule")
    lines = [line for line in fig.axes[0].lines if line.get_gid() == "curve"]
    assert [list(line.get_ydata()) for line in lines] == [
        pytest.approx([0.1, 0.5]), pytest.approx([0.1, 0.3])]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "rule = block", "rule = route"]


def test_figures_of_many_environments_summarise_instead_of_listing(tmp_path):
    from PIL import Image

    data = scenario_dict(30, steps=200, geometry={"sharing": 0.1, "distinguishability": 0.9})
    out = tmp_path / "many"
    ca.run(scenario_from_dict(data), seed=1).save(out)
    written = run_figures.write_run_figures(ca.load_run(out), out / "figures")
    width, height = Image.open(next(p for p in written if p.stem == "summary")).size
    assert width < 2500 and height < 2500
    run = ca.load_run(out)
    title = run_figures.summary_figure(run).get_suptitle()
    assert "e29" not in title and len(title) < 150
    edges = [line for line in run_figures.environment_graph(run).axes[0].lines
             if line.get_gid() == "edge"]
    assert len(edges) == 60  # the 2 N strongest of 435 pairs


def test_compact_structures_count_environments_and_merge_repeats():
    long = "conditional_policy[" + ", ".join(f"specialist{{e{i}}}" for i in range(12)) + \
        ", strategy_churn{a,b,c}]"
    assert compact(long, 80) == \
        "conditional_policy[12× specialist{1 env}, strategy_churn{3 envs}]"
    assert compact("strategy_churn{a,b}", 80) == "strategy_churn{a,b}"


def test_a_long_title_goes_on_two_lines_before_it_loses_environment_names():
    head = "standard (seed 1): "
    nested = ("conditional_policy[specialist{rl_code}, conditional_policy[specialist{sft_chat}, "
              "specialist{sft_code}]]")
    lines = run_figures.title_lines(head, nested, 70).split("\n")
    assert len(lines) == 2 and all(len(line) <= 70 for line in lines)
    assert " ".join(lines) == head + nested  # broken at a space, nothing lost
    short = "ecological_generalist{a,b}"
    assert run_figures.title_lines(head, short, 60) == head + short
    many = "conditional_policy[" + ", ".join(f"specialist{{e{i}}}" for i in range(30)) + "]"
    assert run_figures.title_lines(head, many, 60) == \
        head + "conditional_policy[30× specialist{1 env}]"


def test_muller_bands_nest_three_generations_by_hand():
    """Lineage 1 founds 2 at step 20, 2 founds 3 at step 30; 4 is a second root.  At step
    30 the shares are 1: 0.4, 2: 0.2, 3: 0.2, 4: 0.2, so the clades are 1: 0.8, 2: 0.4,
    3: 0.2.  Band 1 is [0, 0.8]; half of 1's own share (0.2) lies below its child, so band 2
    is [0.2, 0.6]; half of 2's own (0.1) lies below 3, so band 3 is [0.3, 0.5]; root 4
    stacks on root 1: [0.8, 1.0]."""
    import pandas as pd  # noqa: PLC0415

    rows = [(10, 1, -1, 0.7), (10, 4, -1, 0.3),
            (20, 1, -1, 0.5), (20, 2, 1, 0.25), (20, 4, -1, 0.25),
            (30, 1, -1, 0.4), (30, 2, 1, 0.2), (30, 3, 2, 0.2), (30, 4, -1, 0.2)]
    series = pd.DataFrame(rows, columns=["step", "lineage", "parent_lineage", "share"])
    bands = run_figures.muller_bands(series)
    assert list(bands) == [1, 2, 3, 4]  # parents before their descendants
    expected = {1: (0.0, 0.8), 2: (0.2, 0.6), 3: (0.3, 0.5), 4: (0.8, 1.0)}
    for lineage, (bottom, top) in bands.items():
        assert (bottom[-1], top[-1]) == pytest.approx(expected[lineage])
    bottom, top = bands[3]
    assert top[0] == bottom[0] and top[1] == bottom[1]  # no band before lineage 3 exists
    assert (bands[4][0][0], bands[4][1][0]) == pytest.approx((0.7, 1.0))
