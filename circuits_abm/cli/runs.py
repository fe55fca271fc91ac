"""One scenario: ``list``, ``validate``, ``run``, ``classify``, ``predict``, ``explore``."""

from __future__ import annotations

import json
import os
import sys
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
    steps_or_exit,
)
from circuits_abm.defaults import EXPLORE_SCENARIO_VARIABLE
from circuits_abm.progress import progress_bar


@app.command("list")
def list_builtins() -> None:
    """The built-in scenarios with their claims, the built-in sweeps and experiments."""
    from circuits_abm import builtin
    from circuits_abm.engine.scenario import read_toml

    titles = {"scenario": "scenarios (circuits-abm run NAME)",
              "sweep": "sweeps (circuits-abm sweep NAME)",
              "experiment": "reward-seeking experiments (circuits-abm reward-seeking run NAME)"}
    for kind, title in titles.items():
        typer.echo(f"{title}:")
        for name in builtin.names(kind):
            path = Path(str(builtin.find(kind, name)))
            data = read_toml(path)
            text = data.get("claim") or data.get("description") or _first_sentence(path)
            typer.echo(f"  {name:28s} {text}")


def _first_sentence(path: Path) -> str:
    """The first sentence of the comment block that opens a file (it may span lines)."""
    block = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        block.append(line.lstrip("#").strip())
    text = " ".join(block)
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


@app.command()
def validate(scenario: ScenarioArg) -> None:
    """Check a scenario without running it (exit code 2 if it cannot run, or if its
    ``expected`` structure is not a structure line of its environments)."""
    from circuits_abm.engine.scenario import ScenarioError  # noqa: PLC0415
    from circuits_abm.experiments.catalogue import expectation_problems  # noqa: PLC0415

    spec = load_or_exit(scenario)
    with exit_on(ScenarioError):
        problems = expectation_problems(spec)
        if problems:
            raise ScenarioError(str(scenario), problems)
    typer.echo(
        f"{scenario}: ok ({spec.name}: {len(spec.environments)} environments, "
        f"{spec.steps} steps, order={spec.schedule.order})"
    )


