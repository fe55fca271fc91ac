"""The look every figure shares: the palette, fonts, the figure class, saving.

Circuit kinds and regimes use the Okabe-Ito palette (colour-blind safe; the regimes' own
colours are in ``circuits_abm.regimes``), environments evenly spaced samples of
cividis, which cannot be mistaken for either.  Figures are built without pyplot and show
themselves in Jupyter; ``save_figure`` writes them atomically.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib import colormaps, rc_context
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure as _MatplotlibFigure

from circuits_abm.engine.rules import RULES
from circuits_abm.experiments.storage import atomic_write_bytes


class Figure(_MatplotlibFigure):
    """A matplotlib figure that shows itself in Jupyter without ``%matplotlib inline``
    (these figures are built without pyplot, so no backend would display them)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        return buffer.getvalue()


# Okabe-Ito, colour-blind safe: one colour per learning rule in the registry, in its order,
# and one for routers.
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#D55E00", "#0072B2", "#000000")

KIND_COLOURS = {
    **{rule: OKABE_ITO[i % len(OKABE_ITO)] for i, rule in enumerate(RULES)},
    "router": "#CC79A7",
}


PATH_COLOUR = "#CC79A7"  # Okabe-Ito reddish purple: the path model, unlike any regime

# Environments and clusters: evenly spaced samples of cividis (colour-blind safe, and one
# blue-to-yellow family that cannot be mistaken for the circuit kinds).
ENVIRONMENT_MAP = "cividis"

FORMATS = ("png", "svg", "pdf")

FONT = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 8}


def style():
    """A context in which figures are drawn in the house fonts."""
    return rc_context(FONT)


def save_figure(fig: Figure, path: Path, dpi: int = 150) -> Path:
    """Write a figure atomically (format from the suffix): an interrupted run never leaves
    a half-written file that looks finished."""
    buffer = io.BytesIO()
    fmt = path.suffix.lstrip(".") or None  # no suffix: matplotlib's default format, as savefig
    fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())
    return path


def figure_and_axes(ax: Axes | None, size: tuple[float, float]) -> tuple[Figure, Axes]:
    """``ax`` and its figure, or a new figure of ``size`` inches with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def environment_colours(names: list[str]) -> dict[str, tuple]:
    """A fixed colour per name, in first-seen order (repeats keep their first colour)."""
    unique = list(dict.fromkeys(names))
    cmap = colormaps[ENVIRONMENT_MAP]
    points = np.linspace(0.0, 0.95, len(unique)) if len(unique) > 1 else [0.3] * len(unique)
    return {n: cmap(p) for n, p in zip(unique, points, strict=True)}


def shade(colour: str, k: int) -> tuple[float, float, float]:
    """A lighter or darker variant of ``colour`` so neighbouring lineages stay distinguishable."""
    factor = (0.0, 0.25, -0.18, 0.4, -0.3)[k % 5]
    rgb = np.array(to_rgb(colour))
    return tuple(rgb + (1 - rgb) * factor if factor > 0 else rgb * (1 + factor))


def axis_name(path: str | None) -> str:
    """A swept field's last part in words: ``geometry.sharing`` -> ``sharing``."""
    return "" if path is None else path.split(".")[-1].replace("_", " ")


def tick(value) -> str:
    """A tick label: three significant digits for numbers, text as it is."""
    return f"{value:.3g}" if isinstance(value, int | float | np.number) else str(value)
