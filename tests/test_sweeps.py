"""Sweeps: validation, designs, failures, executor equivalence, resuming after kill -9."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from helpers import ROOT

from circuits_abm.engine.scenario import ScenarioError
from circuits_abm.experiments import executors
from circuits_abm.experiments.sweep import runner
from circuits_abm.experiments.sweep.design import derive_seed
from circuits_abm.experiments.sweep.journal import JOURNAL, load_results
from circuits_abm.experiments.sweep.records import TIMING_COLUMNS
from circuits_abm.experiments.sweep.runner import run_sweep
from circuits_abm.experiments.sweep.spec import load_sweep
from circuits_abm.regimes import STRIPE_ORDER, nested_label
from circuits_abm.viz.phase_diagrams import phase_diagram

BASE = (ROOT / "scenarios" / "standard.toml").as_posix()


def sweep_file(tmp_path, body: str, name: str = "s.toml"):
    path = tmp_path / name
    path.write_text(f'name = "tiny"\nbase = "{BASE}"\n' + body)
    return path


TINY = """
seeds = 2
root_seed = 7
steps = 300
[axes."geometry.sharing"]
values = [-0.5, 0.2, 0.9]
[axes."geometry.distinguishability"]
values = [0.9]
"""


def comparable(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=list(TIMING_COLUMNS)).reset_index(drop=True)


# ------------------------------------------------------------------ validation


def problems(tmp_path, body: str) -> str:
    with pytest.raises(ScenarioError) as info:
        load_sweep(sweep_file(tmp_path, body))
    return str(info.value)


def test_unknown_sweep_field_names_the_file_and_allowed_fields(tmp_path):
    message = problems(tmp_path, 'sedes = 3\n[axes."geometry.sharing"]\nvalues = [0.1]\n')
    assert "s.toml" in message and "`sedes`" in message and "seeds" in message


def test_axis_over_an_unknown_scenario_field_is_an_error(tmp_path):
    message = problems(tmp_path, '[axes."geometry.sharng"]\nvalues = [0.1]\n')
    assert "geometry.sharng" in message and "sharing" in message


def test_axis_value_out_of_range_is_an_error_before_running(tmp_path):
    message = problems(tmp_path, '[axes."geometry.distinguishability"]\nvalues = [0.5, 1.5]\n')
    assert "geometry.distinguishability" in message and "1.5" in message


def test_designs_need_ranges_and_sobol_a_power_of_two(tmp_path):
    assert "range" in problems(
        tmp_path,
        'design = "latin_hypercube"\nsamples = 4\n[axes."geometry.sharing"]\nvalues = [0.1]\n',
    )
    assert "power of two" in problems(
        tmp_path, 'design = "sobol"\nsamples = 6\n[axes."geometry.sharing"]\nrange = [0.0, 1.0]\n'
    )


def test_missing_base_scenario_is_named(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(
        'name = "x"\nbase = "nowhere.toml"\n[axes."geometry.sharing"]\nvalues = [0.1]\n'
    )
    with pytest.raises(ScenarioError, match="nowhere.toml"):
        load_sweep(path)


# ------------------------------------------------------------------ designs and seeds


def test_grid_ranges_and_seeds(tmp_path):
    sweep = load_sweep(
        sweep_file(
            tmp_path,
            """
seeds = 3
[axes."selection.strength"]
logspace = [1.0, 100.0, 3]
[axes."schedule.phase_length"]
linspace = [5, 20, 4]
integer = true
""",
        )
    )
    assert len(sweep.points) == 12 and len(sweep.tasks) == 36
    assert sorted({p["selection.strength"] for p in sweep.points}) == [1.0, 10.0, 100.0]
    assert sorted({p["schedule.phase_length"] for p in sweep.points}) == [5, 10, 15, 20]
    seeds = [t["seed"] for t in sweep.tasks]
    assert len(set(seeds)) == len(seeds)
    assert seeds == [t["seed"] for t in load_sweep(sweep.source).tasks]  # reproducible
    assert (
        derive_seed(1, {"a": 0.1}, 0)
        == derive_seed(1, {"a": 0.1}, 0)
        != derive_seed(2, {"a": 0.1}, 0)
    )


@pytest.mark.parametrize("design", ["latin_hypercube", "sobol"])
def test_space_filling_designs_stay_in_range_and_are_reproducible(tmp_path, design):
    body = f"""
