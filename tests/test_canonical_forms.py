"""One form of a structure line everywhere: ``regimes.canonical`` by hand, the same form as
the classifier's, the catalogue comparing expectations in any order, the summary storing
the canonical form, and ``validate`` refusing an expectation that does not parse."""

from __future__ import annotations

from helpers import ROOT
from typer.testing import CliRunner

from circuits_abm.analysis.classification import classify
from circuits_abm.cli import app
from circuits_abm.engine.loading import load_scenario, override
from circuits_abm.experiments.catalogue import expectation_problems, outcome_of
from circuits_abm.experiments.runs import run
from circuits_abm.regimes import canonical


def test_the_canonical_form_sorts_and_merges_by_hand():
    line = ("conditional_policy[specialist{b}, conditional_policy[strategy_churn{e,d}, "
            "specialist{a}], ecological_generalist{c}]")
    assert canonical(line) == ("conditional_policy[ecological_generalist{c}, specialist{a}, "
                               "specialist{b}, strategy_churn{d,e}]")
    # a part that is not a conditional policy sorts its environments
    assert canonical("strategy_churn{b,a}") == "strategy_churn{a,b}"


def test_the_canonical_form_of_a_classified_line_is_the_classifiers_own():
    for name, seed in (("standard", 1), ("nested_churn_clusters", 2), ("two_clusters", 3)):
        result = classify(run(name, seed=seed, steps=2400, progress=False).phases)
        assert canonical(result.structure) == result.canonical


def test_the_catalogue_compares_expectations_in_any_order_and_summaries_store_one_form():
    spec = override(load_scenario("quarantine"), {
        "expected": "ecological_generalist{sft_chat,rl_secure,rl_hack_math,rl_hack_code}"})
    result = run(spec, seed=4, steps=600, progress=False)
    outcome = outcome_of(spec, 4, result.phases)
    assert outcome.expected == "ecological_generalist{rl_hack_code,rl_hack_math,rl_secure,sft_chat}"
    assert outcome.matches == (outcome.observed == outcome.expected)
    assert result.summary["structure"] == canonical(result.summary["structure_raw"])


def test_an_expectation_that_does_not_parse_or_names_no_environment_is_refused(tmp_path):
    spec = load_scenario("quarantine")
    assert expectation_problems(spec) == []
    unknown = override(spec, {"expected": "specialist{nowhere}"})
    assert "unknown environments ['nowhere']" in expectation_problems(unknown)[0]
    text = (ROOT / "scenarios" / "quarantine.toml").read_text()
    broken = tmp_path / "broken.toml"
    broken.write_text(text.replace('expected = "ecological_generalist{',
                                   'expected = "generalist{'))
    result = CliRunner().invoke(app, ["validate", str(broken)])
    assert result.exit_code == 2
    assert "`expected`" in result.output and "ecological_generalist" in result.output


def test_mean_fitness_weights_each_phase_by_its_length():
    # Two phases, one step at fitness 1 and nine steps at fitness 0: 1/10 per step, not 1/2.
    import pandas as pd

    from circuits_abm.analysis.classification import time_weighted_fitness

    window = pd.DataFrame({"phase": [0, 0, 1, 1], "start": [0, 0, 1, 1], "end": [1, 1, 10, 10],
                           "phase_mean_fitness": [1.0, 1.0, 0.0, 0.0]})
    assert time_weighted_fitness(window) == 0.1
