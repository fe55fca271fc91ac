"""Command line: ``circuits-abm run | validate | classify | predict | explore | sweep | figures |
catalogue | reward-seeking``.

A thin layer over ``circuits_abm.experiments.runs``.  Every command imports what it needs when it
runs, so ``--help`` answers without loading numpy, Mesa, Numba or pandas.

Invalid input exits with code 2 and one readable message, never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from circuits_abm.defaults import (
    CATALOGUE_ROOT_SEED,
    CATALOGUE_RUNS,
    EXECUTORS,
    EXPLORE_SCENARIO_VARIABLE,
    MAX_FAILED_SHARE,
    MAX_STEPS,
)
from circuits_abm.progress import progress_bar

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Agent-based simulation of circuits competing under switching training objectives.",
)

ScenarioArg = Annotated[
    Path, typer.Argument(help="Scenario TOML file, or a built-in name (`circuits-abm list`).")
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


def _load(path: Path, changes: list[str] | None = None):
    """The scenario at ``path`` with the ``--set`` changes, or exit 2 naming what is wrong."""
    from circuits_abm.engine.scenario import (
        ScenarioError,
        load_scenario,
        override,
        parse_assignment,
    )

    with exit_on(ScenarioError):
        spec = load_scenario(path)
        if changes:
            spec = override(spec, dict(parse_assignment(text) for text in changes))
        return spec


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
    """Check a scenario without running it (exit code 2 if it cannot run)."""
    spec = _load(scenario)
    typer.echo(
        f"{scenario}: ok ({spec.name}: {len(spec.environments)} environments, "
        f"{spec.steps} steps, order={spec.schedule.order})"
    )


@app.command()
def run(
    scenario: ScenarioArg,
    changes: SetOption = None,
    seed: Annotated[
        int | None,
        typer.Option(min=0, max=2**63 - 1, help="Random seed (default: the scenario's)."),
    ] = None,
    steps: Annotated[
        int | None, typer.Option(min=1, max=MAX_STEPS, help="Steps (default: the scenario's).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: runs/<name>-seed<N>).")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace what OUT holds (otherwise only the same run may).")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run a scenario and write timeseries.parquet, phases.parquet and summary.json."""
    from circuits_abm.experiments.runs import claim_run_folder
    from circuits_abm.experiments.runs import run as run_scenario
    from circuits_abm.experiments.storage import OutputError, folder_lock

    spec = _load(scenario, changes)
    seed = spec.seed if seed is None else seed
    total = steps or spec.steps
    out = out or Path("runs") / f"{spec.name}-seed{seed}"
    with exit_on(OutputError):
        claim_run_folder(out, spec, seed, total, overwrite)
    bar = progress_bar(not quiet, total=total, unit="step", desc=spec.name)
    with exit_on(OutputError), folder_lock(out):
        try:
            result = run_scenario(spec, seed=seed, steps=steps,
                                  progress=lambda p: bar.update(p.length))
        except KeyboardInterrupt:
            bar.close()
            typer.echo(f"interrupted: nothing was written to {out}", err=True)
            raise typer.Exit(code=130) from None
        bar.close()
        result.save(out)
    summary = result.summary
    final = summary["final_population"][0]
    typer.echo(
        f"{spec.name} seed={seed}: {total} steps in {summary['wall_time_seconds']:.2f}s; "
        f"largest circuit {final['structure']} ({final['share']:.2f})"
    )
    _echo_regime(summary)
    typer.echo(f"wrote {out}/")


def _echo_regime(fields: dict) -> None:
    tree = fields["classification"]["tree"]
    typer.echo(f"regime: {fields['regime']} (confidence {tree['confidence']:.2f})")
    typer.echo(f"structure: {fields['structure']}")


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
        _echo_regime(fields)


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

    spec = _load(scenario, changes)
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

    _load(scenario)  # a bad scenario fails here, in one line, not in the server's log
    if find_spec("solara") is None:
        typer.echo("error: the explorer needs the viz extra: pip install 'circuits_abm[viz]'",
                   err=True)
        raise typer.Exit(code=2)
    command = [sys.executable, "-m", "solara", "run", "circuits_abm.viz.explorer",
               "--host", host, "--port", str(port), "--open" if open_browser else "--no-open"]
    os.execve(sys.executable, command, {**os.environ, EXPLORE_SCENARIO_VARIABLE: str(scenario)})


analyse_app = typer.Typer(no_args_is_help=True,
                          help="Analyse a finished sweep: sensitivity indices, scenario discovery.")
app.add_typer(analyse_app, name="analyse")
SweepDirArg = Annotated[Path, typer.Argument(help="A finished sweep folder.")]


