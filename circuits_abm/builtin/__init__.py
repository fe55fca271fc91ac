"""The built-in scenario and sweep files, shipped with the package.

They live at the repository's top level (``scenarios/``, ``sweeps/``) and are installed as
``circuits_abm.builtin.scenarios`` and ``circuits_abm.builtin.sweeps`` (see pyproject.toml),
so a bare name works wherever the package is installed: ``circuits-abm run standard``,
``ca.load_scenario("standard")``.  Python started in a clone's root imports the clone's
``circuits_abm/`` rather than the installed copy, and there these folders are not
subpackages; they are then read from the clone's top level.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

KINDS = {
    "scenario": "circuits_abm.builtin.scenarios",
    "sweep": "circuits_abm.builtin.sweeps",
    "experiment": "circuits_abm.builtin.scenarios.reward_seeking",
}


# Where the same folders sit in a source tree, relative to its top level.
SOURCE_FOLDERS = {
    "scenario": "scenarios",
    "sweep": "sweeps",
    "experiment": "scenarios/reward_seeking",
}


def folder(kind: str) -> Traversable:
    """The installed folder of built-in ``kind`` files (``scenario``, ``sweep`` or the
    reward-seeking ``experiment``), or the source tree's when this copy of the package
    was imported from a clone."""
    try:
        return files(KINDS[kind])
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / SOURCE_FOLDERS[kind]


def names(kind: str) -> list[str]:
    """Names of the built-in files of ``kind`` (file names without ``.toml``)."""
    return sorted(p.name[: -len(".toml")] for p in folder(kind).iterdir()
                  if p.name.endswith(".toml"))


def find(kind: str, name: str) -> Traversable | None:
    """The built-in file called ``name`` (``reward_seeking/single`` reaches a subfolder), or
    None."""
    candidate = folder(kind).joinpath(*f"{name}.toml".split("/"))
    return candidate if candidate.is_file() else None
