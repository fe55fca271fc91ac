"""The interactive explorer: a Mesa ``SolaraViz`` app over ``CircuitsModel``.

``circuits-abm explore [SCENARIO]`` serves it.  The sidebar has Mesa's own controls (Reset,
Play, Step, and the steps drawn per frame) and the explorer's settings: a menu of the
built-in scenarios, the seed, and sliders for sharing, distinguishability, phase length,
gamma, the cost per mechanism and the selection strength, each showing its value.
Choosing a scenario loads *its* values into every slider.  Any change builds a new model at
once, exactly what ``CircuitsModel(scenario, rng=seed, **sliders)`` builds, and Mesa's
Reset rebuilds the model the settings describe at that moment.  Two buttons take the
settings out of the browser: one saves them as a scenario file (TOML, every field written
out), the other copies the matching ``circuits-abm run NAME --seed S --set PATH=VALUE ...``
command.

The views reuse the figure functions of ``circuits_abm.viz.run_figures`` on the model's records
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
from functools import partial
from typing import Any

import pandas as pd
import solara
from mesa.visualization import SolaraViz

from circuits_abm import builtin
from circuits_abm.defaults import EXPLORE_SCENARIO_VARIABLE
from circuits_abm.engine.loading import load_scenario, override
from circuits_abm.engine.model import SCENARIO_SEED, CircuitsModel
from circuits_abm.engine.scenario import Scenario, assignment_text, scenario_toml
from circuits_abm.experiments.runs import RunResult, result_of
from circuits_abm.viz import run_figures

DEFAULT_SCENARIO = "standard"

# Dotted path: (label, slider type, min, max, step).  The ranges cover every built-in scenario.
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


def scenario_settings(scenario: str) -> dict[str, Any]:
    """The explorer's settings for ``scenario`` as its file has them: ``spec`` (the name),
    ``seed``, and a value per slider (held inside the slider's range)."""
    spec = load_scenario(scenario)
    settings: dict[str, Any] = {"spec": scenario, "seed": min(spec.seed, MAX_SEED)}
    for path, (_, _, low, high, _) in SLIDERS.items():
        settings[path] = min(max(dotted_value(spec, path), low), high)
    return settings


def settings_for_menu(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The settings after the scenario menu chose ``name``.  A widget's value comes from the
    browser, and a forged one could name any file, so only a built-in scenario name is
    accepted; anything else keeps ``settings``."""
    if name not in builtin.names("scenario"):
        return settings
    return scenario_settings(name)


def changes_from_file(settings: dict[str, Any]) -> dict[str, Any]:
    """The slider values that differ from the scenario file's own."""
    spec = load_scenario(settings["spec"])
    return {path: settings[path] for path in SLIDERS
            if settings[path] != dotted_value(spec, path)}


def model_from(settings: dict[str, Any]) -> ExplorerModel:
    """The model the settings describe."""
    return ExplorerModel(settings["spec"], rng=settings["seed"],
                         **{path: settings[path] for path in SLIDERS})


def initial_model(scenario: str) -> ExplorerModel:
    """The model the app opens with: ``scenario`` as its file has it."""
    return model_from(scenario_settings(scenario))


def run_command(settings: dict[str, Any]) -> str:
    """The ``circuits-abm run`` command that runs what the settings describe."""
    sets = "".join(f" --set {assignment_text(path, value)}"
                   for path, value in changes_from_file(settings).items())
    return f"circuits-abm run {settings['spec']} --seed {settings['seed']}{sets}"


def scenario_file(settings: dict[str, Any]) -> tuple[str, str]:
    """``(file name, TOML text)`` of a scenario file holding the settings, seed included,
    so that ``circuits-abm run FILE`` runs what the explorer shows."""
    changes = changes_from_file(settings)
    spec = override(load_scenario(settings["spec"]), {**changes, "seed": settings["seed"]})
    changed = ", ".join(assignment_text(path, value) for path, value in changes.items())
    header = (f"Saved from the circuits_abm explorer: {settings['spec']}, seed "
              f"{settings['seed']}" + (f", with {changed}" if changed else "") +
              f".\nRun it: circuits-abm run {settings['spec']}-explored.toml")
    return f"{settings['spec']}-explored.toml", scenario_toml(spec, header)


class ExplorerModel(CircuitsModel):
    """``CircuitsModel`` whose steps and views take turns: SolaraViz steps the model in a
    worker thread while the page reads its records, and a record read mid-step would mix
    two populations."""

    def __init__(self, spec: Scenario | str = DEFAULT_SCENARIO, *,
                 rng: int | None | str = SCENARIO_SEED, steps: int | None = None,
                 settings: solara.Reactive[dict[str, Any]] | None = None, **overrides: Any):
        # SolaraViz reads this signature: keyword parameters only, as CircuitsModel's.
        # Mesa's Reset passes the page's ``settings`` (a fixed parameter that it hands back
        # unchanged), and the model is built from what they hold at that moment.
        if settings is not None:
            spec, rng = settings.value["spec"], settings.value["seed"]
            overrides = {path: settings.value[path] for path in SLIDERS}
        self.lock = threading.RLock()
        super().__init__(spec, rng=rng, steps=steps, **overrides)

    def step(self) -> None:
        """One step of ``CircuitsModel``, holding the lock."""
        with self.lock:
            super().step()


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
    return solara.FigureMatplotlib(run_figures.reporter_plot(reporter_table(model)), format="png",
                                   bbox_inches="tight")


VIEWS = [
    regime_view,
    _figure_view(run_figures.muller_plot),
    _figure_view(run_figures.retention_heatmap),
    _figure_view(run_figures.structure_diagram),
    collected_view,
]


@solara.component_vue("copy_button.vue")
def CopyButton(text: str, label: str = "copy command"):
    """A button that copies ``text`` to the clipboard, in the browser."""


@solara.component
def SettingsPanel(settings: dict[str, Any], on_settings):
    """The scenario menu, the seed, the sliders (each showing its value), the matching
    command with a button that copies it, and a button that saves a scenario file."""

    def change(path: str, value: Any) -> None:
        on_settings({**settings, path: round(value, 6) if isinstance(value, float) else value})

    with solara.Card("Scenario"):
        solara.Select("scenario", value=settings["spec"], values=builtin.names("scenario"),
                      on_value=lambda name: on_settings(settings_for_menu(name, settings)))
        solara.SliderInt(f"seed: {settings['seed']}", value=settings["seed"], min=0,
                         max=MAX_SEED, on_value=partial(change, "seed"))
        for path, (label, kind, low, high, step) in SLIDERS.items():
            slider = solara.SliderFloat if kind == "SliderFloat" else solara.SliderInt
            slider(f"{label}: {settings[path]:g}", value=settings[path], min=low, max=high,
                   step=step, on_value=partial(change, path))
        command = run_command(settings)
        solara.Markdown(f"```\n{command}\n```")
        name, text = scenario_file(settings)
        with solara.Row():
            CopyButton(text=command)
            solara.FileDownload(text, filename=name, label="save scenario (TOML)")


def explorer_page(settings: solara.Reactive[dict[str, Any]],
                  model: solara.Reactive[ExplorerModel]):
    """The SolaraViz element over ``model``; Mesa's Reset rebuilds it from ``settings``."""
    return SolaraViz(
        model,
        components=VIEWS,
        model_params={"settings": settings},
        name="circuits_abm explorer",
        play_interval=1,
        render_interval=25,
    )


@solara.component
def Page():
    """What Solara serves: every browser session gets its own settings and model, and a
    change of settings replaces the model at once."""
    settings = solara.use_memo(lambda: solara.reactive(scenario_settings(
        os.environ.get(EXPLORE_SCENARIO_VARIABLE, DEFAULT_SCENARIO))), [])
    model = solara.use_memo(lambda: solara.reactive(model_from(settings.value)), [])

    def apply(new: dict[str, Any]) -> None:
        settings.value = new
        model.value = model_from(new)

    with solara.Sidebar():
        SettingsPanel(settings.value, apply)
    explorer_page(settings, model)
