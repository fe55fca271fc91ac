"""The built wheel, installed into a fresh virtual environment outside the repository,
runs a built-in scenario and draws its figures: what a user who pip-installs gets."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow


def sh(*args, cwd=None) -> str:
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_the_wheel_runs_a_built_in_scenario_outside_the_repository(tmp_path):
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", tmp_path / "dist",
       ROOT)
    wheel = next((tmp_path / "dist").glob("circuits_abm-*.whl"))
    sh(sys.executable, "-m", "venv", tmp_path / "venv")
    pip = tmp_path / "venv" / "bin" / "pip"
    sh(pip, "install", "--quiet", "--require-hashes", "-r", ROOT / "requirements-dev.lock")
    sh(pip, "install", "--quiet", "--no-deps", wheel)
    cli = tmp_path / "venv" / "bin" / "circuits-abm"
    work = tmp_path / "elsewhere"
    work.mkdir()
    assert "standard" in sh(cli, "list", cwd=work)
    sh(cli, "run", "standard", "--steps", "200", "--out", "run", "--quiet", cwd=work)
    sh(cli, "figures", "run", "run", cwd=work)
    assert (work / "run" / "figures" / "summary.png").stat().st_size > 10_000
    python = tmp_path / "venv" / "bin" / "python"
    out = sh(python, "-c", "import circuits_abm as ca; print(ca.load_scenario('quarantine').name)",
             cwd=work)
    assert out.strip() == "quarantine"
