"""The interactive explorer: a Mesa ``SolaraViz`` app over ``CircuitsModel``.

``circuits-abm explore [SCENARIO]`` serves it.  The sidebar has Mesa's own controls (Reset,
Play, Step, and the steps drawn per frame) and the model's parameters: a built-in scenario,
the seed, and sliders for sharing, distinguishability, phase length, gamma, the cost per
mechanism and the selection strength.  They are the flat keyword arguments the model takes
(dotted scenario paths), so Reset builds exactly what ``CircuitsModel(**params)`` would, and
the sliders start at the values of the scenario the app was started with.

The views reuse the figure functions of ``circuits_abm.viz.figures`` on the model's records
so far (``result_of``), so they are the same figures a finished run gets: the lineage
shares (Muller view), the retention heatmap, and the dominant circuit's tree with its
routing.  The regime label is re-read from the trajectory so far by the classifier, with its
confidence, beside the theory's prediction; the router share and mean fitness come from the
model's ``DataCollector``.

Needs the ``viz`` extra (``pip install circuits_abm[viz]``).
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

import pandas as pd
import solara
from mesa.visualization import SolaraViz

from circuits_abm import builtin
from circuits_abm.defaults import EXPLORE_SCENARIO_VARIABLE
from circuits_abm.engine.model import SCENARIO_SEED, CircuitsModel
from circuits_abm.engine.scenario import Scenario, load_scenario
from circuits_abm.experiments.runs import RunResult, result_of
from circuits_abm.viz import figures

DEFAULT_SCENARIO = "standard"

# Dotted path: (label, input type, min, max, step).  The ranges cover every built-in scenario.
SLIDERS: dict[str, tuple[str, str, float, float, float]] = {
    "geometry.sharing": ("sharing", "SliderFloat", -0.5, 1.0, 0.05),
    "geometry.distinguishability": ("distinguishability", "SliderFloat", 0.0, 1.0, 0.05),
    "schedule.phase_length": ("phase length (steps)", "SliderInt", 1, 200, 1),
    "learning.gamma": ("gamma (0 off-policy, 1 on-policy)", "SliderFloat", 0.0, 1.0, 0.05),
    "costs.per_mechanism": ("cost per mechanism", "SliderFloat", 0.0, 0.1, 0.005),
    "selection.strength": ("selection strength", "SliderFloat", 0.5, 20.0, 0.5),
}
MAX_SEED = 99


def dotted_value(spec: Scenario, path: str) -> Any:
    """The value of a scenario field given by dotted path."""
    value: Any = spec
    for part in path.split("."):
        value = getattr(value, part)
    return value


def model_params(scenario: str) -> dict[str, Any]:
    """SolaraViz's parameter inputs, starting at the values of ``scenario``."""
    spec = load_scenario(scenario)
    names = builtin.names("scenario")
    params: dict[str, Any] = {
        "spec": {"type": "Select", "label": "scenario", "value": scenario,
                 "values": names if scenario in names else [scenario, *names]},
        "seed": {"type": "SliderInt", "label": "seed", "value": min(spec.seed, MAX_SEED),
                 "min": 0, "max": MAX_SEED, "step": 1},
    }
    for path, (label, kind, low, high, step) in SLIDERS.items():
        value = dotted_value(spec, path)
        params[path] = {"type": kind, "label": label, "value": min(max(value, low), high),
                        "min": low, "max": high, "step": step}
    return params


class ExplorerModel(CircuitsModel):
    """``CircuitsModel`` whose steps and views take turns: SolaraViz steps the model in a
    worker thread while the page reads its records, and a record read mid-step would mix
    two populations."""

    def __init__(self, spec: Scenario | str = DEFAULT_SCENARIO, *,
                 rng: int | None | str = SCENARIO_SEED, steps: int | None = None,
                 **overrides: Any):
        # SolaraViz reads this signature: keyword parameters only, as CircuitsModel's.
        self.lock = threading.RLock()
        super().__init__(spec, rng=rng, steps=steps, **overrides)

    def step(self) -> None:
        """One step of ``CircuitsModel``, holding the lock."""
        with self.lock:
            super().step()


