"""Fuzzing the scenario file: random TOML, valid and invalid, through the CLI.

Whatever hypothesis writes, ``circuits-abm run`` ends in one of two ways: a clean run (exit 0,
the run's files written) or a clean refusal (exit 2, a message that starts with "error:", no
traceback, nothing written).  Runs are capped at 40 steps and five environments, so memory
and time stay bounded whatever the file asks for.
"""

from __future__ import annotations

import json
import math
from itertools import count

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from circuits_abm.cli import app

runner = CliRunner()
NAMES = ["a", "b", "c", "rl", "9bad", "", "a b"]
NUMBERS = st.one_of(
    st.floats(-2.0, 2.0),
    st.sampled_from([0.0, 1.0, -1.0, 1e9, -1e9, math.inf, -math.inf, math.nan, 1e-300]),
    st.integers(-5, 20),
)


def toml_value(value) -> str:
    """A TOML literal for the simple values used here (inline tables for nesting)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    items = ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items())
    return "{" + items + "}"


environment = st.fixed_dictionaries(
    {"name": st.sampled_from(NAMES)},
    optional={
        "held_out": st.booleans(),
        "kind": st.sampled_from(["rl", "sft", "eval", "other", "weird"]),
        "cluster": st.sampled_from(["x", "y"]),
        "motivations": st.dictionaries(st.sampled_from(["hack", "greed"]), NUMBERS, max_size=2),
        "colour": st.just("red"),
    },
)
scenario = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["fuzz", "bad name!", ""]),
        "environments": st.lists(environment, min_size=0, max_size=5),
    },
    optional={
        "steps": st.integers(-3, 10**13),
        "seed": st.integers(-3, 2**64),
        "motivations": st.lists(st.fixed_dictionaries({"name": st.sampled_from(["hack", "1"])},
                                                      optional={"upkeep": NUMBERS}), max_size=2),
        "monitor": st.fixed_dictionaries({}, optional={
            "rule": st.sampled_from(["plain", "block", "route", "erase"]),
            "angle": NUMBERS, "alarm": NUMBERS,
            "discard": st.one_of(st.sampled_from(["end", "never", "later"]), st.integers(-2, 99)),
        }),
        "geometry": st.fixed_dictionaries({}, optional={
            "sharing": NUMBERS, "distinguishability": NUMBERS, "distance_length": NUMBERS,
        }),
        "schedule": st.fixed_dictionaries({}, optional={
            "order": st.sampled_from(["cycle", "walk", "uniform", "sequence", "random"]),
            "phase_length": st.integers(-2, 10**9),
            "sequence": st.lists(st.sampled_from(NAMES), max_size=3),
            "phase_length_distribution": st.sampled_from(["fixed", "geometric", "poisson"]),
        }),
        "costs": st.fixed_dictionaries({}, optional={"per_mechanism": NUMBERS,
                                                     "per_sharpness": NUMBERS}),
        "selection": st.fixed_dictionaries({}, optional={"strength": NUMBERS,
                                                         "extinction_floor": NUMBERS}),
        "learning": st.fixed_dictionaries({}, optional={"noise": NUMBERS, "gamma": NUMBERS}),
        "variation": st.fixed_dictionaries({}, optional={"rate": NUMBERS,
                                                         "offspring_share": NUMBERS}),
        "circuits": st.fixed_dictionaries({}, optional={
            "generalist": st.fixed_dictionaries({}, optional={"learning_rate": NUMBERS}),
            "router": st.fixed_dictionaries({}, optional={"initial_sharpness": NUMBERS,
                                                          "max_sharpness": NUMBERS}),
        }),
        "population": st.fixed_dictionaries({"initial": st.lists(
            st.sampled_from(["n", "g", "w", "R[n,g]", "R[n]", "R[", "x", "R[R[n,n],w]"]),
            max_size=3)}),
        "mystery": st.just(1),
    },
)
VALID = st.floats(0.0, 0.9)
tame = st.fixed_dictionaries(
    {
        "name": st.just("fuzz"),
        "environments": st.lists(
            st.fixed_dictionaries({"name": st.sampled_from(["a", "b", "c", "d", "e"])},
                                  optional={"held_out": st.booleans(),
                                            "cluster": st.sampled_from(["x", "y"]),
                                            "motivations": st.fixed_dictionaries(
                                                {"hack": st.floats(-1, 1)})}),
            min_size=1, max_size=5, unique_by=lambda e: e["name"]),
    },
    optional={
        "motivations": st.just([{"name": "hack"}]),
        "monitor": st.fixed_dictionaries({"rule": st.sampled_from(["plain", "block", "route"])},
                                         optional={"angle": st.floats(0, 90)}),
        "geometry": st.fixed_dictionaries({"sharing": VALID, "distinguishability": VALID}),
        "schedule": st.fixed_dictionaries({"order": st.sampled_from(["cycle", "uniform"]),
                                           "phase_length": st.integers(1, 30)}),
        "learning": st.fixed_dictionaries({"noise": st.floats(0, 3), "gamma": VALID}),
        "variation": st.fixed_dictionaries({"rate": st.floats(0, 2)}),
        "population": st.fixed_dictionaries({"initial": st.lists(
            st.sampled_from(["n", "g", "w", "R[n,g]", "R[R[n,n],w]"]), min_size=1, max_size=3)}),
    },
)
examples = count()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.one_of(scenario, tame))
def test_any_scenario_file_runs_cleanly_or_is_refused_cleanly(tmp_path, data):
    k = next(examples)
    path = tmp_path / f"fuzz{k}.toml"
    path.write_text("\n".join(f"{key} = {toml_value(value)}" for key, value in data.items()))
    out = tmp_path / f"out{k}"
    result = runner.invoke(app, ["run", str(path), "--steps", "40", "--out", str(out), "--quiet"])
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        assert (out / "summary.json").is_file()
        return
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.output.startswith("error:"), result.output
    assert not out.exists() or not any(out.iterdir())


AXIS_PATHS = ["geometry.sharing", "geometry.distinguishability", "schedule.phase_length",
              "records.every", "environments.count", "learning.gamma", "nowhere.at_all",
              "environments.9.held_out"]
HUGE = st.sampled_from([0, -1, 1, 3, 10**5, 10**7, 10**9, 10**18, True, "3", 2.5])
axis = st.one_of(
    st.fixed_dictionaries({"values": st.lists(st.one_of(NUMBERS, st.booleans(),
                                                        st.just("x")), max_size=4)}),
    st.fixed_dictionaries({"linspace": st.tuples(NUMBERS, NUMBERS, HUGE).map(list)}),
    st.fixed_dictionaries({"logspace": st.tuples(NUMBERS, NUMBERS, HUGE).map(list)}),
    st.fixed_dictionaries({"range": st.tuples(NUMBERS, NUMBERS).map(list)},
                          optional={"scale": st.sampled_from(["linear", "log", "cubic"]),
                                    "integer": st.booleans()}),
)
sweep = st.fixed_dictionaries(
    {"name": st.sampled_from(["fuzz", "bad name!"]),
     "base": st.sampled_from(["standard", "two_clusters", "no_such_scenario"]),
     "axes": st.dictionaries(st.sampled_from(AXIS_PATHS), axis, max_size=3)},
    optional={
        "seeds": HUGE, "steps": HUGE, "root_seed": HUGE, "samples": HUGE,
        "design": st.sampled_from(["grid", "latin_hypercube", "sobol", "saltelli", "morris",
                                   "random"]),
        "overrides": st.dictionaries(st.sampled_from(AXIS_PATHS), NUMBERS, max_size=2),
    },
)


COUNTS = st.sampled_from([1, 2, 7, 10**3, 10**5, 10**6])
tame_sweep = st.fixed_dictionaries(
    {"name": st.just("fuzz"), "base": st.sampled_from(["standard", "two_clusters"]),
     "axes": st.dictionaries(
         st.sampled_from(["geometry.sharing", "geometry.distinguishability"]),
         st.one_of(st.fixed_dictionaries({"values": st.lists(VALID, min_size=1, max_size=4)}),
                   st.fixed_dictionaries({"linspace": st.tuples(
                       st.just(0.0), st.just(0.9), COUNTS).map(list)})),
         min_size=1, max_size=2)},
    optional={"seeds": COUNTS, "steps": st.sampled_from([50, 10**5, 10**6, 10**7]),
              "overrides": st.fixed_dictionaries({}, optional={
                  "records.every": st.sampled_from([1, 5, 1000]),
                  "schedule.phase_length": st.sampled_from([1, 10, 10**4])})},
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.one_of(sweep, tame_sweep))
def test_any_sweep_file_loads_within_the_caps_or_is_refused_cleanly(tmp_path, data):
    """Whatever the sweep file asks for, loading it gives a ScenarioError or a sweep within
    the caps: at most MAX_SWEEP_RUNS runs, each of at most MAX_STEPS steps and whose
    records fit in memory.  (Loading builds every task, so an uncapped design would show
    here as a blow-up; running is the scenario fuzz test's job.)"""
    from circuits_abm.defaults import MAX_RECORDS, MAX_STEPS, MAX_SWEEP_RUNS  # noqa: PLC0415
    from circuits_abm.engine.loading import scenario_from_dict  # noqa: PLC0415
    from circuits_abm.engine.scenario import ScenarioError  # noqa: PLC0415
    from circuits_abm.engine.validation import record_count  # noqa: PLC0415
    from circuits_abm.experiments.sweep.spec import load_sweep  # noqa: PLC0415

    path = tmp_path / f"sweep{next(examples)}.toml"
    lines = [f"{k} = {toml_value(v)}" for k, v in data.items() if k not in ("axes", "overrides")]
    for name, table in (("overrides", data.get("overrides", {})),):
        lines += [f"[{name}]"] + [f'"{k}" = {toml_value(v)}' for k, v in table.items()]
    for key, spec in data["axes"].items():
        lines += [f'[axes."{key}"]'] + [f"{k} = {toml_value(v)}" for k, v in spec.items()]
    path.write_text("\n".join(lines) + "\n")
    try:
        loaded = load_sweep(path)
    except ScenarioError as exc:
        assert str(exc).startswith("invalid scenario"), exc
        event("refused")
        return
    event("loaded")
    assert 0 < len(loaded.tasks) <= MAX_SWEEP_RUNS
    for task in loaded.tasks[:50]:
        scenario = scenario_from_dict(task["scenario"])
        steps = task["steps"] or scenario.steps
        assert steps <= MAX_STEPS
        assert record_count(scenario, steps) <= MAX_RECORDS
