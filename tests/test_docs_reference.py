"""The docs document every scenario and experiment field (the reference cannot drift from
the schema)."""

from __future__ import annotations

from helpers import ROOT
from pydantic import BaseModel

from circuits_abm.engine.scenario import Scenario


def field_names(model: type[BaseModel], prefix: str = "") -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        names.append(prefix + name)
        annotation = field.annotation
        keyed = getattr(annotation, "__origin__", None) is dict  # tables keyed by a user name
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                inner = f"{prefix}{name}.<name>." if keyed else f"{prefix}{name}."
                names.extend(field_names(candidate, inner))
    return names


def test_every_scenario_field_is_in_the_scenario_reference():
    readme = (ROOT / "docs" / "scenarios.md").read_text()
    missing = []
    for dotted in field_names(Scenario):
        leaf = dotted.split(".")[-1]
        parts = dotted.split(".")
        generic = ".".join(
            ["<rule>" if p in ("naive", "weighted", "generalist") else p for p in parts]
        )
        if not any(form in readme for form in (dotted, generic, f"`{leaf} =", f"{leaf} = ")):
            missing.append(dotted)
    assert not missing, f"undocumented scenario fields: {missing}"


def test_every_reward_seeking_experiment_field_is_in_its_docs():
    from circuits_abm.reward_seeking.experiments import KINDS  # noqa: PLC0415

    readme = (ROOT / "docs" / "reward_seeking.md").read_text()
    leaves = {dotted.split(".")[-1] for model in KINDS.values() for dotted in field_names(model)}
    documented = {leaf for leaf in leaves if f"`{leaf}" in readme or f"`[{leaf}]`" in readme}
    missing = sorted(leaves - documented)
    assert not missing, f"undocumented experiment fields: {missing}"