@app.command()
def run(
    scenario: ScenarioArg,
    changes: SetOption = None,
    seed: SeedOption = None,
    steps: StepsOption = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: runs/<name>-seed<N>).")
    ] = None,
    overwrite: OverwriteOption = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run a scenario and write timeseries.parquet, phases.parquet and summary.json."""
    from circuits_abm.experiments.runs import claim_run_folder
    from circuits_abm.experiments.runs import run as run_scenario
    from circuits_abm.experiments.storage import OutputError, folder_lock

    spec = load_or_exit(scenario, changes)
    seed = spec.seed if seed is None else seed
    total = steps_or_exit(spec, steps)
    out = out or Path("runs") / f"{spec.name}-seed{seed}"
    with exit_on(OutputError):
        claim_run_folder(out, spec, seed, total, overwrite)
    bar = None
    try:
        with exit_on(OutputError), folder_lock(out):
            bar = progress_bar(not quiet, total=total, unit="step", desc=spec.name)
            result = run_scenario(spec, seed=seed, steps=steps,
                                  progress=lambda p: bar.update(p.length))
            bar.close()
            try:
                result.save(out)
            except OSError as exc:  # a full disk: save has removed what it wrote
                typer.echo(f"error: could not write the run into {out}: {exc}; nothing was "
                           "kept", err=True)
                raise typer.Exit(code=1) from None
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        typer.echo(f"interrupted: nothing was written to {out}", err=True)
        raise  # the command line exits 130, or 143 after SIGTERM
    summary = result.summary
    final = summary["final_population"][0]
    typer.echo(
        f"{spec.name} seed={seed}: {total} steps in {summary['wall_time_seconds']:.2f}s; "
        f"largest circuit {final['structure']} ({final['share']:.2f})"
    )
    echo_regime(summary)
    typer.echo(f"wrote {out}/")


@app.command()
def classify(
    run_dir: Annotated[Path, typer.Argument(help="A folder written by `circuits-abm run`.")],
    dry_run: Annotated[bool, typer.Option(help="Print only; do not update summary.json.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole tree as JSON.")] = False,
) -> None:
    """Classify a stored run from its trajectory and update its summary.json."""
    from circuits_abm.experiments.runs import RunFolderError, reclassify
    from circuits_abm.experiments.storage import OutputError

    with exit_on(FileNotFoundError, RunFolderError, OutputError):
        fields = reclassify(run_dir, write=not dry_run)
    if as_json:
        typer.echo(json.dumps(fields["classification"], indent=2))
    else:
        echo_regime(fields)


@app.command()
def predict(
    scenario: ScenarioArg,
    changes: SetOption = None,
    sharpness: Annotated[
        str, typer.Option(help="birth: routers at initial_sharpness; optimal: the best one.")
    ] = "birth",
    keys: Annotated[
        str, typer.Option(help="birth: routers' contrast keys; learned: where key learning "
                               "settles without noise.")
    ] = "birth",
    rivals: Annotated[int, typer.Option(min=0, help="How many rival structures to list.")] = 4,
    path: Annotated[bool, typer.Option(
        "--path", help="Also the path to the predicted router: how often runs reach and keep "
                       "it (a reduced model of two circuits; a few seconds).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the prediction as JSON.")] = False,
) -> None:
    """Predict the regime from the scenario alone (the theory; nothing is simulated)."""
    from circuits_abm.analysis.assembly import path_prediction
    from circuits_abm.analysis.theory import predict as predict_regime

    spec = load_or_exit(scenario, changes)
    if sharpness not in ("birth", "optimal"):
        typer.echo(f"error: --sharpness must be birth or optimal (got {sharpness!r})", err=True)
        raise typer.Exit(code=2)
    if keys not in ("birth", "learned"):
        typer.echo(f"error: --keys must be birth or learned (got {keys!r})", err=True)
        raise typer.Exit(code=2)
    times = ["start", "end"] if spec.interventions else ["end"]
    predictions = {
        at: predict_regime(spec, at=at, critical=at == "end", sharpness=sharpness, keys=keys)
        for at in times
    }
    chains = {at: path_prediction(spec, at=at) if path else None for at in times}
    if as_json:
        typer.echo(json.dumps({
            at: {**p.to_dict(), **({"path": None if chains[at] is None else
                                    chains[at].to_dict()} if path else {})}
            for at, p in predictions.items()}, indent=2))
        return
    for at, prediction in predictions.items():
        when = "" if len(times) == 1 else f" ({at}: {'before' if at == 'start' else 'after'} "
        when += "" if len(times) == 1 else "the interventions)"
        typer.echo(prediction.describe(spec.name + when, rivals))
        if path:
            typer.echo(chains[at].describe() if chains[at] is not None else
                       "  the path: no router is predicted, so there is none to assemble")


@app.command()
def explore(
    scenario: Annotated[Path, typer.Argument(
        help="Scenario to open with: a TOML file or a built-in name.")] = Path("standard"),
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to serve on (0: any free one).")
                    ] = 8765,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "localhost",
    open_browser: Annotated[bool, typer.Option("--open/--no-open",
                                               help="Open a browser tab.")] = True,
) -> None:
    """Explore a scenario in the browser: sliders, step and play, live figures (SolaraViz)."""
    from importlib.util import find_spec

    load_or_exit(scenario)  # a bad scenario fails here, in one line, not in the server's log
    if find_spec("solara") is None:
        typer.echo("error: the explorer needs the viz extra: pip install 'circuits_abm[viz]'",
                   err=True)
        raise typer.Exit(code=2)
    command = [sys.executable, "-m", "solara", "run", "circuits_abm.viz.explorer",
               "--host", host, "--port", str(port), "--open" if open_browser else "--no-open"]
    os.execve(sys.executable, command, {**os.environ, EXPLORE_SCENARIO_VARIABLE: str(scenario)})
