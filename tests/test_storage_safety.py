"""Output files are written without touching the process's umask and never through a
symbolic link, and the sweep journal is standard JSON that refuses lines it did not write."""

from __future__ import annotations

import json
import math
import os
import re
import stat

import pytest

from circuits_abm.experiments import storage
from circuits_abm.experiments.storage import (
    OutputError,
    append_durably,
    atomic_write_bytes,
    folder_lock,
    read_json_line,
    strict_json_line,
)


def test_files_get_the_umask_mode_without_anyone_changing_the_umask(tmp_path, monkeypatch):
    current = os.umask(0o027)
    os.umask(0o027)
    try:
        def forbidden(_mask):
            raise AssertionError("the process-wide umask must not be read or changed")

        monkeypatch.setattr(os, "umask", forbidden)
        atomic_write_bytes(tmp_path / "a.json", b"{}")
        assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o640  # 0o666 & ~0o027
    finally:
        monkeypatch.undo()
        os.umask(current)
    assert not hasattr(storage, "FILE_MODE")


def test_no_write_goes_through_a_symbolic_link(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / storage.LOCK).symlink_to(outside / "lock")
    with pytest.raises(OutputError, match="symbolic link"), folder_lock(folder):
        pass
    (folder / "runs.jsonl").symlink_to(outside / "journal")
    with pytest.raises(OutputError, match="symbolic link"):
        append_durably(folder / "runs.jsonl", "x\n")
    target = outside / "summary.json"
    target.write_text("theirs")
    (folder / "summary.json").symlink_to(target)
    atomic_write_bytes(folder / "summary.json", b"ours")  # replaces the link itself
    assert not (folder / "summary.json").is_symlink()
    assert (folder / "summary.json").read_text() == "ours" and target.read_text() == "theirs"
    assert sorted(p.name for p in outside.iterdir()) == ["summary.json"]


def test_journal_lines_are_standard_json_and_keep_infinities():
    record = {"run_id": "a", "margin": math.inf, "low": -math.inf, "gap": math.nan,
              "nested": [1.0, {"x": math.inf}]}
    line = strict_json_line(record)
    json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    back = read_json_line(line)
    assert back["margin"] == math.inf and back["low"] == -math.inf and math.isnan(back["gap"])
    assert back["nested"] == [1.0, {"x": math.inf}]


def test_a_journal_line_that_is_not_a_run_record_is_refused_with_its_number(tmp_path):
    from circuits_abm.experiments.sweep.journal import SweepStore

    store = SweepStore(tmp_path)
    store.journal.write_text(strict_json_line({"run_id": "a"}) + "\n5\n")
    with pytest.raises(OutputError, match="line 2: not a run record"):
        store.finished()


@pytest.mark.parametrize("call, field", [
    (lambda ca: ca.run("standard", steps=0, progress=False), "`steps`: 0"),
    (lambda ca: ca.run("standard", steps=True, progress=False), "`steps`: True"),
    (lambda ca: ca.CircuitsModel("standard", steps=10**12), "`steps`: 1000000000000"),
    (lambda ca: ca.run(123, progress=False), "not a int"),
    (lambda ca: ca.override(ca.load_scenario("standard"), 5), "not a int"),
])
def test_api_misuse_gets_a_scenario_error_naming_what_is_allowed(call, field):
    import circuits_abm as ca

    with pytest.raises(ca.ScenarioError, match=re.escape(field)):
        call(ca)


def test_overwriting_a_run_removes_what_the_old_run_wrote(tmp_path):
    # A quarantine run, then a run without motivations over it with --overwrite: no stale
    # quarantine table or figures survive to be read as the new run's.
    from typer.testing import CliRunner

    import circuits_abm as ca
    from circuits_abm.cli import app

    out = tmp_path / "run"
    runner = CliRunner()
    for name in ("quarantine", "standard"):
        result = runner.invoke(app, ["run", name, "--steps", "120", "--out", str(out),
                                     "--quiet", "--overwrite"])
        assert result.exit_code == 0, result.output
        if name == "quarantine":
            (out / "figures").mkdir()
            (out / "figures" / "summary.png").write_bytes(b"old")
            (out / "notes.txt").write_text("mine")
    assert not (out / "quarantine.parquet").exists() and not (out / "figures").exists()
    assert (out / "notes.txt").read_text() == "mine"
    assert ca.load_run(out).quarantine.empty
