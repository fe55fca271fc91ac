"""What every command shares: the application, the scenario argument and ``--set``, and
turning expected errors into one line and an exit code.

Every command imports what it needs when it runs, so ``--help`` answers without loading
numpy, Mesa, Numba or pandas.  Invalid input exits with code 2 and one readable message,
never a traceback.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from circuits_abm.defaults import MAX_STEPS


class _Commands(TyperGroup):
    """The application's commands, with one error every command can meet turned into one
    line and exit code 1: worker processes that died (out of memory, killed) under any
    command that runs work in parallel (a sweep, the catalogue, the path model, ...)."""

    def invoke(self, ctx):
        from circuits_abm.experiments.executors import WorkersLost  # noqa: PLC0415

        try:
            return super().invoke(ctx)
        except WorkersLost as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=1) from None


app = typer.Typer(
    cls=_Commands,
    add_completion=False,
    no_args_is_help=True,
    help="Agent-based simulation of circuits competing under switching training objectives.",
)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's or ``kill``'s stop), raised where the program is, so it stops
    as it does on Ctrl-C: the same message, the journal kept, worker processes ended."""


_terminated = False  # SIGTERM was received


def _raise_terminated(signum, frame) -> None:
    global _terminated  # noqa: PLW0603 (a signal handler can only leave a mark)
    _terminated = True
    raise Terminated


@app.callback()
def _stop_on_sigterm() -> None:
    """Handle SIGTERM like Ctrl-C in every command (Python's default ends the process at
    once, leaving a sweep's worker processes running on their own)."""
    signal.signal(signal.SIGTERM, _raise_terminated)


def main() -> None:
    """The ``circuits-abm`` program.  Typer exits 130 after any interrupt; after SIGTERM
    the code is 143 (128 + the signal), as a shell or a batch scheduler expects."""
    try:
        app(prog_name="circuits-abm")
    except SystemExit:
        if _terminated:
            raise SystemExit(128 + signal.SIGTERM) from None
        raise


ScenarioArg = Annotated[
    Path, typer.Argument(help="Scenario TOML file, or a built-in name (`circuits-abm list`).")
]


SeedOption = Annotated[
    int | None,
    typer.Option(min=0, max=2**63 - 1, help="Random seed (default: the scenario's)."),
]
StepsOption = Annotated[
    int | None, typer.Option(min=1, max=MAX_STEPS, help="Steps (default: the scenario's).")
]
OverwriteOption = Annotated[
    bool, typer.Option(help="Replace what OUT holds (otherwise only the same run may).")
]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="PATH=VALUE",
                 help="Change a scenario field by dotted path (repeatable), e.g. "
                      "--set geometry.sharing=0.6."),
]


@contextlib.contextmanager
def exit_on(*errors: type[Exception], code: int = 2) -> Iterator[None]:
    """Turn the expected errors into their message on stderr and an exit code (2: bad
    input)."""
    try:
        yield
    except errors as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=code) from None


def load_or_exit(path: Path, changes: list[str] | None = None):
    """The scenario at ``path`` with the ``--set`` changes, or exit 2 naming what is wrong."""
    from circuits_abm.engine.loading import load_scenario, override
    from circuits_abm.engine.scenario import ScenarioError, parse_assignment

    with exit_on(ScenarioError):
        spec = load_scenario(path)
        if changes:
            spec = override(spec, dict(parse_assignment(text) for text in changes))
        return spec


def steps_or_exit(spec, steps: int | None) -> int:
    """The run's length (``--steps`` or the scenario's), or exit 2 if its records would not
    fit in memory, before anything runs."""
    from circuits_abm.engine.loading import run_length
    from circuits_abm.engine.scenario import ScenarioError

    with exit_on(ScenarioError):
        return run_length(steps, spec)


def echo_regime(fields: dict) -> None:
    """Print a run's regime, its confidence and its structure (from its summary)."""
    tree = fields["classification"]["tree"]
    typer.echo(f"regime: {fields['regime']} (confidence {tree['confidence']:.2f})")
    typer.echo(f"structure: {fields['structure']}")


def publish(text: str, draw, figure: Path | None, doc: Path | None, marker: str) -> None:
    """Print an experiment's tables; draw its figure into ``figure`` (``draw()`` makes it)
    and splice the tables into ``doc`` between its ``marker`` markers, when asked."""
    from circuits_abm.experiments.storage import splice_between_markers  # noqa: PLC0415

    typer.echo(text)
    if figure is not None:
        from circuits_abm.viz.style import save_figure  # noqa: PLC0415

        typer.echo(f"wrote {save_figure(draw(), figure)}")
    if doc is not None:
        with exit_on(ValueError):
            splice_between_markers(doc, marker, text)
        typer.echo(f"updated the tables in {doc}", err=True)