def _analysis_modules():
    """The analysis modules, or a one-line error when the `analysis` extra is missing."""
    from importlib.util import find_spec

    missing = [name for name in ("SALib", "ema_workbench", "sklearn") if find_spec(name) is None]
    if missing:
        typer.echo(f"error: this needs {', '.join(missing)}: pip install "
                   "'circuits_abm[analysis]'", err=True)
        raise typer.Exit(code=2)
    from circuits_abm.experiments import analyse
    from circuits_abm.viz import figures

    return analyse, figures


@analyse_app.command("sensitivity")
def analyse_sensitivity(sweep_dir: SweepDirArg) -> None:
    """Sobol (design = saltelli) or Morris (design = morris) indices of every outcome;
    writes sensitivity.parquet and figures/sensitivity.png in the sweep folder."""
    analyse, figures = _analysis_modules()
    with exit_on(FileNotFoundError, ValueError):
        table = analyse.sensitivity_indices(sweep_dir)
    path = figures.save_figure(figures.sensitivity_figure(table),
                               sweep_dir / "figures" / "sensitivity.png")
    key = "ST" if table.method.iloc[0] == "sobol" else "mu_star"
    typer.echo(f"{key} by outcome, largest first:")
    for outcome, part in table.groupby("outcome", sort=False):
        if part[key].notna().any():
            ranked = part.sort_values(key, ascending=False)
            typer.echo(f"  {outcome:31s} " + ", ".join(
                f"{a} {v:.2f}" for a, v in zip(ranked.axis, ranked[key], strict=True)))
        else:
            typer.echo(f"  {outcome:31s} (constant, or undefined at some point: no indices)")
    typer.echo(f"wrote {sweep_dir / 'sensitivity.parquet'} and {path}")


@analyse_app.command("discover")
def analyse_discover(
    sweep_dir: SweepDirArg,
    regime: Annotated[str, typer.Option(help="The root regime to find a box for.")
                      ] = "conditional_policy",
    min_coverage: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="The box keeps at least this share of the regime's runs.")
    ] = 0.5,
) -> None:
    """PRIM box (and CART rules) where a regime is most likely; writes its tables and
    figures/discovery_<regime>.png in the sweep folder."""
    analyse, figures = _analysis_modules()
    with exit_on(FileNotFoundError, ValueError):
        found = analyse.discover_regime(sweep_dir, regime, min_coverage)
    path = figures.save_figure(figures.discovery_figure(found),
                               sweep_dir / "figures" / f"discovery_{regime}.png")
    typer.echo(f"{regime}: density {found.density:.2f} inside the box (whole sweep "
               f"{found.base_rate:.2f}), coverage {found.coverage:.2f}")
    for row in found.box[found.box.restricted].itertuples():
        typer.echo(f"  {row.axis}: {row.low:.3g} to {row.high:.3g}")
    typer.echo("CART rules:\n" + found.rules)
    typer.echo(f"wrote {path}")


figures_app = typer.Typer(no_args_is_help=True, help="Draw figures from stored results.")
app.add_typer(figures_app, name="figures")


@figures_app.command("run")
def figures_run(
    run_dir: Annotated[Path, typer.Argument(help="A folder written by `circuits-abm run`.")],
    fmt: Annotated[str, typer.Option("--format", help="png, svg or pdf.")] = "png",
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: RUN_DIR/figures).")
    ] = None,
) -> None:
    """Muller plot, retention heatmap, environment graph, structure diagram and a summary page."""
    from circuits_abm.experiments.runs import RunFolderError
    from circuits_abm.experiments.storage import OutputError
    from circuits_abm.viz.figures import FORMATS, write_run_figures

    if fmt not in FORMATS:
        typer.echo(f"error: --format must be one of {', '.join(FORMATS)} (got {fmt!r})", err=True)
        raise typer.Exit(code=2)
    with exit_on(FileNotFoundError, RunFolderError, OutputError, KeyError):
        written = write_run_figures(run_dir, out, fmt)
    for path in written:
        typer.echo(f"wrote {path}")


