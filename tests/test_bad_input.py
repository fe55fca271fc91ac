"""Every bad input is one clear line and exit code 2, before any work and without writing;
output folders are never clobbered, shared, or left unreadable by collaborators."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pandas as pd
import pytest
from helpers import ROOT, scenario_dict
from typer.testing import CliRunner

from circuits_abm.cli import app
from circuits_abm.engine.loading import scenario_from_dict
from circuits_abm.experiments import executors
from circuits_abm.experiments.storage import folder_lock, parquet_metadata
from circuits_abm.experiments.sweep import journal, spec
from circuits_abm.experiments.sweep import runner as sweep_runner

runner = CliRunner()
STANDARD = str(ROOT / "scenarios" / "standard.toml")


def toml_file(tmp_path: Path, text: str, name: str = "bad.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def refused(args, *fragments) -> str:
    """Run the CLI and check it refused cleanly: exit 2, no traceback, the fragments said."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for fragment in fragments:
        assert fragment in result.output, result.output
    return result.output


MINIMAL = 'name = "t"\nenvironments = [{name = "a"}, {name = "b"}]\n'


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        ("steps = 1000000000000\n", ["`steps`", "less than or equal to 10000000"]),
        ("[selection]\nstrength = inf\n", ["`selection.strength`", "finite"]),
        ("[costs]\nper_mechanism = inf\n", ["`costs.per_mechanism`", "finite"]),
        ("[variation]\nrate = 1e9\n", ["`variation.rate`", "rebuilds the population"]),
        ("[population]\ninitial = []\n", ["`population.initial`", "at least 1 item"]),
        ("[circuits.router]\ninitial_sharpness = 10.0\nmax_sharpness = 5.0\n",
         ["max_sharpness (5.0) is below initial_sharpness (10.0)"]),
        ("seed = -1\n", ["`seed`"]),
    ],
)
def test_out_of_range_and_inconsistent_values_are_refused_before_running(tmp_path, extra,
                                                                           fragments):
    path = toml_file(tmp_path, MINIMAL + extra)
    refused(["validate", path], str(path), *fragments)
    refused(["run", path, "--out", tmp_path / "out"], *fragments)
    assert not (tmp_path / "out").exists()


def test_a_non_utf8_file_is_refused(tmp_path):
    path = tmp_path / "latin.toml"
    path.write_bytes(MINIMAL.encode() + b'description = "caf\xe9"\n')
    refused(["validate", path], "not UTF-8")


def test_bad_command_line_numbers_are_refused():
    refused(["run", STANDARD, "--seed", "-1"], "--seed")
    refused(["run", STANDARD, "--steps", "99999999999999999999"], "--steps")


def test_a_partial_rule_table_keeps_the_documented_defaults_of_its_other_fields():
    spec = scenario_from_dict(scenario_dict(circuits={"generalist": {"learning_rate": 0.05},
                                                      "naive": {"consolidation": 0.01}}))
    assert spec.circuits.generalist.consolidation == 0.001
    assert spec.circuits.naive.learning_rate == 0.3 and spec.circuits.naive.consolidation == 0.01


def test_a_sweep_axis_on_a_rule_field_keeps_the_other_defaults(tmp_path):
    path = toml_file(tmp_path, f'name = "s"\nbase = "{STANDARD}"\nseeds = 1\n'
                     '[axes."circuits.generalist.learning_rate"]\nvalues = [0.03, 0.05]\n',
                     "sweep.toml")
    tasks = spec.load_sweep(path).tasks
    assert [t["scenario"]["circuits"]["generalist"]["consolidation"] for t in tasks] == [0.001] * 2


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('[axes."geometry.sharing"]\nvalues = []\n', "at least 1 item"),
        ('[overrides]\n"geometry.sharing" = 0.2\n[axes."geometry.sharing"]\nvalues = [0.1]\n',
         "both swept (axes) and fixed (overrides)"),
    ],
)
def test_bad_sweep_files_are_refused(tmp_path, body, fragment):
    path = toml_file(tmp_path, f'name = "s"\nbase = "{STANDARD}"\n{body}', "sweep.toml")
    refused(["sweep", path, "--out", tmp_path / "out"], fragment)
    assert not (tmp_path / "out").exists()


def test_a_scheduler_without_the_dask_executor_is_refused(tmp_path):
    path = toml_file(tmp_path, f'name = "s"\nbase = "{STANDARD}"\n'
                     '[axes."geometry.sharing"]\nvalues = [0.1]\n', "sweep.toml")
    refused(["sweep", path, "--out", tmp_path / "out", "--executor", "serial",
             "--scheduler", "tcp://127.0.0.1:1"], "--scheduler needs --executor dask")


