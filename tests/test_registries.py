"""The registries are the only place a learning rule or a variation operator is defined:
a copy of the package with one rule added to ``engine/rules.py`` runs it end to end."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from circuits_abm.engine.rules import LETTER_RULES, REGISTRY, RULES
from circuits_abm.engine.scenario import Scenario
from circuits_abm.engine.variation import DEFAULT_OPERATOR_WEIGHTS, OPERATORS, PARAMETER_ONLY

ROOT = Path(__file__).resolve().parents[1]

NEW_RULE = '''

class SteadyRule(RuleSettings):
    """A test rule: slower than naive, faster than generalist, no consolidation."""

    learning_rate: LearningRate = 0.1


REGISTRY["steady"] = LearningRule("steady", "s", SteadyRule)
RULES = tuple(REGISTRY)
RULE_LETTERS = {rule.name: rule.letter for rule in REGISTRY.values()}
LETTER_RULES = {rule.letter: rule.name for rule in REGISTRY.values()}
'''

PROBE = '''
import json
import circuits_abm as ca
spec = ca.load_scenario("standard")
spec = ca.override(spec, {"population.initial": ["R[s,n]", "s", "g"],
                          "circuits.steady.learning_rate": 0.12})
result = ca.run(spec, seed=4, steps=400, progress=False)
kinds = set(result.timeseries["kind"]) if "kind" in result.timeseries else set()
print(json.dumps({"kinds": sorted(kinds), "regime": result.summary["regime"],
                  "rules": ca.predict(spec).best.parts[0].rule,
                  "rate": spec.circuits.steady.learning_rate, "file": ca.__file__}))
'''


def test_the_registries_agree_with_what_the_schema_and_grammar_accept():
    assert set(LETTER_RULES.values()) == set(RULES) == set(REGISTRY)
    assert set(Scenario.model_fields["circuits"].annotation.model_fields) == {*RULES, "router"}
    assert list(DEFAULT_OPERATOR_WEIGHTS) == list(OPERATORS)  # the order seeds reproduce
    assert {"mutate", "perturb_sharpness"} == PARAMETER_ONLY


@pytest.mark.slow
def test_a_rule_added_to_the_registry_alone_runs_end_to_end(tmp_path):
    copy = tmp_path / "circuits_abm"
    shutil.copytree(ROOT / "circuits_abm", copy,
                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    rules = copy / "engine" / "rules.py"
    rules.write_text(rules.read_text() + NEW_RULE)
    for folder in ("scenarios", "sweeps"):  # the built-ins the package maps in
        shutil.copytree(ROOT / folder, copy / "builtin" / folder)
    found = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True,
                           text=True, timeout=600, env={"PYTHONPATH": str(tmp_path),
                                                        "PATH": "/usr/bin:/bin"})
    assert found.returncode == 0, found.stderr[-2000:]
    report = json.loads(found.stdout.strip().splitlines()[-1])
    assert report["file"].startswith(str(tmp_path))  # the copy ran, not the installed package
    assert report["rate"] == 0.12
    assert "steady" in report["kinds"]
    assert report["rules"] in {*RULES, "steady"}
