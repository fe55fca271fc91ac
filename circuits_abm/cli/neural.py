"""``neural``: a scenario trained into a network, classified like any run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from circuits_abm.cli.common import ScenarioArg, SetOption, app, echo_regime, exit_on, load_or_exit
from circuits_abm.defaults import MAX_STEPS

neural_app = typer.Typer(no_args_is_help=True,
                         help="The same scenarios in networks trained by gradient descent.")
app.add_typer(neural_app, name="neural")


@neural_app.command("run")
def neural_run(
    scenario: ScenarioArg,
    changes: SetOption = None,
    arch: Annotated[str, typer.Option(help="mlp, moe or nested.")] = "moe",
    seed: Annotated[
        int | None,
        typer.Option(min=0, max=2**63 - 1, help="Random seed (default: the scenario's)."),
    ] = None,
    steps: Annotated[
        int | None, typer.Option(min=1, max=MAX_STEPS, help="Steps (default: the scenario's).")
    ] = None,
    setting: Annotated[
        list[str] | None,
        typer.Option("--setting", metavar="NAME=VALUE",
                     help="A network setting (repeatable): width, experts, groups, optimizer, "
                          "learning_rate, weight_decay, batch_size, policy_noise, "
                          "eval_examples, cue, routing."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: runs/<name>-<arch>-seed<N>).")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace what OUT holds (otherwise only the same run may).")
    ] = False,
) -> None:
    """Train a network on a scenario; write timeseries.parquet, phases.parquet and
    summary.json, which classify and figures read as any run's."""
    from importlib.util import find_spec

    from pydantic import ValidationError

    from circuits_abm.engine.scenario import ScenarioError, parse_assignment
    from circuits_abm.experiments.runs import claim_run_folder
    from circuits_abm.experiments.storage import OutputError, folder_lock

    if find_spec("jax") is None:
        typer.echo("error: neural runs need the neural extra: pip install 'circuits_abm[neural]'",
                   err=True)
        raise typer.Exit(code=2)
    from circuits_abm.experiments import neural
    from circuits_abm.networks.settings import NeuralSettings

    spec = load_or_exit(scenario, changes)
    with exit_on(ScenarioError):
        fields = dict(parse_assignment(text) for text in setting or [])
    try:
        settings = NeuralSettings(**{**fields, "arch": arch})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        typer.echo(f"error: invalid network settings: {problems}", err=True)
        raise typer.Exit(code=2) from None
    seed = spec.seed if seed is None else seed
    total = steps or spec.steps
    out = out or Path("runs") / f"{spec.name}-{arch}-seed{seed}"
    learner = {"kind": "neural", **settings.model_dump()}
    with exit_on(OutputError):
        claim_run_folder(out, spec, seed, total, overwrite, learner)
    with exit_on(OutputError, ScenarioError), folder_lock(out):
        result = neural.run(spec, seed=seed, steps=steps, settings=settings)
        result.save(out)
    summary = result.summary
    typer.echo(f"{spec.name} seed={seed}: {total} steps of a {arch} network "
               f"({summary['model']['parameters']} parameters) in "
               f"{summary['wall_time_seconds']:.2f}s")
    echo_regime(summary)
    typer.echo(f"wrote {out}/")