def test_an_unreachable_scheduler_is_one_line_and_leaves_no_sweep_file(tmp_path, monkeypatch):
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT", "1s")
    path = toml_file(tmp_path, f'name = "s"\nbase = "{STANDARD}"\nsteps = 50\n'
                     '[axes."geometry.sharing"]\nvalues = [0.1]\n', "sweep.toml")
    refused(["sweep", path, "--out", tmp_path / "out", "--executor", "dask",
             "--scheduler", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler")
    assert not (tmp_path / "out" / journal.SWEEP_ECHO).exists()


# ------------------------------------------------------------------ output folders


def test_an_unusable_out_is_refused_before_the_simulation(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    refused(["run", STANDARD, "--steps", "50", "--out", blocker], "is a file, not a folder")
    refused(["run", STANDARD, "--steps", "50", "--out", blocker / "inside"], "cannot write")


def test_run_refuses_a_folder_holding_something_else_unless_told_to_overwrite(tmp_path):
    out = tmp_path / "out"
    first = runner.invoke(app, ["run", STANDARD, "--steps", "60", "--seed", "1", "--out", str(out)])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["run", STANDARD, "--steps", "60", "--seed", "1", "--out", str(out)])
    assert again.exit_code == 0, again.output  # the very same run may be redone
    refused(["run", STANDARD, "--steps", "60", "--seed", "2", "--out", out],
            "holds another run (standard seed 1)", "--overwrite")
    forced = runner.invoke(app, ["run", STANDARD, "--steps", "60", "--seed", "2", "--out",
                                 str(out), "--overwrite"])
    assert forced.exit_code == 0, forced.output
    assert json.loads((out / "summary.json").read_text())["seed"] == 2
    other = tmp_path / "notes"
    other.mkdir()
    (other / "paper.tex").write_text("draft")
    refused(["run", STANDARD, "--steps", "60", "--out", other], "other files (paper.tex)")


def test_a_second_writer_into_a_locked_folder_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with folder_lock(out):
        refused(["run", STANDARD, "--steps", "50", "--out", out], "another circuits-abm process")


def test_files_are_written_with_the_users_umask(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", STANDARD, "--steps", "40", "--out", str(out)])
    assert result.exit_code == 0, result.output
    umask = os.umask(0)
    os.umask(umask)
    for name in ("summary.json", "phases.parquet"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~umask


def sweep_file(tmp_path: Path, name: str, sharing: str) -> Path:
    return toml_file(tmp_path, f'name = "{name}"\nbase = "{STANDARD}"\nseeds = 1\nsteps = 40\n'
                     f'[axes."geometry.sharing"]\nvalues = [{sharing}]\n', f"{name}.toml")


def test_a_sweep_folder_belongs_to_its_sweep(tmp_path):
    out = tmp_path / "out"
    first = sweep_file(tmp_path, "first", "0.1, 0.2")
    done = runner.invoke(app, ["sweep", str(first), "--out", str(out), "--executor", "serial"])
    assert done.exit_code == 0, done.output
    again = runner.invoke(app, ["sweep", str(first), "--out", str(out), "--executor", "serial"])
    assert again.exit_code == 0, again.output  # the same sweep resumes (nothing left to do)
    refused(["sweep", sweep_file(tmp_path, "second", "0.5"), "--out", out, "--executor",
             "serial"], "holds a different sweep (first)")
    run_dir = tmp_path / "run"
    runner.invoke(app, ["run", STANDARD, "--steps", "40", "--out", str(run_dir)])
    refused(["sweep", first, "--out", run_dir, "--executor", "serial"], "holds no sweep")


def test_an_interrupted_sweep_says_how_to_resume_and_its_checkpoint_says_it_is_partial(
        tmp_path, monkeypatch):
    out = tmp_path / "out"
    path = sweep_file(tmp_path, "s", "0.1, 0.2, 0.3")
    calls = {"n": 0}
    original = sweep_runner.run_task

    def interrupt_on_the_third(task):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(task)

    monkeypatch.setattr(sweep_runner, "run_task", interrupt_on_the_third)
    result = runner.invoke(app, ["sweep", str(path), "--out", str(out), "--executor", "serial"])
    assert result.exit_code == 130
    assert "interrupted after" in result.output and "run the same command again" in \
        result.output.lower()
    assert len((out / journal.JOURNAL).read_text().splitlines()) == 2
    sweep = spec.load_sweep(path)
    store = journal.SweepStore(out)
    store.write_tables(sweep)
    assert parquet_metadata(out / journal.RESULTS)["partial"] == "true"
    monkeypatch.setattr(sweep_runner, "run_task", original)
    finished = runner.invoke(app, ["sweep", str(path), "--out", str(out), "--executor", "serial"])
    assert finished.exit_code == 0, finished.output
    assert parquet_metadata(out / journal.RESULTS)["partial"] == "false"
    assert journal.load_results(out)[2]["partial"] is False


# ------------------------------------------------------------------ damaged run folders


@pytest.fixture
def saved_run(tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", STANDARD, "--steps", "60", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("damaged", ["phases.parquet", "summary.json"])
@pytest.mark.parametrize("command", [["classify"], ["figures", "run"]])
def test_a_damaged_run_file_is_one_line_not_a_traceback(saved_run, damaged, command):
    (saved_run / damaged).write_bytes(b"\x00\x01 not what it should be")
    refused([*command, saved_run], "cannot read", damaged)


def test_a_phases_table_of_another_shape_cannot_be_classified(saved_run):
    import pandas as pd

    from circuits_abm.experiments.storage import write_parquet

    write_parquet(saved_run / "phases.parquet", pd.DataFrame({"x": [1, 2]}))
    refused(["classify", saved_run], "not a phases table")


def _tampered(table):
    """Each way a hand or a script can spoil a run's table, and what the refusal says."""
    import numpy as np

    tripled = table.loc[table.index.repeat(3)].reset_index(drop=True)
    nan_rewards = table.assign(population_reward=np.nan) if "population_reward" in table \
        else table.assign(mean_fitness=np.inf)
    texts = table.assign(share=table["share"].astype(str)) if "share" in table \
        else table.assign(dominant_share=table["dominant_share"].astype(str))
    renamed = table.rename(columns={"share": "weight", "dominant_share": "weight"})
    return [(tripled, "repeated rows"), (nan_rewards, "infinite or NaN"),
            (texts, "it must hold numbers"), (renamed, "missing column")]


@pytest.mark.parametrize("name", ["timeseries.parquet", "phases.parquet"])
@pytest.mark.parametrize("command", [["classify"], ["figures", "run"]])
def test_a_tampered_table_is_refused_not_classified_or_drawn(saved_run, name, command):
    from circuits_abm.experiments.storage import read_parquet, write_parquet

    original = read_parquet(saved_run / name)
    for table, said in _tampered(original):
        write_parquet(saved_run / name, table)
        refused([*command, saved_run], name, said)
    write_parquet(saved_run / name, original)
    assert runner.invoke(app, ["classify", str(saved_run)]).exit_code == 0


@pytest.mark.parametrize(("field", "text"), [("seed", "Infinity"), ("seed", "-1"),
                                              ("steps", "1.5"), ("seed", "true")])
def test_a_summary_with_an_impossible_seed_or_length_is_refused(saved_run, field, text):
    summary = json.loads((saved_run / "summary.json").read_text())
    summary[field] = "PLACEHOLDER"
    (saved_run / "summary.json").write_text(json.dumps(summary).replace('"PLACEHOLDER"', text))
    refused(["classify", saved_run], "summary.json", f"`{field}`")


def test_the_catalogue_fails_loudly_when_a_claim_does_not_hold_or_nothing_is_found(tmp_path):
    refused(["catalogue", tmp_path], "no scenario with an `expected` regime")
    (tmp_path / "standard.toml").write_text((ROOT / "scenarios" / "standard.toml").read_text()
                                            .replace("steps = 6000", "steps = 300"))
    one = runner.invoke(app, ["catalogue", str(tmp_path), "--runs", "1", "--workers", "1"])
    # one run cannot support a rate: its Wilson interval reaches down to 0.21 < 0.7
    assert one.exit_code == 1 and "FAIL standard: " in one.output


@pytest.fixture(scope="module")
def saved_sweep(tmp_path_factory):
    import circuits_abm as ca  # noqa: PLC0415

    out = tmp_path_factory.mktemp("sweep") / "out"
    design = {"name": "tiny", "base": "standard", "seeds": 2, "steps": 300,
              "axes": {"geometry.sharing": {"values": [0.1, 0.9]},
                       "geometry.distinguishability": {"values": [0.2, 0.8]}}}
    ca.sweep(design, out, executor="serial", progress=False)
    return out


def _spoiled_sweep_tables(results, aggregate):
    """Each way to spoil a sweep's tables, the file it is in, and what the refusal says."""
    import numpy as np  # noqa: PLC0415

    return [
        ("results", pd.concat([results, results]), "repeated rows"),
        ("results", results.assign(status="maybe"), "status 'maybe'"),
        ("results", results.assign(regime="world_peace"), "regime 'world_peace'"),
        ("results", results.drop(columns="geometry.sharing"), "missing column geometry.sharing"),
        ("results", results.assign(seed=results["seed"].astype(str)), "must hold numbers"),
        ("aggregate", aggregate.assign(share_strategy_churn=1.5), "outside [0, 1]"),
        ("aggregate", aggregate.assign(share_specialist=np.inf), "infinite or NaN"),
    ]


def test_a_tampered_sweep_is_refused_not_drawn(saved_sweep):
    import shutil  # noqa: PLC0415

    from circuits_abm.experiments.storage import write_parquet  # noqa: PLC0415

    results, aggregate, _ = journal.load_results(saved_sweep)
    for name, table, said in _spoiled_sweep_tables(results, aggregate):
        copy = saved_sweep.parent / f"spoiled-{name}-{said.split()[0]}"
        shutil.copytree(saved_sweep, copy, dirs_exist_ok=True)
        write_parquet(copy / f"{name}.parquet", table.reset_index(drop=True))
        with pytest.raises(ValueError, match=re.escape(said)):
            journal.load_results(copy)
        refused(["figures", "phase-diagram", copy, "--out", copy / "map.png"],
                f"{name}.parquet", said)
        assert not (copy / "map.png").exists()