design = "{design}"
samples = 8
[axes."geometry.sharing"]
range = [0.0, 0.9]
[axes."selection.strength"]
range = [0.5, 50.0]
scale = "log"
"""
    a, b = load_sweep(sweep_file(tmp_path, body)), load_sweep(sweep_file(tmp_path, body))
    assert a.points == b.points and len(a.points) == 8
    sharing = np.array([p["geometry.sharing"] for p in a.points])
    strength = np.array([p["selection.strength"] for p in a.points])
    assert sharing.min() >= 0 and sharing.max() <= 0.9
    assert strength.min() >= 0.5 and strength.max() <= 50
    if design == "latin_hypercube":  # one sample in each of the 8 strata per axis
        assert sorted(np.floor(sharing / 0.9 * 8).astype(int)) == list(range(8))


def test_a_design_coordinate_maps_onto_the_axis_range_linearly_or_logarithmically():
    """u in [0, 1) lands at low + (high - low) u on a linear axis and low (high/low)^u on a
    log axis; integer axes round."""
    from circuits_abm.experiments.sweep.spec import AxisSpec  # noqa: PLC0415

    linear = AxisSpec(range=(0.2, 0.6))
    assert linear.from_unit(0.0) == pytest.approx(0.2)
    assert linear.from_unit(0.25) == pytest.approx(0.3)
    logarithmic = AxisSpec(range=(1.0, 100.0), scale="log")
    assert logarithmic.from_unit(0.5) == pytest.approx(10.0)
    counts = AxisSpec(range=(2.0, 12.0), integer=True)
    assert counts.from_unit(0.33) == 5 and isinstance(counts.from_unit(0.33), int)


def test_the_monitored_motivation_goes_into_its_own_columns():
    """Each group of the run's monitored motivation, and its capability, gets its column;
    a run without monitoring gets empty ones."""
    from circuits_abm.experiments.sweep.records import MOTIVATION_METRICS, motivation_metrics  # noqa: PLC0415

    monitoring = {"motivation": {"training": 0.1, "held_out": 0.2, "evaluation": 0.3},
                  "capability": 0.4, "capability_final": 0.35}
    assert motivation_metrics({"monitoring": monitoring}) == {
        "motivation_training": 0.1, "motivation_held_out": 0.2,
        "motivation_evaluation": 0.3, "capability": 0.4, "capability_final": 0.35}
    assert motivation_metrics({}) == dict.fromkeys(MOTIVATION_METRICS, None)


# ------------------------------------------------------------------ running


@pytest.fixture(scope="module")
def serial_table(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serial")
    return run_sweep(load_sweep(sweep_file(tmp, TINY)), tmp / "out", executor="serial")


def test_each_point_runs_its_replicates_with_their_own_seeds(serial_table):
    """TINY has 2 seeds per point: replicates 0 and 1, each with the seed derived from the
    root seed, the point's values and the replicate."""
    axes = ["geometry.sharing", "geometry.distinguishability"]
    for _, rows in serial_table.groupby("point"):
        assert sorted(rows.replicate) == [0, 1]
        for _, row in rows.iterrows():
            values = {axis: row[axis] for axis in axes}
            assert row.seed == derive_seed(7, values, row.replicate)
        assert rows.seed.nunique() == 2


def test_a_run_that_raises_is_a_failed_row_and_the_sweep_goes_on(serial_table):
    failed = serial_table[serial_table["geometry.sharing"] == -0.5]
    assert len(failed) == 2 and (failed.status == "failed").all()
    assert failed.error.str.contains("impossible").all()
    assert (failed.regime == "").all() and (failed.structure == "").all()
    assert failed.predicted_regime.isna().all()
    ok = serial_table[serial_table["geometry.sharing"] != -0.5]
    assert (ok.status == "ok").all() and ok.regime.ne("").all()


class Terminal(io.StringIO):
    """A captured stderr that says it is a terminal, so tqdm draws its bar into it."""

    def isatty(self) -> bool:
        return True


