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

    with exit_on(FileNotFoundError, ValueError):
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


@figures_app.command("compare")
def figures_compare(
    left: Annotated[Path, typer.Argument(help="A sweep folder (drawn on the left).")],
    right: Annotated[Path, typer.Argument(help="A sweep folder over the same grid.")],
    labels: Annotated[str, typer.Option(help="The two maps' names, comma-separated.")] = (
        "agent-based model,network"),
    out: Annotated[Path, typer.Option(help="Output file.")] = Path("comparison.png"),
    doc: Annotated[
        Path | None, typer.Option(help="Write the table into this file between its markers.")
    ] = None,
    marker: Annotated[str, typer.Option(help="The markers' name in --doc.")] = "comparison",
) -> None:
    """Two sweeps' regime maps side by side with the theory's boundaries, where their
    majorities agree, and a table of each point's rates (printed, or written into --doc)."""
    from circuits_abm.experiments.agreement import map_agreement, map_agreement_table
    from circuits_abm.experiments.storage import splice_between_markers
    from circuits_abm.experiments.sweep.journal import load_results
    from circuits_abm.viz.phase_diagrams import compared_maps
    from circuits_abm.viz.style import save_figure

    names = tuple(part.strip() for part in labels.split(","))
    if len(names) != 2:
        typer.echo(f"error: --labels needs two names separated by a comma (got {labels!r})",
                   err=True)
        raise typer.Exit(code=2)
    with exit_on(FileNotFoundError, ValueError):
        _, left_agg, left_echo = load_results(left)
        _, right_agg, right_echo = load_results(right)
        if left_echo["axes"] != right_echo["axes"] or len(left_echo["axes"]) != 2:
            raise ValueError(f"the sweeps need the same two axes (got {left_echo['axes']} and "
                             f"{right_echo['axes']})")
        axes = left_echo["axes"]
        compared = map_agreement(left_agg, right_agg, axes)
    fig = compared_maps(left_agg, right_agg, compared, axes[0], axes[1], names)
    typer.echo(f"wrote {save_figure(fig, out)}")
    table = map_agreement_table(compared, axes, *names)
    typer.echo(table)
    if doc is not None:
        with exit_on(ValueError):
            splice_between_markers(doc, marker, table)
        typer.echo(f"updated the table in {doc}", err=True)
