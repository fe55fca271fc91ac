"""CLI and Python API: files written, reproducible bit for bit, clear errors, nothing written."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from helpers import ROOT
from typer.testing import CliRunner

import circuits_abm as ca
from circuits_abm.cli import app
from circuits_abm.experiments import runs as api

runner = CliRunner()
STANDARD = str(ROOT / "scenarios" / "standard.toml")


def test_run_writes_three_loadable_files(tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["run", STANDARD, "--seed", "3", "--steps", "400", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "phases.parquet",
        "summary.json",
        "timeseries.parquet",
    ]
    phases = pd.read_parquet(out / "phases.parquet")
    series = pd.read_parquet(out / "timeseries.parquet")
    summary = json.loads((out / "summary.json").read_text())
    assert phases.phase.nunique() == 40 and set(phases.environment) == {
        "sft_chat",
        "sft_code",
        "rl_code",
        "rl_math",
    }
    assert series.groupby("step").share.sum().between(1 - 1e-9, 1 + 1e-9).all()
    assert summary["seed"] == 3 and summary["steps"] == 400
    assert summary["scenario"]["name"] == "standard"
    assert summary["package_version"] == api.package_version()
    assert abs(sum(c["share"] for c in summary["final_population"]) - 1) < 1e-9


def test_same_scenario_and_seed_give_identical_files(tmp_path):
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        result = runner.invoke(
            app, ["run", STANDARD, "--seed", "7", "--steps", "300", "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
    for name in ("timeseries.parquet", "phases.parquet"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()
    summaries = [json.loads((o / "summary.json").read_text()) for o in outs]
    for s in summaries:
        s.pop("wall_time_seconds")
    assert summaries[0] == summaries[1]


def test_different_seeds_give_different_runs():
    a = ca.run(STANDARD, seed=1, steps=200)
    b = ca.run(STANDARD, seed=2, steps=200)
    assert not a.phases.population_reward.equals(b.phases.population_reward)


def test_invalid_scenario_exits_2_with_one_message_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[environments]]\nname = "a"\n[schedule]\norder = "zigzag"\n')
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(bad), "--out", str(out)])
    assert result.exit_code == 2
    assert "bad.toml" in result.output and "schedule.order" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2 and "zigzag" in result.output


def test_validate_accepts_a_good_scenario():
    result = runner.invoke(app, ["validate", STANDARD])
    assert result.exit_code == 0 and "ok" in result.output


def test_python_api_round_trip(tmp_path):
    result = ca.run(ca.load_scenario(STANDARD), seed=2, steps=100)
    result.save(tmp_path)
    loaded = ca.load_run(tmp_path)
    pd.testing.assert_frame_equal(loaded.phases, result.phases)
    pd.testing.assert_frame_equal(loaded.timeseries, result.timeseries)
    assert loaded.summary["seed"] == 2


def test_built_in_files_resolve_by_name_and_a_path_still_works():
    from circuits_abm.experiments.sweep.spec import load_sweep
    from circuits_abm.reward_seeking.experiments import load_experiment

    assert ca.load_scenario("standard") == ca.load_scenario(STANDARD)
    assert load_sweep("taxonomy").spec.name == "taxonomy"
    assert load_experiment("single").kind == "single"
    with pytest.raises(ca.ScenarioError, match="no built-in scenario of that name; built-in: "
                                               "cell_generalist_distinct"):
        ca.load_scenario("no_such_scenario")
    with pytest.raises(ca.ScenarioError, match="file not found"):
        ca.load_scenario("missing/elsewhere.toml")


def test_list_shows_every_built_in_with_its_claim():
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    for name in ("standard", "quarantine", "taxonomy", "heterogeneous"):
        assert f"  {name} " in result.output
    assert "specialists under a thin routing layer" in result.output


def test_list_gives_whole_sentences_for_experiments_described_in_a_comment_block():
    """An experiment's header comment spans several lines; its first sentence is listed
    whole (the crosscheck file's first sentence ends "five seeds each.")."""
    result = runner.invoke(app, ["list"])
    line = next(line for line in result.output.splitlines() if line.startswith("  crosscheck "))
    assert line.endswith("for N from 1 to 64, five seeds each.")


def test_the_readmes_sample_output_is_what_run_prints(tmp_path):
    """The quickstart shows what its first `run` prints; results are the same on every
    machine, so only the time may differ."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("`run` ends by printing what emerged")[1].split("```")[1].strip()
    result = runner.invoke(app, ["run", STANDARD, "--seed", "1", "--out",
                                 str(tmp_path / "runs" / "standard"), "--quiet"])
    assert result.exit_code == 0, result.output
    printed = result.output.replace(str(tmp_path) + "/", "").strip()
    strip_time = re.compile(r" in [0-9.]+s;")
    assert strip_time.sub(" in Xs;", printed) == strip_time.sub(" in Xs;", block)


def test_set_changes_fields_for_one_run_and_names_a_wrong_one(tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", STANDARD, "--steps", "60", "--out", str(out), "--quiet",
                                 "--set", "geometry.sharing=0.6", "--set",
                                 "schedule.phase_length=12"])
    assert result.exit_code == 0, result.output
    scenario = json.loads((out / "summary.json").read_text())["scenario"]
    assert scenario["geometry"]["sharing"] == 0.6 and scenario["schedule"]["phase_length"] == 12
    wrong = runner.invoke(app, ["run", STANDARD, "--out", str(tmp_path / "x"),
                                "--set", "geometry.sharng=0.6"])
    assert wrong.exit_code == 2 and "geometry.sharng" in wrong.output
    assert "sharing" in wrong.output and not (tmp_path / "x").exists()
    bare = runner.invoke(app, ["predict", STANDARD, "--set", "geometry.sharing"])
    assert bare.exit_code == 2 and "PATH=VALUE" in bare.output


def test_long_work_shows_progress_lines_when_its_output_is_not_a_terminal():
    """`catalogue` with its output in a pipe (CI, a log file) still says how far it is."""
    import subprocess
    import sys

    from circuits_abm.experiments.catalogue import canonical_scenarios

    result = subprocess.run([sys.executable, "-m", "circuits_abm", "catalogue", "--runs", "1",
                             "--workers", "1"], capture_output=True, text=True)
    progress = [line for line in result.stderr.splitlines() if line.startswith("catalogue:")]
    count = len(canonical_scenarios(ROOT / "scenarios"))
    assert progress and f"{count}/{count}" in progress[-1] and "\r" not in result.stderr


def test_python_dash_m_is_the_same_command_line():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "circuits_abm", "validate", "standard"],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "standard: ok" in result.stdout


def test_a_scenario_copied_with_a_raw_update_is_validated_again_when_run():
    spec = ca.load_scenario("standard")
    loose = spec.model_copy(update={"geometry": {"sharing": 0.9}})  # pydantic does not check
    result = ca.run(loose, seed=1, steps=60, progress=False)
    assert result.summary["scenario"]["geometry"]["sharing"] == 0.9
    broken = spec.model_copy(update={"geometry": {"sharing": 7.0}})
    with pytest.raises(ca.ScenarioError, match="geometry.sharing"):
        ca.run(broken, seed=1, steps=60, progress=False)


def test_override_changes_fields_by_dotted_path_and_validates_them():
    spec = ca.override(ca.load_scenario("standard"),
                       {"geometry.sharing": 0.9, "circuits.generalist.learning_rate": 0.05})
    assert spec.geometry.sharing == 0.9 and spec.circuits.generalist.consolidation == 0.001
    with pytest.raises(ca.ScenarioError, match="schedule.order"):
        ca.override(spec, {"schedule.order": "spiral"})
    with pytest.raises(ca.ScenarioError, match="`environments` is a list.*0..3, not `sharing`"):
        ca.override(spec, {"environments.sharing": 0.5})
    with pytest.raises(ca.ScenarioError, match="index 7 is past the end"):
        ca.override(spec, {"environments.7.name": "x"})
    assert ca.override(spec, {"environments.0.name": "first"}).environments[0].name == "first"


def test_a_cross_field_check_runs_however_the_scenario_is_built():
    with pytest.raises(Exception, match="unknown environment 'nowhere'"):
        ca.Scenario(name="x", environments=[{"name": "a"}],
                    schedule={"start": "nowhere"})


def test_summaries_record_provenance():
    summary = ca.run("standard", seed=1, steps=60, progress=False).summary
    found = summary["provenance"]
    assert found["package_version"] == api.package_version()
    assert {"mesa", "numpy", "numba", "pandas"} <= set(found["dependencies"])
    assert len(found["scenario_hash"]) == 16 and found["python"].startswith("3.")
    assert found["git_commit"] is None or len(found["git_commit"].split("-")[0]) == 40


def test_figures_show_themselves_in_a_notebook():
    from circuits_abm.viz import run_figures

    run = ca.run("standard", seed=1, steps=200, progress=False)
    png = run_figures.muller_plot(run)._repr_png_()
    assert png.startswith(b"\x89PNG")


def test_a_prediction_prints_readably_in_a_notebook():
    prediction = ca.predict(ca.load_scenario("standard"))
    assert repr(prediction).startswith(f"Prediction({prediction.structure}, fitness=")
    text = str(prediction)
    assert text.splitlines()[0] == f"predicted: {prediction.structure}"
    assert "margin" in text and len(repr(prediction)) < 200


def test_predict_can_route_with_learned_keys_and_says_so():
    result = runner.invoke(app, ["predict", STANDARD, "--keys", "learned"])
    assert result.exit_code == 0, result.output
    assert "note: keys: where noiseless key learning settles" in result.output
    result = runner.invoke(app, ["predict", STANDARD, "--keys", "trained"])
    assert result.exit_code == 2 and "--keys must be birth or learned" in result.output


def test_predict_with_the_path_prints_the_chain_or_says_there_is_none():
    result = runner.invoke(app, ["predict", STANDARD, "--path", "--json"])
    assert result.exit_code == 0, result.output
    path = json.loads(result.output)["end"]["path"]
    assert len(path["states"]) == 4 and path["states"][-1].startswith("conditional_policy[")
    assert sum(path["occupation"]) == pytest.approx(1.0, abs=1e-3)
    similar_file = ROOT / "scenarios" / "cell_generalist_similar.toml"
    similar = runner.invoke(app, ["predict", str(similar_file), "--path"])
    assert similar.exit_code == 0, similar.output
    assert "the path: no router is predicted" in similar.output


def test_routing_tables_are_stored_as_arrow_maps_and_read_back_as_dicts(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    result = ca.run("standard", seed=2, steps=200, progress=False)
    result.save(tmp_path / "run")
    schema = pq.read_schema(tmp_path / "run" / "phases.parquet")
    for column in ("routing", "mechanism_rewards"):
        kind = schema.field(column).type
        assert pa.types.is_map(kind), kind
        assert (kind.key_type, kind.item_type) == (pa.string(), pa.float64())
    again = ca.load_run(tmp_path / "run")
    first = again.phases.routing.iloc[0]
    assert isinstance(first, dict) and sum(first.values()) == pytest.approx(1.0)
    assert list(again.phases.routing) == list(result.phases.routing)


def test_runs_saved_with_routing_as_json_text_still_load(tmp_path):
    import json

    from circuits_abm.experiments.storage import write_parquet

    result = ca.run("standard", seed=2, steps=200, progress=False)
    result.save(tmp_path / "run")
    old = result.phases.copy()
    for column in ("routing", "mechanism_rewards"):
        old[column] = [json.dumps(cell, sort_keys=True) for cell in old[column]]
    write_parquet(tmp_path / "run" / "phases.parquet", old)
    again = ca.load_run(tmp_path / "run")
    assert list(again.phases.mechanism_rewards) == list(result.phases.mechanism_rewards)
    assert again.summary["regime"] == result.summary["regime"]