@figures_app.command("phase-diagram")
def figures_phase_diagram(
    sweep_dir: Annotated[Path, typer.Argument(help="A folder written by `circuits-abm sweep`.")],
    x: Annotated[str | None, typer.Option(help="Axis across (default: the sweep's first).")] = None,
    y: Annotated[str | None, typer.Option(help="Axis up (default: the sweep's second).")] = None,
    facet: Annotated[
        str | None, typer.Option(help="Axis for small multiples (default: a third).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="png, svg or pdf.")] = "png",
    out: Annotated[
        Path | None, typer.Option(help="Output file (default: SWEEP_DIR/phase_diagram.FMT).")
    ] = None,
) -> None:
    """The regime map over two swept axes, seeds' agreement shown, nested structures labelled."""
    from circuits_abm.viz.figures import FORMATS, write_phase_diagram  # matplotlib loads only here

    if fmt not in FORMATS:
        typer.echo(f"error: --format must be one of {', '.join(FORMATS)} (got {fmt!r})", err=True)
        raise typer.Exit(code=2)
    with exit_on(FileNotFoundError, ValueError):
        path = write_phase_diagram(sweep_dir, x, y, facet, out, fmt)
    typer.echo(f"wrote {path}")


@figures_app.command("curve")
def figures_curve(
    sweep_dir: Annotated[Path, typer.Argument(help="A folder written by `circuits-abm sweep`.")],
    x: Annotated[str, typer.Option(help="The swept axis across.")],
    y: Annotated[str, typer.Option(help="A column of results.parquet (e.g. a metric).")],
    group: Annotated[str | None, typer.Option(help="A swept axis: one line per value.")] = None,
    title: Annotated[str, typer.Option(help="Figure title.")] = "",
    out: Annotated[
        Path | None, typer.Option(help="Output file (default: SWEEP_DIR/curve.png).")
    ] = None,
) -> None:
    """A metric against one swept axis, one line per value of another, 95% intervals."""
    from circuits_abm.experiments.sweep.journal import load_results  # noqa: PLC0415
    from circuits_abm.viz.figures import save_figure, sweep_curve  # noqa: PLC0415

    with exit_on(FileNotFoundError):
        results, _, echo = load_results(sweep_dir)
    for name in (x, group):
        if name is not None and name not in echo["axes"]:
            typer.echo(f"error: {name!r} is not a swept axis; axes: {', '.join(echo['axes'])}",
                       err=True)
            raise typer.Exit(code=2)
    if y not in results:
        typer.echo(f"error: {y!r} is not a column of the results", err=True)
        raise typer.Exit(code=2)
    path = save_figure(sweep_curve(results, x, y, group, title),
                       Path(out) if out else Path(sweep_dir) / "curve.png")
    typer.echo(f"wrote {path}")


@app.command()
def sweep(
    sweep_file: Annotated[
        Path, typer.Argument(help="Sweep TOML file, or a built-in name (`circuits-abm list`).")
    ],
    out: Annotated[Path, typer.Option(help="Output folder; re-running resumes it.")],
    executor: Annotated[str, typer.Option(help="serial, processes or dask.")] = "processes",
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default: cores).")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (default: a local cluster).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    retry_failed: Annotated[
        bool, typer.Option(help="Run again the runs that failed when this sweep last ran.")
    ] = False,
    max_failed: Annotated[
        float, typer.Option(min=0.0, max=1.0,
                            help="Exit 1 when more than this share of the runs failed.")
    ] = MAX_FAILED_SHARE,
) -> None:
    """Run a parameter sweep; finished runs are kept, so an interrupted sweep resumes.
    Exit code 1 when more than --max-failed of the runs (or all) failed, or a worker died."""
    from circuits_abm.engine.scenario import ScenarioError
    from circuits_abm.experiments.executors import SchedulerError, WorkersLost
    from circuits_abm.experiments.storage import OutputError
    from circuits_abm.experiments.sweep.runner import SweepFailed, run_sweep
    from circuits_abm.experiments.sweep.spec import load_sweep

    if executor not in EXECUTORS:
        typer.echo(
            f"error: --executor must be one of {', '.join(EXECUTORS)} (got {executor!r})", err=True
        )
        raise typer.Exit(code=2)
    if scheduler is not None and executor != "dask":
        typer.echo(f"error: --scheduler needs --executor dask (got --executor {executor})",
                   err=True)
        raise typer.Exit(code=2)
    with exit_on(ScenarioError):
        spec = load_sweep(sweep_file)
    bar = progress_bar(not quiet, total=len(spec.tasks), unit="run", desc=spec.spec.name)
    failed = 0
    counts = {"finished": 0}

    def progress(done: int, total: int, record: dict | None) -> None:
        nonlocal failed
        counts["finished"] = done
        if record is None:
            bar.update(done)
            if done:
                bar.write(f"resuming: {done} of {total} runs already finished")
            return
        failed += record["status"] != "ok"
        bar.update(1)
        bar.set_postfix(failed=failed)

    try:
        with exit_on(OutputError, SchedulerError), exit_on(SweepFailed, WorkersLost, code=1):
            table = run_sweep(
                spec,
                out,
                executor,
                workers,
                scheduler,
                progress=progress,
                retry_failed=retry_failed,
                max_failed_share=max_failed,
            )
    except KeyboardInterrupt:
        bar.close()
        typer.echo(
            f"interrupted after {counts['finished']} of {len(spec.tasks)} runs; every finished "
            f"run is kept in {out}/runs.jsonl. Run the same command again to resume.",
            err=True,
        )
        raise typer.Exit(code=130) from None
    bar.close()
    ok = table[table.status == "ok"]
    typer.echo(
        f"{len(table)} runs ({len(table) - len(ok)} failed) in {out}/: "
        "results.parquet, aggregate.parquet"
    )
    typer.echo("regimes: " + ", ".join(f"{k} {v}" for k, v in ok.regime.value_counts().items()))


