"""circuits_abm: which internal structure does selection produce when training switches objectives?

Public API (see README): ``load_scenario``, ``override``, ``run``,
``load_run``, ``RunResult``, ``CircuitsModel``, ``Scenario``,
``ScenarioError``, ``sweep``, ``load_sweep``, ``run_sweep``,
``load_results``, ``predict``, ``path_prediction``, ``classify``, ``sensitivity_indices``,
``discover_regime``; and ``neural``, the module of neural runs (``ca.neural.run``).

The names are imported on first use (PEP 562), so ``import circuits_abm`` is quick and a
command line that only prints help never loads numpy, Mesa, Numba or pandas.
"""

from importlib import import_module

_HOMES = {
    "CircuitsModel": "circuits_abm.engine.model",
    "RunResult": "circuits_abm.experiments.runs",
    "load_run": "circuits_abm.experiments.runs",
    "run": "circuits_abm.experiments.runs",
    "sweep": "circuits_abm.experiments.sweep",
    "Scenario": "circuits_abm.engine.scenario",
    "ScenarioError": "circuits_abm.engine.scenario",
    "load_scenario": "circuits_abm.engine.loading",
    "override": "circuits_abm.engine.loading",
    "load_sweep": "circuits_abm.experiments.sweep",
    "run_sweep": "circuits_abm.experiments.sweep",
    "load_results": "circuits_abm.experiments.sweep",
    "predict": "circuits_abm.analysis.theory",
    "path_prediction": "circuits_abm.analysis.assembly",
    "classify": "circuits_abm.analysis.classification",
    "sensitivity_indices": "circuits_abm.experiments.analyse",
    "discover_regime": "circuits_abm.experiments.analyse",
}
__all__ = sorted(_HOMES)  # and ``neural``, the module of neural runs (``ca.neural.run``)


# Modules of the API, reached as ``ca.<name>``: ``ca.neural.run`` trains a network.
_MODULES = {"neural": "circuits_abm.experiments.neural"}


def __getattr__(name: str):
    if name in _MODULES:
        value = import_module(_MODULES[name])
        globals()[name] = value
        return value
    if name not in _HOMES:
        raise AttributeError(f"module 'circuits_abm' has no attribute {name!r}")
    value = getattr(import_module(_HOMES[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES, *_MODULES])