def initial_model(scenario: str) -> ExplorerModel:
    """The model the app opens with: ``scenario`` at the sliders' starting values."""
    params = model_params(scenario)
    return ExplorerModel(scenario, **{k: v["value"] for k, v in params.items() if k != "spec"})


_SNAPSHOTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def snapshot(model: ExplorerModel) -> RunResult | None:
    """The model's records so far (None before the first phase ends), computed once per
    step however many views ask."""
    with model.lock:
        cached = _SNAPSHOTS.get(model)
        if cached is None or cached[0] != model.steps:
            result = result_of(model) if model.recorder.phase_rows else None
            cached = _SNAPSHOTS[model] = (model.steps, result)
        return cached[1]


def settings_text(model: CircuitsModel) -> str:
    """The scenario, seed and slider values the model was built with, on one line."""
    values = " · ".join(f"{label.split(' (')[0]} {dotted_value(model.spec, path):g}"
                        for path, (label, *_) in SLIDERS.items())
    return f"`{model.spec.name}` · seed {model.seed} · {values}"


def regime_text(model: ExplorerModel) -> str:
    """The regime label read from the trajectory so far, with its confidence and the
    theory's prediction, as Markdown."""
    result = snapshot(model)
    if result is None:
        return f"**Regime**: no phase has finished yet  \n{settings_text(model)}"
    confidence = result.summary["classification"]["tree"]["confidence"]
    predicted = result.summary["prediction"]["regime"]
    return (f"**Regime so far**: `{result.regime}` (confidence {confidence:.2f}) · "
            f"theory predicts `{predicted}`  \n{result.structure}  \n{settings_text(model)}")


def _figure_view(draw):
    """A view that draws ``draw(result)`` on the latest snapshot."""

    def view(model: ExplorerModel):
        result = snapshot(model)
        if result is None:
            return solara.Markdown("*waiting for the first phase to end*")
        return solara.FigureMatplotlib(draw(result), format="png", bbox_inches="tight")

    view.__name__ = f"{draw.__name__}_view"
    return view


def regime_view(model: ExplorerModel):
    """The regime label as a Solara element."""
    return solara.Markdown(regime_text(model))


def reporter_table(model: ExplorerModel) -> pd.DataFrame:
    """The ``DataCollector``'s model reporters so far, with the step of each collection."""
    with model.lock:
        table = model.datacollector.get_model_vars_dataframe()
        table["step"] = model.datacollector._collection_steps[: len(table)]  # model time
    return table


def collected_view(model: ExplorerModel):
    """The ``DataCollector``'s router share and mean fitness against the step."""
    return solara.FigureMatplotlib(figures.reporter_plot(reporter_table(model)), format="png",
                                   bbox_inches="tight")


VIEWS = [
    regime_view,
    _figure_view(figures.muller_plot),
    _figure_view(figures.retention_heatmap),
    _figure_view(figures.structure_diagram),
    collected_view,
]


def explorer_page(scenario: str = DEFAULT_SCENARIO, model: ExplorerModel | None = None):
    """The SolaraViz element for ``scenario`` (a fresh model unless one is given)."""
    return SolaraViz(
        model if model is not None else initial_model(scenario),
        components=VIEWS,
        model_params=model_params(scenario),
        name="circuits_abm explorer",
        play_interval=1,
        render_interval=25,
    )


@solara.component
def Page():
    """What Solara serves: every browser session gets its own model."""
    scenario = os.environ.get(EXPLORE_SCENARIO_VARIABLE, DEFAULT_SCENARIO)
    model = solara.use_memo(lambda: initial_model(scenario), [])
    return explorer_page(scenario, model)
