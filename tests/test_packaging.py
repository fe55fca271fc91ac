"""The built wheel, installed into a fresh virtual environment outside the repository,
runs a built-in scenario and draws its figures: what a user who pip-installs gets.

Only the wheel is installed there; its dependencies are the development environment's,
seen through a ``.pth`` file (installing the lock's 150 packages again would take a minute
and a half, and ``make venv`` installs them already).  The wheel's own copy of the package
comes first on the path, so that is the one tested.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig

import pytest
from helpers import ROOT

pytestmark = pytest.mark.slow


def sh(*args, cwd=None) -> str:
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_the_wheel_runs_a_built_in_scenario_outside_the_repository(tmp_path):
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", tmp_path / "dist",
       ROOT)
    wheel = next((tmp_path / "dist").glob("circuits_abm-*.whl"))
    sh(sys.executable, "-m", "venv", "--without-pip", tmp_path / "venv")
    site = next((tmp_path / "venv" / "lib").glob("python3*/site-packages"))
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = tmp_path / "venv" / "bin" / "python"
    sh(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", wheel)
    cli = tmp_path / "venv" / "bin" / "circuits-abm"
    work = tmp_path / "elsewhere"
    work.mkdir()
    assert "standard" in sh(cli, "list", cwd=work)
    sh(cli, "run", "standard", "--steps", "200", "--out", "run", "--quiet", cwd=work)
    sh(cli, "figures", "run", "run", cwd=work)
    assert (work / "run" / "figures" / "summary.png").stat().st_size > 10_000
    out = sh(python, "-c", "import circuits_abm as ca; print(ca.load_scenario('quarantine').name,"
             " ca.__file__)",
             cwd=work)
    name, module = out.split()
    assert name == "quarantine" and module.startswith(str(tmp_path / "venv"))  # the wheel's
    # Started in the clone's root, Python imports the clone's package, not the wheel's: the
    # built-in scenarios must still be found (they are not subpackages there).
    code = ("import circuits_abm as ca; m = ca.CircuitsModel(); "
            f"print(m.spec.name, ca.__file__.startswith({str(ROOT)!r}))")
    assert sh(python, "-c", code, cwd=ROOT).split() == ["standard", "True"]


def test_every_package_of_the_source_tree_is_in_the_wheel():
    """pyproject.toml lists the packages by hand (the built-in folders are mapped in), so a
    new subpackage must be added there; a wheel without it fails only at import time."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    source = {".".join(p.parent.relative_to(ROOT).parts)
              for p in (ROOT / "circuits_abm").rglob("__init__.py")}
    assert source <= listed, f"not in pyproject.toml's packages: {sorted(source - listed)}"
