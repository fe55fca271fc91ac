"""Command line: ``circuits-abm list | validate | run | classify | predict | explore | sweep |
agreement | catalogue | analyse | figures | motivations | neural | reward-seeking``.

A thin layer over the package, one module per family of commands (``runs``, ``sweeps``,
``figures``, ``motivations``, ``neural``, ``reward_seeking``) on the one Typer application
of ``common``.
"""

from circuits_abm.cli import (  # noqa: F401 (registers)
    figures,
    motivations,
    neural,
    reward_seeking,
    runs,
    sweeps,
)
from circuits_abm.cli.common import app, main

__all__ = ["app", "main"]