@app.command()
def agreement(
    sweep_dirs: Annotated[
        list[Path], typer.Argument(help="Folders written by `circuits-abm sweep`.")
    ],
    readme: Annotated[
        Path | None, typer.Option(help="Write the table into this file between its markers.")
    ] = None,
    path: Annotated[bool, typer.Option(
        help="Also the prediction with the path (computed once per folder, kept in "
             "path.parquet).")] = True,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Processes for the path (default: cores).")
    ] = None,
) -> None:
    """How often the theory's prediction equals the simulated majority, per sweep: overall
    and away from the predicted boundary (margin above the seeds' fitness spread), and
    with the path model of assembly."""
    import os

    from circuits_abm.experiments.agreement import agreement_table
    from circuits_abm.experiments.path_model import path_table
    from circuits_abm.experiments.storage import splice_between_markers

    with exit_on(FileNotFoundError, ValueError):
        paths = [path_table(d, workers or os.cpu_count() or 1) for d in sweep_dirs] if path \
            else None
        table = agreement_table(sweep_dirs, paths)
    typer.echo(table)
    if readme is not None:
        with exit_on(ValueError):
            splice_between_markers(readme, "agreement", table)
        typer.echo(f"updated the agreement table in {readme}", err=True)


@app.command()
def catalogue(
    folder: Annotated[
        Path | None, typer.Argument(help="Folder of scenarios (default: the built-in ones).")
    ] = None,
    runs: Annotated[
        int, typer.Option("--runs", min=1, help="Seeds per scenario, derived from the root seed.")
    ] = CATALOGUE_RUNS,
    root_seed: Annotated[int, typer.Option(min=0, help="Root of the derived seeds.")] = (
        CATALOGUE_ROOT_SEED
    ),
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default: cores).")
    ] = None,
    markdown: Annotated[bool, typer.Option(help="Print the README's markdown table.")] = False,
    readme: Annotated[
        Path | None, typer.Option(help="Write the table into this file between its markers.")
    ] = None,
) -> None:
    """Run every canonical scenario (one with `expected`) on many seeds; report each claim's
    rate with its 95% interval. Exit code 1 if a claim does not hold, 2 if none was found."""
    from circuits_abm.engine.scenario import ScenarioError
    from circuits_abm.experiments.catalogue import (
        canonical_scenarios,
        claim_holds,
        claim_rate,
        markdown_table,
        run_catalogue,
    )
    from circuits_abm.experiments.storage import splice_between_markers

    if folder is None:
        from circuits_abm import builtin

        folder = Path(str(builtin.folder("scenario")))
    with exit_on(ScenarioError):
        found = canonical_scenarios(folder)
    if not found:
        typer.echo(f"error: no scenario with an `expected` regime in {folder}", err=True)
        raise typer.Exit(code=2)
    specs = {spec.name: spec for _, spec in found}
    outcomes = run_catalogue(
        list(specs.values()), runs, root_seed, workers or os.cpu_count() or 1,
        progress=True,
    )
    failed = []
    for name, spec in specs.items():
        rate = claim_rate(outcomes, name)
        holds = claim_holds(rate, spec)
        failed += [] if holds else [name]
        if not markdown:
            mark = "ok  " if holds else "FAIL"
            typer.echo(f"{mark} {name}: {rate.text()} (needs >= {spec.expected_rate})")
    table = markdown_table(outcomes, specs)
    if markdown:
        typer.echo(table)
    if readme is not None:
        with exit_on(ValueError):
            splice_between_markers(readme, "catalogue", table)
        typer.echo(f"updated the catalogue table in {readme}", err=True)
    typer.echo(f"{len(specs) - len(failed)} of {len(specs)} claims hold", err=True)
    if failed:
        raise typer.Exit(code=1)


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


if __name__ == "__main__":
    app()
