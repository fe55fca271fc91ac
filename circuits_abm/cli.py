"""Command line: ``circuits-abm run | validate`` (a thin layer over :mod:`circuits_abm.api`).

Invalid input exits with code 2 and one readable message, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from circuits_abm.api import run as run_scenario
from circuits_abm.scenario import ScenarioError, load_scenario

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Agent-based simulation of circuits competing under switching training objectives.",
)

ScenarioArg = Annotated[Path, typer.Argument(help="Scenario TOML file (see scenarios/).")]


def _load(path: Path):
    try:
        return load_scenario(path)
    except ScenarioError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None


@app.command()
def validate(scenario: ScenarioArg) -> None:
    """Check a scenario without running it (exit code 2 if it cannot run)."""
    spec = _load(scenario)
    typer.echo(
        f"{scenario}: ok ({spec.name}: {len(spec.environments)} environments, "
        f"{spec.steps} steps, order={spec.schedule.order})"
    )


@app.command()
def run(
    scenario: ScenarioArg,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the scenario's).")] = None,
    steps: Annotated[
        int | None, typer.Option(min=1, help="Steps (default: the scenario's).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: runs/<name>-seed<N>).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run a scenario and write timeseries.parquet, phases.parquet and summary.json."""
    spec = _load(scenario)
    seed = spec.seed if seed is None else seed
    total = steps or spec.steps
    out = out or Path("runs") / f"{spec.name}-seed{seed}"
    bar = tqdm(total=total, unit="step", desc=spec.name, disable=quiet or not sys.stderr.isatty())
    result = run_scenario(spec, seed=seed, steps=steps, progress=lambda p: bar.update(p.length))
    bar.close()
    result.save(out)
    final = result.summary["final_population"][0]
    typer.echo(
        f"{spec.name} seed={seed}: {total} steps in {result.summary['wall_time_seconds']:.2f}s; "
        f"largest circuit {final['structure']} ({final['share']:.2f})"
    )
    typer.echo(f"wrote {out}/")


if __name__ == "__main__":
    app()