def test_the_python_sweep_writes_the_same_table_into_the_folder_it_is_given(
        serial_table, tmp_path, monkeypatch):
    import circuits_abm as ca  # noqa: PLC0415

    monkeypatch.setattr(sys, "stderr", Terminal())
    table = ca.sweep(load_sweep(sweep_file(tmp_path, TINY)), tmp_path / "api",
                     executor="serial", progress=True)
    bar = sys.stderr.getvalue()
    assert "tiny: 100%" in bar and "6/6" in bar  # the sweep's name, and its 6 runs
    assert (tmp_path / "api" / JOURNAL).exists()
    columns = ["run_id", "seed", "status", "regime", "structure"]
    pd.testing.assert_frame_equal(table[columns], serial_table[columns])


def test_every_run_row_has_every_column_whether_it_ran_or_failed(serial_table, tmp_path):
    from circuits_abm.experiments.sweep.records import METRICS, PREDICTIONS, run_task  # noqa: PLC0415

    ok = serial_table[serial_table.status == "ok"]
    assert len(ok) > 0
    # Population-level metrics exist for every run; a root router has routing information
    # and no recency bias, a root mechanism the reverse; nothing is held out here.  This holds
    # whichever regime each run ends in.
    by_structure = {"routing_information", "recency_bias", "held_out_reward"}
    assert ok[[m for m in METRICS if m not in by_structure]].notna().all().all()
    routed = ok.regime == "conditional_policy"
    assert (ok.routing_information.notna() == routed).all()
    assert (ok.recency_bias.notna() == ~routed).all()
    assert ok.held_out_reward.isna().all()
    tasks = load_sweep(sweep_file(tmp_path, TINY)).tasks
    record = run_task(next(t for t in tasks if t["values"]["geometry.sharing"] == -0.5))
    assert record["status"] == "failed"
    assert {*METRICS, *PREDICTIONS} <= set(record) and record["predicted_regime"] is None


def test_a_folder_that_cannot_be_read_says_which_and_why(serial_table, tmp_path):
    run_sweep(load_sweep(sweep_file(tmp_path, TINY)), tmp_path / "out", executor="serial")
    (tmp_path / "out" / "results.parquet").write_text("not parquet")
    with pytest.raises(ValueError, match="cannot read the sweep in .*out: "):
        load_results(tmp_path / "out")


def test_the_fitness_of_what_emerged_is_the_theorys_for_that_structure():
    from circuits_abm.experiments.sweep.records import fitness_of  # noqa: PLC0415

    prediction = {"best": {"structure": "a", "fitness": 0.4},
                  "rivals": [{"structure": "b", "fitness": 0.3},
                             {"structure": "c", "fitness": 0.2}]}
    assert fitness_of(prediction, {"canonical": "b"}) == 0.3
    assert fitness_of(prediction, {"canonical": "a"}) == 0.4
    assert fitness_of(prediction, {"canonical": "undetermined{x}"}) is None


def test_map_in_processes_shows_a_bar_only_when_asked(monkeypatch):
    from circuits_abm.experiments.executors import map_in_processes  # noqa: PLC0415

    for progress in (True, False):
        monkeypatch.setattr(sys, "stderr", Terminal())
        assert map_in_processes(abs, [(-1,), (2,)], 1, "absolutes", "value",
                                progress=progress) == [1, 2]
        assert ("absolutes" in sys.stderr.getvalue()) is progress


