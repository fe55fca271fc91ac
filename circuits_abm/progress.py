"""Progress of long work, wherever its output goes.

On a terminal a live bar, in a notebook a widget (both ``tqdm``'s), and anywhere else (a
log file, a pipe, CI) a plain line every ``LOG_INTERVAL`` seconds and at the end: a bar's
carriage returns would pile up into one unreadable line there, and no output at all
leaves a long job looking hung.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

import tqdm.auto
import tqdm.std

LOG_INTERVAL = 30.0  # seconds between progress lines in a log


class _Lines:
    """A stream for tqdm that writes each redraw of the bar as a line of its own."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> None:
        """Write ``text`` without its carriage returns, as one line, if anything is left."""
        text = text.replace("\r", "").strip()
        if text:
            self.stream.write(text + "\n")

    def flush(self) -> None:
        """Flush the underlying stream."""
        self.stream.flush()


def _in_notebook() -> bool:
    """Whether ``tqdm.auto`` chose the notebook widget (it does inside a Jupyter kernel)."""
    return any(cls.__module__ == "tqdm.notebook" for cls in tqdm.auto.tqdm.__mro__)


def progress_bar(enabled: bool = True, **kwargs: Any) -> tqdm.std.tqdm:
    """A ``tqdm`` bar (``kwargs`` as tqdm's: ``total``, ``desc``, ``unit``, an iterable)
    that suits where standard error goes; nothing at all when not ``enabled``."""
    if not enabled:
        return tqdm.std.tqdm(disable=True, **kwargs)
    if _in_notebook():
        return tqdm.auto.tqdm(**kwargs)
    if sys.stderr.isatty():
        return tqdm.std.tqdm(**kwargs)
    return tqdm.std.tqdm(file=_Lines(sys.stderr), mininterval=LOG_INTERVAL, ascii=True,
                         **kwargs)
