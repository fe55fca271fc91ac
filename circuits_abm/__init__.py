"""circuits_abm: which internal structure does selection produce when training switches objectives?

Public API (see README): :func:`load_scenario`, :func:`override`, :func:`run`,
:func:`load_run`, :class:`RunResult`, :class:`CircuitsModel`, :class:`Scenario`,
:class:`ScenarioError`, :func:`sweep`, :func:`load_sweep`, :func:`run_sweep`,
:func:`load_results`, :func:`predict`, :func:`classify`.

The names are imported on first use (PEP 562), so ``import circuits_abm`` is quick and a
command line that only prints help never loads numpy, Mesa, Numba or pandas.
"""

from importlib import import_module

_HOMES = {
    "CircuitsModel": "circuits_abm.model",
    "RunResult": "circuits_abm.api",
    "load_run": "circuits_abm.api",
    "run": "circuits_abm.api",
    "sweep": "circuits_abm.api",
    "Scenario": "circuits_abm.scenario",
    "ScenarioError": "circuits_abm.scenario",
    "load_scenario": "circuits_abm.scenario",
    "override": "circuits_abm.scenario",
    "load_sweep": "circuits_abm.sweeps",
    "run_sweep": "circuits_abm.sweeps",
    "load_results": "circuits_abm.sweeps",
    "predict": "circuits_abm.theory",
    "classify": "circuits_abm.classification",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'circuits_abm' has no attribute {name!r}")
    value = getattr(import_module(_HOMES[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