def test_aggregate_gives_regime_shares_per_point(serial_table, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("agg")
    run_sweep(load_sweep(sweep_file(tmp, TINY)), tmp / "out", executor="serial")
    _, agg, echo = load_results(tmp / "out")
    assert len(agg) == 3 and echo["axes"] == ["geometry.sharing", "geometry.distinguishability"]
    shares = agg.filter(regex="^share_").sum(axis=1)
    assert agg.loc[agg.failed == 0].pipe(lambda a: np.allclose(shares[a.index], 1.0))
    assert agg.loc[agg["geometry.sharing"] == -0.5, "majority_regime"].item() == "failed"


def test_aggregate_regime_intervals_are_wilson_95(tmp_path):
    """Each regime's share carries the Wilson score interval, computed here from its closed
    form: (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n), z = 1.959964."""
    from circuits_abm.experiments.sweep.aggregate import aggregate  # noqa: PLC0415

    regimes = ["conditional_policy"] * 3 + ["strategy_churn"]
    table = pd.DataFrame({"point": 0, "geometry.sharing": 0.1, "status": "ok",
                          "regime": regimes, "structure": regimes, "predicted_regime": "",
                          "predicted_structure": "", "predicted_margin": np.nan,
                          "predicted_recency_margin": np.nan, "mean_fitness": 0.0,
                          "recency_bias": 0.0,
                          **{m: 0.0 for m in ("confidence", "stability", "routing_information",
                                              "population_reward", "held_out_reward",
                                              "switch_drop", "lineage_turnover",
                                              "router_share")}})
    row = aggregate(table, ["geometry.sharing"]).iloc[0]
    z, n = 1.959964, 4
    for regime, k in [("conditional_policy", 3), ("strategy_churn", 1),
                      ("ecological_generalist", 0)]:
        p = k / n
        centre, half = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        assert row[f"share_{regime}"] == p
        assert row[f"low_{regime}"] == pytest.approx((centre - half) / (1 + z * z / n), abs=1e-6)
        assert row[f"high_{regime}"] == pytest.approx((centre + half) / (1 + z * z / n), abs=1e-6)


def test_process_pool_gives_the_same_table_as_serial(serial_table, tmp_path):
    """Through the Python API, given the sweep as a dict and the default executor (a pool of
    worker processes)."""
    import tomllib  # noqa: PLC0415

    import circuits_abm as ca  # noqa: PLC0415

    design = {"name": "tiny", "base": BASE, **tomllib.loads(TINY)}
    table = ca.sweep(design, tmp_path / "out", workers=2, progress=False)
    pd.testing.assert_frame_equal(comparable(table), comparable(serial_table))


def test_a_worker_gets_the_replicates_of_one_point_together_up_to_the_chunk_size():
    tasks = [{"point": p, "run_id": i} for i, p in enumerate([0, 0, 0, 1, 1, 2, 0])]
    chunks = runner.replicate_chunks(tasks, 2)
    assert [[t["run_id"] for t in chunk] for chunk in chunks] == [[0, 1], [2], [3, 4], [5], [6]]
    assert [len(c) for c in runner.replicate_chunks(tasks, 1)] == [1] * 7


def test_a_chunk_whose_worker_died_gives_a_failed_row_for_each_of_its_runs():
    import concurrent.futures as cf  # noqa: PLC0415

    chunk = [{"run_id": i, "scenario_hash": "h", "point": 0, "replicate": i, "seed": 10 + i,
              "values": {"geometry.sharing": 0.5}} for i in range(3)]
    died = cf.Future()
    died.set_exception(RuntimeError("worker killed"))
    rows = runner._results_or_failures(died, chunk)
    assert [(r["run_id"], r["seed"], r["status"]) for r in rows] == [
        (0, 10, "failed"), (1, 11, "failed"), (2, 12, "failed")]
    assert all(r["error"] == "RuntimeError: worker killed" and r["geometry.sharing"] == 0.5
               for r in rows)


def test_a_dead_worker_process_stops_the_sweep_and_journals_nothing_for_its_runs():
    import concurrent.futures as cf  # noqa: PLC0415
    from concurrent.futures.process import BrokenProcessPool  # noqa: PLC0415

    chunk = [{"run_id": 0, "scenario_hash": "h", "point": 0, "replicate": 0, "seed": 10,
              "values": {}}]
    died = cf.Future()
    died.set_exception(BrokenProcessPool("a process terminated abruptly"))
    with pytest.raises(executors.WorkersLost, match="its 1 runs were not journaled"):
        runner._results_or_failures(died, chunk)


ALL_FAIL = """
seeds = 2
root_seed = 7
steps = 300
[axes."geometry.sharing"]
values = [-0.5]
"""


def test_a_sweep_in_which_every_run_failed_raises_with_the_first_error(tmp_path):
    path, out = sweep_file(tmp_path, ALL_FAIL), tmp_path / "out"
    with pytest.raises(runner.SweepFailed, match="(?s)2 of 2 runs failed.*impossible") as info:
        runner.sweep(path, out, executor="serial", progress=False)
    assert (info.value.results.status == "failed").all()
    assert (out / "results.parquet").is_file()  # the tables are written all the same
    again = cli("sweep", str(path), "--out", str(out), "--executor", "serial", "--quiet")
    assert again.returncode == 1
    assert "2 of 2 runs failed" in again.stderr and "--retry-failed" in again.stderr


def test_more_failed_runs_than_the_allowed_share_raise(serial_table, tmp_path):
    """TINY: 2 of its 6 runs fail (one impossible point of three)."""
    sweep = load_sweep(sweep_file(tmp_path, TINY))
    table = run_sweep(sweep, tmp_path / "out", executor="serial", max_failed_share=0.34)
    assert (table.status != "ok").sum() == 2
    with pytest.raises(runner.SweepFailed, match="2 of 6 runs failed"):
        run_sweep(sweep, tmp_path / "out", executor="serial", max_failed_share=0.3)


def test_retry_failed_runs_the_failed_runs_again_and_keeps_the_rest(serial_table, tmp_path):
    path, out = sweep_file(tmp_path, TINY), tmp_path / "out"
    sweep = load_sweep(path)
    run_sweep(sweep, out, executor="serial")
    records = [json.loads(line) for line in (out / JOURNAL).read_text().splitlines()]
    lost = next(r for r in records if r["status"] == "ok")  # as if the disk had been full
    with (out / JOURNAL).open("a") as journal:
        journal.write(json.dumps({**lost, "status": "failed", "error": "OSError: disk full"})
                      + "\n")
    kept = run_sweep(sweep, out, executor="serial")
    assert kept.set_index("run_id").status[lost["run_id"]] == "failed"  # not retried
    retried = run_sweep(sweep, out, executor="serial", retry_failed=True)
    pd.testing.assert_frame_equal(comparable(retried), comparable(serial_table))
    journaled = [json.loads(line) for line in (out / JOURNAL).read_text().splitlines()]
    assert len(journaled) == 6 + 1 + 3  # the lost run and the two impossible ones again


SCRIPT_SWEEP = """
seeds = 1
root_seed = 3
steps = 200
[axes."geometry.sharing"]
values = [0.2, 0.9]
"""


@pytest.mark.parametrize("guarded", [True, False])
def test_a_script_that_starts_a_sweep_needs_the_main_guard_and_is_told_so(tmp_path, guarded):
    """Process-pool workers import the main script again: with the guard the sweep runs;
    without it, the script exits with an error that shows the guard to add, and no run is
    journaled as failed (so the fixed script resumes cleanly)."""
    call = f"ca.sweep({str(sweep_file(tmp_path, SCRIPT_SWEEP))!r}, 'out', workers=2, " \
        "progress=False)"
    body = f'if __name__ == "__main__":\n    {call}\n' if guarded else call + "\n"
    (tmp_path / "script.py").write_text("import circuits_abm as ca\n" + body)
    result = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300, check=False)
    journal = tmp_path / "out" / JOURNAL
    records = [json.loads(line) for line in journal.read_text().splitlines()] \
        if journal.exists() else []
    if guarded:
        assert result.returncode == 0, result.stderr
        assert [r["status"] for r in records] == ["ok", "ok"]
    else:
        assert result.returncode == 1
        assert "WorkersLost" in result.stderr and 'if __name__ == "__main__":' in result.stderr
        assert all(r["status"] == "ok" for r in records)


