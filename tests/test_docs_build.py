"""The documentation site builds without a single warning (strict MkDocs: broken links,
missing pages, and docstrings mkdocstrings cannot read all fail), and the API page documents
every public name."""

import os
import subprocess
import sys

from helpers import ROOT

import circuits_abm as ca


def test_docs_build_strictly_and_cover_the_public_api(tmp_path):
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "WARNING" not in done.stderr, done.stderr[-3000:]
    api = (site / "api" / "index.html").read_text()
    missing = [name for name in ca.__all__ if f'.{name}"' not in api]
    assert not missing, f"not in the API reference: {missing}"
