"""The package's layers, read from its imports: data flows one way, from the engine up.

engine -> analysis -> experiments -> viz -> cli (and the public API in ``__init__``).
A module may import from its own layer and the layers below it, never from one above,
whether at the top of the file or inside a function.  Inside a layer, no two modules
import each other, however indirectly (imports for type checking only do not count).
"""

import ast
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "circuits_abm"
ORDER = ["defaults", "progress", "regimes", "engine", "analysis", "networks", "experiments", "viz",
         "reward_seeking", "cli"]


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
    assert {layer_of(m) for m in ("circuits_abm.engine.model", "circuits_abm.viz.run_figures")} == {
        "engine", "viz"}
    engine_model = PACKAGE / "engine" / "model.py"
    assert "circuits_abm.engine.steps" in imported_modules(engine_model)
    assert len(SOURCES) > 25


def run_time_imports(path: Path) -> set[str]:
    """The ``circuits_abm`` modules a file imports when it runs: every import statement
    except those under ``if TYPE_CHECKING:``, each resolved to a module of the package."""
    tree = ast.parse(path.read_text())
    skipped = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
               and getattr(block.test, "id", "") == "TYPE_CHECKING"
               for statement in block.body for node in ast.walk(statement)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in MODULES}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(("circuits_abm", *(parts[:-1] if parts[-1] == "__init__" else parts)))


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def import_graph() -> nx.DiGraph:
    """Module -> module it imports at run time; a module's import of the packages that
    contain it is left out (Python has started those before the module runs)."""
    graph = nx.DiGraph()
    for name, path in MODULES.items():
        for target in run_time_imports(path):
            if not name.startswith(target + ".") and target != name:
                graph.add_edge(name, target)
    return graph


def test_no_modules_import_each_other():
    cycles = list(nx.simple_cycles(import_graph()))
    assert not cycles, f"import cycles: {cycles}"


def test_the_cycle_check_sees_a_cycle():
    graph = import_graph()
    graph.add_edge("circuits_abm.engine.environments", "circuits_abm.engine.model")
    assert list(nx.simple_cycles(graph))