def test_the_fork_server_holds_every_compiled_kernel_before_workers_fork():
    """Sweep workers fork from a server that imported ``circuits_abm.experiments.worker``;
    that import must leave the step's kernels compiled in memory, so no worker loads them
    again (checked in a fresh interpreter with the JIT on, whatever the caller set)."""
    code = ("import circuits_abm.experiments.worker\n"
            "from circuits_abm.engine import kernels as k\n"
            "kernels = (k.evaluate, k.advance, k.share_weighted)\n"
            "print(all(len(k.signatures) == 1 for k in kernels))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "NUMBA_DISABLE_JIT": "0"}, check=True)
    assert out.stdout.strip() == "True"


def test_dask_local_cluster_gives_the_same_table_as_serial(serial_table, tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        table = run_sweep(
            load_sweep(sweep_file(tmp_path, TINY)),
            tmp_path / "out",
            executor="dask",
            scheduler=cluster.scheduler_address,
        )
    pd.testing.assert_frame_equal(comparable(table), comparable(serial_table))


def cli(*args):
    return subprocess.run([sys.executable, "-m", "circuits_abm.cli", *args],
                          capture_output=True, text=True, check=False)


# The command line, killed with SIGKILL right after its third run is journaled: the journal's
# append is wrapped in this process only, so the package has no kill hook of its own.
KILL_AFTER_THREE = """
import os, sys
from circuits_abm.cli import app
from circuits_abm.experiments.sweep.journal import SweepStore
append, journaled = SweepStore.append, []
def append_then_die(store, record):
    append(store, record)
    journaled.append(record)
    if len(journaled) == 3:
        os.kill(os.getpid(), 9)
SweepStore.append = append_then_die
app(["sweep", sys.argv[1], "--out", sys.argv[2], "--executor", "serial", "--quiet"])
"""


def test_a_sweep_killed_with_sigkill_resumes_without_redoing_or_losing_runs(serial_table, tmp_path):
    path, out = sweep_file(tmp_path, TINY), tmp_path / "out"
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_THREE, str(path), str(out)],
                            capture_output=True, text=True, check=False)
    assert killed.returncode == -9
    before = [json.loads(line) for line in (out / JOURNAL).read_text().splitlines()]
    assert len(before) == 3
    resumed = cli("sweep", str(path), "--out", str(out), "--executor", "serial", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    after = [json.loads(line) for line in (out / JOURNAL).read_text().splitlines()]
    assert after[:3] == before  # finished runs kept, not redone
    assert len(after) == len({r["run_id"] for r in after}) == 6
    table, _, _ = load_results(out)
    pd.testing.assert_frame_equal(comparable(table), comparable(serial_table))


def test_a_torn_last_journal_line_is_ignored_and_repaired(serial_table, tmp_path):
    path, out = sweep_file(tmp_path, TINY), tmp_path / "out"
    sweep = load_sweep(path)
    run_sweep(sweep, out, executor="serial")
    lines = (out / JOURNAL).read_text().splitlines()
    (out / JOURNAL).write_text("\n".join(lines[:4]) + "\n" + lines[4][:25])  # killed mid-write
    table = run_sweep(sweep, out, executor="serial")
    pd.testing.assert_frame_equal(comparable(table), comparable(serial_table))
    assert all(json.loads(line) for line in (out / JOURNAL).read_text().splitlines())


# ------------------------------------------------------------------ phase diagram


def synthetic_aggregate(facet_values=(None,)):
    """A 3 x 2 grid (d across, s up): generalists on the top row, churn at (0, 0), a
    conditional policy of churners at (1, 0) and of specialists at (2, 0); the top-right
    point is split half generalist, half conditional policy.  The theory predicts the
    majority everywhere except (0, 0), where it says conditional policy of specialists."""
    rows = []
    for facet in facet_values:
        for i, d in enumerate((0.1, 0.5, 0.9)):
            for j, s in enumerate((0.1, 0.9)):
                regime = (
                    "ecological_generalist"
                    if s > 0.5
                    else ("conditional_policy" if d > 0.3 else "strategy_churn")
                )
                structure = (
                    "conditional_policy[strategy_churn{a,b}, strategy_churn{c,d}]"
                    if (i, j) == (1, 0)
                    else f"{regime}{{a,b,c,d}}"
                )
                shares = {"share_" + r: 0.0 for r in STRIPE_ORDER}
                shares["share_" + regime] = 1.0
                if (i, j) == (2, 1):
                    shares["share_conditional_policy"] = shares["share_" + regime] = 0.5
                plain = "conditional_policy[specialist{a}, specialist{b}]"
                predicted = ("conditional_policy", plain) if (
                    (i, j) in ((0, 0), (2, 0))) else (regime, structure)
                row = {
                    "d": d,
                    "s": s,
                    "runs": 4,
                    "failed": 0,
                    **shares,
                    "majority_regime": regime,
                    "agreement": 0.5 if (i, j) == (2, 1) else 1.0,
                    "majority_structure": structure,
                    "predicted_regime": predicted[0],
                    "predicted_structure": predicted[1],
                    "theory_agrees": predicted[0] == regime,
                    "away_from_boundary": True,
                }
                if facet is not None:
                    row["tau"] = facet
                rows.append(row)
    return pd.DataFrame(rows)


def test_phase_diagram_shows_regime_probabilities_and_the_theory_boundaries():
    fig = phase_diagram(synthetic_aggregate(), "d", "s", title="demo")
    ax = fig.axes[0]
    cells = [p for p in ax.patches if p.get_gid() == "cell"]
    assert len(cells) == 6
    assert sum(bool(c.get_hatch()) for c in cells) == 1
    stripes = [p for p in ax.patches if p.get_gid() == "stripe"]
    assert len(stripes) == 7
    top_right = sorted((p.get_x(), p.get_width()) for p in stripes if p.get_y() == 0.5)[-2:]
    assert top_right == [(1.5, 0.5), (2.0, 0.5)]  # the split point: half and half
    assert [t.get_text() for t in ax.texts] == ["CP[C,C]"]
    # Predicted structures: bottom row CP[s], CP[C,C], CP[s]; top row G, G, G.  Regime
    # changes (solid): the three vertical pairs; a structure-only change (dashed): the two
    # bottom neighbours of CP[C,C].
    lines = [line for line in ax.lines if line.get_gid() == "theory"]
    assert sorted(line.get_linestyle() for line in lines) == ["-", "-", "-", "--", "--"]
    assert "theory = majority at 83% of 6" in ax.get_title()
    assert ax.get_xlabel() == "d" and ax.get_ylabel() == "s"
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"ecological generalist", "conditional policy", "strategy churn"} <= set(legend)
    assert {"seeds disagree (< 2/3)", "theory: regime boundary"} <= set(legend)
    assert fig.get_suptitle() == "demo"


