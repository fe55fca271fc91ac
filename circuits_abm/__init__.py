"""circuits_abm: which internal structure does selection produce when training switches objectives?

Public API (see README): :func:`load_scenario`, :func:`run`, :func:`load_run`,
:class:`RunResult`, :class:`CircuitsModel`, :class:`ScenarioError`.
"""

from circuits_abm.api import RunResult, load_run, run
from circuits_abm.model import CircuitsModel
from circuits_abm.scenario import Scenario, ScenarioError, load_scenario

__all__ = [
    "CircuitsModel",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "load_run",
    "load_scenario",
    "run",
]
