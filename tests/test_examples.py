"""The example notebooks are stored clean: no outputs and no execution counts, so running
them (``make notebooks``, part of ``make test``) changes no tracked file and a diff shows
only code.  That they run top to bottom is checked by nbmake, not here."""

import json

import pytest
from helpers import ROOT

NOTEBOOKS = sorted((ROOT / "examples").glob("*.ipynb"))


def test_there_are_at_least_three_example_notebooks():
    assert len(NOTEBOOKS) >= 3, [n.name for n in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    cells = json.loads(path.read_text())["cells"]
    dirty = [i for i, c in enumerate(cells) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs (clear them before committing)"
    assert cells[0]["cell_type"] == "markdown", f"{path.name} should open by saying what it shows"
