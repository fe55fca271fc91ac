"""``reward-seeking``: the behavioural-selection model's experiments."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from circuits_abm.cli.common import app, exit_on

reward_app = typer.Typer(
    no_args_is_help=True,
    help="The behavioural-selection model of reward seeking (its critical diversity).",
)
app.add_typer(reward_app, name="reward-seeking")


ExperimentArg = Annotated[
    Path, typer.Argument(help="Experiment TOML file, or a built-in name (`circuits-abm list`).")
]


@reward_app.command("validate")
def reward_validate(experiment: ExperimentArg) -> None:
    """Check an experiment file without running it (exit code 2 if it cannot run)."""
    from circuits_abm.engine.scenario import ScenarioError
    from circuits_abm.reward_seeking.experiments import load_experiment

    with exit_on(ScenarioError):
        spec = load_experiment(experiment)
    typer.echo(f"{experiment}: ok ({spec.kind} experiment)")


@reward_app.command("run")
def reward_run(
    experiment: ExperimentArg,
    out: Annotated[Path, typer.Option(help="Output folder for tables and figures.")],
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run an experiment: results.parquet, experiment.json and its figure in OUT."""
    from circuits_abm.reward_seeking.experiments import run_experiment  # noqa: PLC0415

    with exit_on(ValueError):
        folder = run_experiment(experiment, out, workers, progress=not quiet)
    files = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    typer.echo(f"wrote {folder}/: {', '.join(files)}")


@reward_app.command("figures")
def reward_figures(
    folder: Annotated[Path, typer.Argument(help="A finished experiment folder.")],
) -> None:
    """Redraw an experiment's figure from its stored tables (no recomputation)."""
    from circuits_abm.reward_seeking.experiments import draw_figures  # noqa: PLC0415

    with exit_on(FileNotFoundError):
        path = draw_figures(folder)
    typer.echo(f"wrote {path}")
