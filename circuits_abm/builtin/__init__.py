"""The built-in scenario and sweep files, shipped with the package.

They live at the repository's top level (``scenarios/``, ``sweeps/``) and are installed as
``circuits_abm.builtin.scenarios`` and ``circuits_abm.builtin.sweeps`` (see pyproject.toml),
so a bare name works wherever the package is installed: ``circuits-abm run standard``,
``ca.load_scenario("standard")``.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

KINDS = {
    "scenario": "circuits_abm.builtin.scenarios",
    "sweep": "circuits_abm.builtin.sweeps",
    "experiment": "circuits_abm.builtin.scenarios.reward_seeking",
}


def folder(kind: str) -> Traversable:
    """The installed folder of built-in ``kind`` files (``scenario``, ``sweep`` or the
    reward-seeking ``experiment``)."""
    return files(KINDS[kind])


def names(kind: str) -> list[str]:
    """Names of the built-in files of ``kind`` (file names without ``.toml``)."""
    return sorted(p.name[: -len(".toml")] for p in folder(kind).iterdir()
                  if p.name.endswith(".toml"))


def find(kind: str, name: str) -> Traversable | None:
    """The built-in file called ``name`` (``reward_seeking/single`` reaches a subfolder), or
    None."""
    candidate = folder(kind).joinpath(*f"{name}.toml".split("/"))
    return candidate if candidate.is_file() else None
