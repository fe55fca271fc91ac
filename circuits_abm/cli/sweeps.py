"""Many runs: ``sweep``, ``agreement``, ``catalogue``, ``holdout``, and ``analyse`` of a
finished sweep."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from circuits_abm.cli.common import app, exit_on
from circuits_abm.defaults import CATALOGUE_ROOT_SEED, CATALOGUE_RUNS, EXECUTORS, MAX_FAILED_SHARE
from circuits_abm.progress import progress_bar


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
    from circuits_abm.experiments.executors import SchedulerError
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
        bar.set_postfix(failed=failed, refresh=False)  # drawn with the next update

    try:
        with exit_on(OutputError, SchedulerError), exit_on(SweepFailed, code=1):
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
        raise  # the command line exits 130, or 143 after SIGTERM
    except OSError as exc:  # a full disk: the journal keeps every run written before
        bar.close()
        typer.echo(
            f"error: could not write to {out}: {exc}. The {counts['finished']} runs journaled "
            "before are kept; free some space and run the same command again to resume.",
            err=True,
        )
        raise typer.Exit(code=1) from None
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
    markdown: Annotated[bool, typer.Option(help="Print the markdown table.")] = False,
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


@app.command()
def holdout(
    folder: Annotated[
        Path | None, typer.Argument(help="Folder of scenarios (default: the built-in holdout set).")
    ] = None,
    runs: Annotated[
        int, typer.Option("--runs", min=1, help="Seeds per scenario, derived from the root seed.")
    ] = 20,
    root_seed: Annotated[int, typer.Option(min=0, help="Root of the derived seeds.")] = 2027,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default: cores).")
    ] = None,
    readme: Annotated[
        Path | None, typer.Option(help="Write the table into this file between its markers.")
    ] = None,
) -> None:
    """Check the theory on scenarios it was not built on: both predictions (end point, and
    with the path) for every scenario of the folder, then its runs on many seeds; print how
    often each prediction names the simulated majority, root regime and nested structure."""
    from circuits_abm.engine.scenario import ScenarioError
    from circuits_abm.experiments.holdout import (
        holdout_scenarios,
        holdout_table,
        markdown,
        run_holdout,
    )
    from circuits_abm.experiments.storage import splice_between_markers

    if folder is None:
        from circuits_abm import builtin

        folder = Path(str(builtin.folder("scenario"))) / "holdout"
    with exit_on(ScenarioError):
        specs = holdout_scenarios(folder)
    if not specs:
        typer.echo(f"error: no scenario file in {folder}", err=True)
        raise typer.Exit(code=2)
    predicted, observed = run_holdout(specs, runs, root_seed, workers or os.cpu_count() or 1)
    table = markdown(holdout_table(predicted, observed))
    typer.echo(table)
    if readme is not None:
        with exit_on(ValueError):
            splice_between_markers(readme, "holdout", table)
        typer.echo(f"updated the holdout table in {readme}", err=True)


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
    from circuits_abm.viz import sweep_figures

    return analyse, sweep_figures


@analyse_app.command("sensitivity")
def analyse_sensitivity(sweep_dir: SweepDirArg) -> None:
    """Sobol (design = saltelli) or Morris (design = morris) indices of every outcome;
    writes sensitivity.parquet and figures/sensitivity.png in the sweep folder."""
    analyse, sweep_figures = _analysis_modules()
    from circuits_abm.viz.style import save_figure
    with exit_on(FileNotFoundError, ValueError):
        table = analyse.sensitivity_indices(sweep_dir)
    path = save_figure(sweep_figures.sensitivity_figure(table),
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
    analyse, sweep_figures = _analysis_modules()
    from circuits_abm.viz.style import save_figure
    with exit_on(FileNotFoundError, ValueError):
        found = analyse.discover_regime(sweep_dir, regime, min_coverage)
    path = save_figure(sweep_figures.discovery_figure(found),
                               sweep_dir / "figures" / f"discovery_{regime}.png")
    typer.echo(f"{regime}: density {found.density:.2f} inside the box (whole sweep "
               f"{found.base_rate:.2f}), coverage {found.coverage:.2f}")
    for row in found.box[found.box.restricted].itertuples():
        typer.echo(f"  {row.axis}: {row.low:.3g} to {row.high:.3g}")
    typer.echo("CART rules:\n" + found.rules)
    typer.echo(f"wrote {path}")
