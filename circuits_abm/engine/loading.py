"""Loading scenarios: from a file or a built-in name, from a dict, or changed by dotted path.

Each way ends in ``scenario_from_dict``, which validates the fields (the schema and its
cross-field checks, ``circuits_abm.engine.scenario``) and then the geometry: overlaps that
no set of vectors can have, before or after any intervention, and structure strings that
do not parse.  Every problem comes back as one ``ScenarioError`` naming the source, the
field and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.random import default_rng as np_default_rng
from pydantic import ValidationError

from circuits_abm.defaults import MAX_STEPS
from circuits_abm.engine.circuits import parse_structure
from circuits_abm.engine.environments import (
    GeometryError,
    apply_intervention,
    build_environments,
)
from circuits_abm.engine.scenario import (
    Scenario,
    ScenarioError,
    describe_errors,
    read_toml,
    resolve,
    set_dotted,
)
from circuits_abm.engine.validation import record_problems


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file, or a built-in scenario by name.

    Parameters
    ----------
    path
        A TOML file, or the name of a built-in scenario (``circuits-abm list`` shows them).

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        If the file is missing or unreadable, or the scenario cannot run; the message names
        the file, every bad field and its allowed values.

    Examples
    --------
    >>> import circuits_abm as ca
    >>> ca.load_scenario("standard").geometry.sharing
    0.1
    """
    if not isinstance(path, str | Path):
        raise ScenarioError(repr(path), [
            f"a scenario is a Scenario, a TOML file or a built-in name, not a "
            f"{type(path).__name__}"])
    path = resolve(path)
    data = read_toml(path)
    return scenario_from_dict(data, source=str(path))


def run_length(steps: Any, spec: Scenario) -> int:
    """The number of steps a run of ``spec`` takes: ``spec.steps``, or ``steps`` when given,
    which must be a whole number from 1 to ``MAX_STEPS`` (``ScenarioError`` otherwise)."""
    if steps is None:
        return spec.steps
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or not (
            1 <= steps <= MAX_STEPS):
        raise ScenarioError("steps", [f"`steps`: {steps!r} is not allowed; a whole number "
                                      f"from 1 to {MAX_STEPS}"])
    problems = record_problems(spec, int(steps))
    if problems:
        raise ScenarioError(f"{spec.name}, {steps} steps", problems)
    return int(steps)


def scenario_from_dict(data: dict[str, Any], source: str = "<dict>") -> Scenario:
    """Validate a plain dict (as read from TOML) into a ``Scenario``, geometry included."""
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(source, describe_errors(exc)) from None
    problems = geometry_problems(scenario)
    if problems:
        raise ScenarioError(source, problems)
    return scenario


def override(spec: Scenario, changes: dict[str, Any]) -> Scenario:
    """A copy of ``spec`` with fields changed by dotted path, validated like a file.

    Parameters
    ----------
    spec
        The scenario to start from (it is not changed).
    changes
        ``{dotted path: value}``; integers index lists (``"environments.0.held_out"``).

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        If a path does not exist or the changed scenario cannot run.

    Examples
    --------
    >>> import circuits_abm as ca
    >>> spec = ca.override(ca.load_scenario("standard"), {"geometry.sharing": 0.9})
    >>> spec.geometry.sharing
    0.9
    """
    if not isinstance(changes, dict):
        raise ScenarioError(spec.name, [f"changes are a dict of dotted paths to values, such "
                                        f"as {{'geometry.sharing': 0.6}}, not a "
                                        f"{type(changes).__name__}"])
    data = spec.model_dump(mode="json")
    for path, value in changes.items():
        set_dotted(data, path, value)
    return scenario_from_dict(data, source=f"{spec.name} with {', '.join(changes)}")


def revalidated(spec: Scenario) -> Scenario:
    """``spec`` checked again from its fields (``model_copy(update=...)`` skips validation, so
    a copy can hold a plain dict where a table belongs, or an impossible combination)."""
    import warnings  # noqa: PLC0415

    with warnings.catch_warnings():  # pydantic warns when it serialises such a dict
        warnings.simplefilter("ignore")
        data = spec.model_dump(mode="python")
    return scenario_from_dict(data, source=f"scenario {spec.name}")


def geometry_problems(s: Scenario) -> list[str]:
    """Overlaps no vectors can have (before or after any intervention), bad structure strings."""
    problems: list[str] = []
    try:
        envs = build_environments(s)
        for i, iv in sorted(enumerate(s.interventions), key=lambda pair: pair[1].step):
            try:
                envs = apply_intervention(envs, iv)
            except GeometryError as exc:
                problems.append(f"`interventions.{i}`: {exc}")
                break
    except GeometryError as exc:
        problems.append(f"`geometry` / `edges`: {exc}")
    rng = np_default_rng(0)
    for i, text in enumerate(s.population.initial or []):
        try:
            parse_structure(text, 1, 1, 1.0, rng)
        except ValueError as exc:
            problems.append(f"`population.initial.{i}`: {exc}")
    return problems
