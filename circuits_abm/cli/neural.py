"""``neural``: a scenario trained into a network, classified like any run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from circuits_abm.cli.common import (
    OverwriteOption,
    ScenarioArg,
    SeedOption,
    SetOption,
    StepsOption,
    app,
    echo_regime,
    exit_on,
    load_or_exit,
    publish,
    steps_or_exit,
)

neural_app = typer.Typer(no_args_is_help=True,
                         help="The same scenarios in networks trained by gradient descent.")
app.add_typer(neural_app, name="neural")


@neural_app.command("run")
def neural_run(
    scenario: ScenarioArg,
    changes: SetOption = None,
    arch: Annotated[str, typer.Option(help="mlp, moe or nested.")] = "moe",
    seed: SeedOption = None,
    steps: StepsOption = None,
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
    overwrite: OverwriteOption = False,
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
    total = steps_or_exit(spec, steps)
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


@neural_app.command("catalogue")
def neural_catalogue(
    names: Annotated[list[str], typer.Argument(help="Canonical scenarios (built-in names).")],
    runs: Annotated[int, typer.Option("--runs", min=1, help="Seeds per scenario.")] = 20,
    setting: Annotated[
        list[str] | None,
        typer.Option("--setting", metavar="NAME=VALUE", help="A network setting (repeatable)."),
    ] = None,
    rates: Annotated[
        str | None, typer.Option(help="Learning rates to compare, comma-separated "
                                      "(default: the settings').")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 2,
    figure: Annotated[Path | None, typer.Option(help="Draw the rates into this file.")] = None,
    doc: Annotated[
        Path | None, typer.Option(help="Write the tables into this file between its markers.")
    ] = None,
    marker: Annotated[str, typer.Option(help="The markers' name in --doc.")] = "neural-catalogue",
) -> None:
    """Canonical scenarios trained into networks, and run by the agent-based model, on the
    catalogue's derived seeds: how often each gives its expected regime before and after
    its interventions, with intervals."""
    import pandas as pd

    from circuits_abm.engine.loading import load_scenario
    from circuits_abm.engine.scenario import ScenarioError, parse_assignment
    from circuits_abm.experiments import neural
    from circuits_abm.experiments.catalogue import markdown_table, run_catalogue
    from circuits_abm.networks.settings import NeuralSettings

    with exit_on(ScenarioError, ValueError):  # pydantic's ValidationError is a ValueError
        base = NeuralSettings(**dict(parse_assignment(text) for text in setting or []))
        chosen = [float(r) for r in rates.split(",")] if rates else [base.learning_rate]
        learners = {f"network, rate {r:g}": base.model_copy(update={"learning_rate": r})
                    for r in chosen}
        for settings in learners.values():
            NeuralSettings(**settings.model_dump())  # validate every rate
        specs = {name: load_scenario(name) for name in names}
    agents = run_catalogue(list(specs.values()), runs, workers=workers)
    tables = [f"Agent-based model, {runs} seeds per scenario:\n\n{markdown_table(agents, specs)}"]
    frames = [neural.stage_rates(agents, "agent-based model")]
    for label, settings in learners.items():
        outcomes = neural.catalogue(names, settings, runs, workers)
        tables.append(f"{label[0].upper()}{label[1:]}, {runs} seeds per scenario:\n\n"
                      f"{markdown_table(outcomes, specs)}")
        frames.append(neural.stage_rates(outcomes, label))
    from circuits_abm.viz.neural_figures import stage_rates_figure

    publish("\n\n".join(tables), lambda: stage_rates_figure(pd.concat(frames)), figure, doc,
             marker)


def _overlaps(text: str) -> tuple[float, ...]:
    """The comma-separated ``--sharings``, each a number in [-1, 1]."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--sharings {text!r}: give numbers separated by commas, "
                         "e.g. 0,0.5,1") from None
    if not all(-1 <= value <= 1 for value in values):
        raise ValueError(f"--sharings {text!r}: every value must be in [-1, 1]")
    return values


@neural_app.command("forgetting")
def neural_forgetting(
    seeds: Annotated[int, typer.Option(min=2, help="Seeds per point.")] = 20,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 2,
    sharings: Annotated[str, typer.Option(
        help="The teachers' overlaps to train at, comma-separated, each in [-1, 1].")] = (
        "-0.5,-0.25,0,0.25,0.5,0.75,1"),
    figure: Annotated[Path | None, typer.Option(help="Draw the curves into this file.")] = None,
    doc: Annotated[
        Path | None, typer.Option(help="Write the table into this file between its markers.")
    ] = None,
    marker: Annotated[str, typer.Option(help="The markers' name in --doc.")] = (
        "neural-forgetting"),
) -> None:
    """Forgetting against task similarity: overparameterised linear regression against the
    angle of its tasks' subspaces, a teacher-student network against its teachers' feature
    similarity, and two tasks in sequence against their teachers'
    overlap in a dense network, a top-1 mixture and the agent-based model."""
    from circuits_abm.experiments import forgetting

    with exit_on(ValueError):
        overlaps = _overlaps(sharings)
    tables = forgetting.experiment(seeds, workers, sharings=overlaps)
    from circuits_abm.viz.neural_figures import forgetting_figure

    publish(forgetting.markdown(tables), lambda: forgetting_figure(tables), figure, doc, marker)


@neural_app.command("routing")
def neural_routing(
    seeds: Annotated[int, typer.Option(min=2, help="Seeds per point.")] = 20,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 2,
    figure: Annotated[Path | None, typer.Option(help="Draw the curves into this file.")] = None,
    doc: Annotated[
        Path | None, typer.Option(help="Write the tables into this file between its markers.")
    ] = None,
    marker: Annotated[str, typer.Option(help="The markers' name in --doc.")] = "neural-routing",
) -> None:
    """Gradient routing in a network beside the agent-based model: the held-out motivation
    against the monitor's angle under plain, block and route, whether the leak grows with
    training, and absorption when only some examples are routed."""
    from circuits_abm.experiments import neural_routing

    angles, absorption = neural_routing.experiment(seeds, workers)
    from circuits_abm.viz.neural_figures import gradient_routing_figure

    publish(neural_routing.markdown(angles, absorption),
             lambda: gradient_routing_figure(angles, absorption), figure, doc, marker)
