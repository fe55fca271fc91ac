"""Docstrings: every public name has one, the public API's are numpy-style with examples,
and those examples run and print what they say (so the documentation cannot rot)."""

import doctest
import importlib
import inspect
import pkgutil

import pytest

import circuits_abm as ca

PUBLIC_API = sorted(ca.__all__)


def public_modules() -> list[str]:
    return [
        m.name
        for m in pkgutil.walk_packages(ca.__path__, "circuits_abm.")
        if not m.name.endswith("__main__") and not any(p.startswith("_") for p in
                                                       m.name.split(".")[1:])
    ]


def defined_here(module) -> list[tuple[str, object]]:
    """Public functions and classes whose home is ``module`` (not ones it imports)."""
    return [
        (name, obj)
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        and obj.__module__ == module.__name__
    ]


def public_methods(cls) -> list[str]:
    return [
        name
        for name, member in vars(cls).items()
        if not name.startswith("_")
        and (inspect.isfunction(member) or isinstance(member, property | classmethod
                                                                  | staticmethod))
    ]


@pytest.mark.parametrize("module_name", public_modules())
def test_every_public_name_has_a_docstring(module_name):
    module = importlib.import_module(module_name)
    missing = [] if inspect.getdoc(module) else [module_name]
    for name, obj in defined_here(module):
        if not (obj.__doc__ or "").strip():  # a class's own, not one inherited from its base
            missing.append(name)
        if inspect.isclass(obj):
            missing += [f"{name}.{m}" for m in public_methods(obj)
                        if not inspect.getdoc(getattr(obj, m))]
    assert not missing, f"{module_name}: no docstring on {missing}"


@pytest.mark.parametrize("name", PUBLIC_API)
def test_public_api_docstrings_are_numpy_style_with_examples(name):
    obj = getattr(ca, name)
    text = inspect.getdoc(obj)
    lines = [line.strip() for line in text.splitlines()]
    sections = {line for line, rule in zip(lines, lines[1:], strict=False)
                if rule and set(rule) == {"-"} and len(rule) == len(line)}
    assert "Examples" in sections, f"{name}: no Examples section"
    if inspect.isfunction(obj):
        assert {"Parameters", "Returns"} <= sections, f"{name}: sections {sections}"
        documented = set()
        for line in text.split("Parameters\n----------\n", 1)[1].splitlines():
            if line and not line.startswith(" ") and set(line) != {"-"}:
                documented.update(part.strip() for part in line.split(":")[0].split(","))
            if line in sections:
                break
        assert set(inspect.signature(obj).parameters) <= documented, (
            f"{name}: parameters {set(inspect.signature(obj).parameters) - documented} "
            "are not documented")
    else:
        assert sections & {"Parameters", "Attributes"}, f"{name}: sections {sections}"


@pytest.mark.parametrize("name", PUBLIC_API)
def test_public_api_examples_run_as_written(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    tests = doctest.DocTestFinder(recurse=False).find(getattr(ca, name), name, globs={})
    examples = [e for t in tests for e in t.examples if not e.options.get(doctest.SKIP)]
    assert examples, f"{name}: no example that runs"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    assert runner.failures == 0, f"{name}: {runner.failures} example(s) printed something else"
