"""``motivations``: the experiments on monitors and quarantine modules (docs/motivations.md),
each printing its tables, and with ``--doc`` writing them into a page between markers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from circuits_abm.cli.common import app, publish

motivations_app = typer.Typer(
    no_args_is_help=True,
    help="Monitors that can be evaded, cramped, acted on, and asked which environment taught "
         "a motivation.")
app.add_typer(motivations_app, name="motivations")

SeedsOption = Annotated[int, typer.Option(min=2, help="Seeds per point.")]
WorkersOption = Annotated[int, typer.Option(min=1, help="Worker processes.")]
FigureOption = Annotated[Path | None, typer.Option(help="Draw the figure into this file.")]
DocOption = Annotated[
    Path | None, typer.Option(help="Write the tables into this file between its markers.")]


@motivations_app.command("evasion")
def motivations_evasion(seeds: SeedsOption = 20, workers: WorkersOption = 2,
                        figure: FigureOption = None, doc: DocOption = None,
                        marker: Annotated[str, typer.Option(help="The markers' name.")] = "evasion",
                        ) -> None:
    """Evasion over training time (the "forbidden technique" figure): a motivation with a
    weak third pathway that the monitor does not watch, its held-out leak against training
    steps under plain, block and route at three monitor angles, beside what the geometry
    predicts; and block's leak under several selection strengths."""
    from circuits_abm.experiments import evasion  # noqa: PLC0415
    from circuits_abm.viz.motivation_figures import evasion_figure  # noqa: PLC0415

    leaks, selection = evasion.experiment(seeds, workers)
    predicted = {angle: evasion.prediction(evasion.scenario("block", angle))
                 for angle in evasion.ANGLES}
    publish(evasion.markdown(leaks, selection), lambda: evasion_figure(leaks, predicted),
            figure, doc, marker)


@motivations_app.command("capacity")
def motivations_capacity(seeds: SeedsOption = 20, workers: WorkersOption = 2,
                         figure: FigureOption = None, doc: DocOption = None,
                         marker: Annotated[str, typer.Option(help="The markers' name.")]
                         = "module-capacity") -> None:
    """A cramped quarantine module: the quarantine scenario under route with the module's
    norm capped, the motivation that overflows into the parameters beside the hand-derived
    bound, and the capability kept."""
    from circuits_abm.experiments import module_capacity  # noqa: PLC0415
    from circuits_abm.viz.motivation_figures import capacity_figure  # noqa: PLC0415

    runs = module_capacity.experiment(seeds, workers)
    plain = float(runs[runs.rule == "plain"].held_out.mean())
    publish(module_capacity.markdown(runs),
            lambda: capacity_figure(module_capacity.table(runs), plain), figure, doc, marker)


@motivations_app.command("noise")
def motivations_noise(seeds: SeedsOption = 20, workers: WorkersOption = 2,
                      doc: DocOption = None,
                      marker: Annotated[str, typer.Option(help="The markers' name.")]
                      = "monitor-noise") -> None:
    """A monitor that errs both ways: the quarantine scenario under block and route with
    the monitor's direction read afresh, with noise, every phase; the motivation left in
    deployment and the capability lost, against plain learning."""
    from circuits_abm.experiments import monitor_noise  # noqa: PLC0415

    publish(monitor_noise.markdown(monitor_noise.experiment(seeds, workers)), None, None, doc,
            marker)


@motivations_app.command("recovery")
def motivations_recovery(seeds: SeedsOption = 20, workers: WorkersOption = 2,
                         doc: DocOption = None,
                         marker: Annotated[str, typer.Option(help="The markers' name.")]
                         = "recovery") -> None:
    """The recovery loop (alarm, halt, fix, restart from a checkpoint) against plain, block
    and route in scenarios/recovery_loop.toml: the motivation left in deployment, the
    capability kept, and whether the probe named the environments that pay."""
    from circuits_abm.experiments import recovery  # noqa: PLC0415

    publish(recovery.markdown(recovery.experiment(seeds, workers)), None, None, doc, marker)


@motivations_app.command("attribution")
def motivations_attribution(seeds: SeedsOption = 20, workers: WorkersOption = 2,
                            doc: DocOption = None,
                            marker: Annotated[str, typer.Option(help="The markers' name.")]
                            = "attribution") -> None:
    """Which environments teach the motivation: the monitor's flows against the probe, in
    the quarantine scenario and two variants (a specialised population, a weakly hackable
    environment), under route and under watch, at several monitors: precision and recall."""
    from circuits_abm.experiments import attribution  # noqa: PLC0415

    publish(attribution.markdown(attribution.experiment(seeds, workers)), None, None, doc,
            marker)