def test_the_prediction_with_the_path_draws_its_own_boundary():
    # The path predicts "x" at the bottom-left cell and "y" everywhere else: two lines
    # around that cell, and it agrees with no majority.
    data = synthetic_aggregate()
    corner = (data.d == data.d.min()) & (data.s == data.s.min())
    data["path_predicted_regime"] = np.where(corner, "x", "y")
    fig = phase_diagram(data, "d", "s")
    ax = fig.axes[0]
    assert len([line for line in ax.lines if line.get_gid() == "path"]) == 2
    assert "with the path: 0%" in ax.get_title()
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "theory with the path: regime boundary" in legend


def test_a_third_axis_gives_small_multiples():
    fig = phase_diagram(synthetic_aggregate((5, 50)), "d", "s", facet="tau")
    assert [ax.get_title().split("\n")[0] for ax in fig.axes] == ["tau = 5", "tau = 50"]


def test_string_valued_facets_are_titled_by_name():
    data = synthetic_aggregate((1, 2))
    data["order"] = data.pop("tau").map({1: "cycle", 2: "walk"})
    fig = phase_diagram(data, "d", "s", facet="order")
    assert [ax.get_title().split("\n")[0] for ax in fig.axes] == ["order = cycle", "order = walk"]


def test_nested_label_names_only_mixtures():
    assert (
        nested_label("conditional_policy[ecological_generalist{a,b}, specialist{c}]")
        == "CP[G,S]"
    )
    assert nested_label("conditional_policy[specialist{a}, specialist{b}]") == ""
    assert nested_label("strategy_churn{a,b}") == ""


@pytest.mark.slow
def test_a_sweep_over_the_corners_reproduces_the_taxonomy_table_layout(tmp_path):
    """Each corner of the essay's table gives its regime as a rate over 20 derived seeds: the
    lower end of its Wilson interval is above one half (a claim about three seeds would be a
    claim about three trajectories)."""
    body = """
seeds = 20
root_seed = 2026
steps = 3000
[axes."geometry.distinguishability"]
values = [0.1, 0.9]
[axes."geometry.sharing"]
values = [0.1, 0.9]
"""
    run_sweep(
        load_sweep(sweep_file(tmp_path, body)), tmp_path / "out", executor="processes", workers=2
    )
    _, agg, _ = load_results(tmp_path / "out")
    expected = {
        (0.1, 0.9): "ecological_generalist",
        (0.9, 0.9): "ecological_generalist",
        (0.9, 0.1): "conditional_policy",
        (0.1, 0.1): "strategy_churn",
    }
    for _, point in agg.iterrows():
        regime = expected[(point["geometry.distinguishability"], point["geometry.sharing"])]
        assert point.runs == 20 and point.majority_regime == regime
        assert point[f"low_{regime}"] > 0.5, (regime, point[f"share_{regime}"])
