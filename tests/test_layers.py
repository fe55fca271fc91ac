"""The package's layers, read from its imports: data flows one way, from the engine up.

engine -> analysis -> experiments -> viz -> cli (and the public API in ``__init__``).
A module may import from its own layer and the layers below it, never from one above,
whether at the top of the file or inside a function.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "circuits_abm"
ORDER = ["defaults", "engine", "analysis", "experiments", "viz", "reward_seeking", "cli"]


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "circuits_abm" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in ORDER else None


def imported_modules(path: Path) -> set[str]:
    """Every ``circuits_abm...`` module the file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m.startswith("circuits_abm")}


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if layer_of(
    "circuits_abm." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts)))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_from_a_layer_above_its_own(path):
    own = layer_of("circuits_abm." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
    above = {
        module for module in imported_modules(path)
        if layer_of(module) and ORDER.index(layer_of(module)) > ORDER.index(own)
    }
    assert not above, f"{path.name} ({own}) imports from a layer above it: {sorted(above)}"


def test_the_check_sees_the_layers():
    assert {layer_of(m) for m in ("circuits_abm.engine.model", "circuits_abm.viz.figures")} == {
        "engine", "viz"}
    engine_model = PACKAGE / "engine" / "model.py"
    assert "circuits_abm.engine.steps" in imported_modules(engine_model)
    assert len(SOURCES) > 25
