"""``figures``: draw a stored run's or a finished sweep's figures.  Loading the stored
tables happens here; the figure functions (``circuits_abm.viz``) take DataFrames."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from circuits_abm.cli.common import app, exit_on

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
    from circuits_abm.experiments.runs import RunFolderError, load_run
    from circuits_abm.experiments.storage import OutputError
    from circuits_abm.viz.run_figures import write_run_figures
    from circuits_abm.viz.style import FORMATS

    if fmt not in FORMATS:
        typer.echo(f"error: --format must be one of {', '.join(FORMATS)} (got {fmt!r})", err=True)
        raise typer.Exit(code=2)
    with exit_on(FileNotFoundError, RunFolderError, OutputError, KeyError):
        written = write_run_figures(load_run(run_dir), out or run_dir / "figures", fmt)
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
    from circuits_abm.viz.style import FORMATS, save_figure  # matplotlib loads only here

    if fmt not in FORMATS:
        typer.echo(f"error: --format must be one of {', '.join(FORMATS)} (got {fmt!r})", err=True)
        raise typer.Exit(code=2)
    with exit_on(FileNotFoundError, ValueError):
        fig = sweep_regime_map(sweep_dir, x, y, facet)
    path = save_figure(fig, out if out is not None else sweep_dir / f"phase_diagram.{fmt}")
    typer.echo(f"wrote {path}")


def sweep_regime_map(sweep_dir: Path, x: str | None, y: str | None, facet: str | None):
    """A sweep folder's regime map: a phase diagram of a grid (default axes: the first two,
    a third as facets), with the path model's boundary when the folder has it, or the
    scattered map of any other design."""
    from circuits_abm.experiments.path_model import stored_path_table, with_path
    from circuits_abm.experiments.sweep.journal import load_results
    from circuits_abm.viz.phase_diagrams import phase_diagram
    from circuits_abm.viz.scatter import scatter_diagram

    results, agg, echo = load_results(sweep_dir)
    paths = stored_path_table(sweep_dir, echo.get("fingerprint", ""))
    if paths is not None:
        agg = with_path(agg, paths)
    axes = echo["axes"]
    named = [a for a in (x, y, facet) if a is not None]
    x = x or axes[0]
    y = y or (axes[1] if len(axes) > 1 else None)
    if y is None:
        raise ValueError("a phase diagram needs two swept axes")
    if facet is None and len(axes) > 2:
        facet = axes[2]
    for name in (x, y, facet):
        if name is not None and name not in axes:
            raise ValueError(f"{name!r} is not a swept axis; axes: {', '.join(axes)}")
    title = f"{echo['sweep']['name']}: which regime emerges"
    if echo["sweep"].get("design", "grid") == "grid":
        return phase_diagram(agg, x, y, facet, title=title)
    chosen = named if len(named) >= 2 else axes  # a scattered design has no cells
    return scatter_diagram(results, chosen, echo["sweep"]["axes"], title=title)


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
    from circuits_abm.viz.style import save_figure  # noqa: PLC0415
    from circuits_abm.viz.sweep_figures import sweep_curve  # noqa: PLC0415

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
