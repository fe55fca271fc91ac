"""How responsive the explorer is: frames per second at a chosen number of steps per frame.

A frame is what the app does between two screen updates while playing: step the model
``steps_per_frame`` times, read its records so far (the snapshot every view shares), and
draw the four figures to PNG as ``solara.FigureMatplotlib`` does.  The browser's own work
(decoding the PNGs) is not included.  Measured on the standard scenario from step 1000, so
the records have their usual size.
"""

from __future__ import annotations

import io
import time

from circuits_abm.viz import explorer, run_figures

FRAMES = 8
TARGET_FPS = 1.0  # at the explorer's default of 25 steps per frame


def draw_frame(model: explorer.ExplorerModel, steps: int) -> None:
    for _ in range(steps):
        model.step()
    result = explorer.snapshot(model)
    for fig in (run_figures.muller_plot(result), run_figures.retention_heatmap(result),
                run_figures.structure_diagram(result),
                run_figures.reporter_plot(explorer.reporter_table(model))):
        fig.savefig(io.BytesIO(), format="png", bbox_inches="tight")


def frames_per_second(steps_per_frame: int) -> float:
    model = explorer.initial_model("standard")
    for _ in range(1000):
        model.step()
    draw_frame(model, 1)  # warm caches (the theory's prediction, fonts)
    start = time.perf_counter()
    for _ in range(FRAMES):
        draw_frame(model, steps_per_frame)
    return FRAMES / (time.perf_counter() - start)


def main() -> None:
    for steps in (1, 25, 100):
        fps = frames_per_second(steps)
        line = (f"explorer, {steps:3d} steps per frame: {fps:5.2f} frames/s, "
                f"{fps * steps:7.0f} steps/s")
        if steps == 25:
            line += f" (target {TARGET_FPS} frame/s: {'met' if fps >= TARGET_FPS else 'not met'})"
        print(line)


if __name__ == "__main__":
    main()
