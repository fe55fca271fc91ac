"""Every learning rule and every variation operator passes its contract (contracts.py)."""

from __future__ import annotations

from contracts import OperatorContract, RuleContract

from circuits_abm.engine.rules import RULES
from circuits_abm.engine.variation import OPERATORS


class TestNaive(RuleContract):
    rule = "naive"


class TestWeighted(RuleContract):
    rule = "weighted"


class TestGeneralist(RuleContract):
    rule = "generalist"


class TestSplit(OperatorContract):
    operator = "split"


class TestAddChild(OperatorContract):
    operator = "add_child"


class TestDuplicateChild(OperatorContract):
    operator = "duplicate_child"


class TestRemoveChild(OperatorContract):
    operator = "remove_child"


class TestMutate(OperatorContract):
    operator = "mutate"


class TestCollapse(OperatorContract):
    operator = "collapse"


class TestSwitchRule(OperatorContract):
    operator = "switch_rule"


class TestPerturbSharpness(OperatorContract):
    operator = "perturb_sharpness"


def test_every_registry_entry_has_a_contract():
    """A rule or operator added to a registry without a contract class fails here."""
    rules = {cls.rule for cls in RuleContract.__subclasses__()}
    operators = {cls.operator for cls in OperatorContract.__subclasses__()}
    assert rules == set(RULES)
    assert operators == set(OPERATORS)
