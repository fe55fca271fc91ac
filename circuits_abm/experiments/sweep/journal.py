"""A sweep's output folder: the append-only journal of finished runs and the tables
derived from it.

Every finished run is appended to ``runs.jsonl`` at once (flushed and fsync'd), so a
sweep killed at any moment, even by ``kill -9``, loses no finished run; a torn last line
is cut.  ``results.parquet`` (a row per run, in task order, so every executor gives the
same table) and ``aggregate.parquet`` (a row per point) are rewritten atomically from
the journal.  A folder is bound to one sweep by its fingerprint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from circuits_abm.experiments.run_checks import check_sweep
from circuits_abm.experiments.runs import environment_provenance
from circuits_abm.experiments.storage import (
    OutputError,
    append_durably,
    atomic_write_bytes,
    ensure_writable,
    parquet_metadata,
    read_json,
    read_json_line,
    strict_json_line,
    write_parquet,
)
from circuits_abm.experiments.sweep.aggregate import aggregate
from circuits_abm.experiments.sweep.records import results_frame

if TYPE_CHECKING:
    from circuits_abm.experiments.sweep.spec import Sweep


JOURNAL = "runs.jsonl"

RESULTS = "results.parquet"

AGGREGATE = "aggregate.parquet"

SWEEP_ECHO = "sweep.json"


class SweepStore:
    """A sweep's output folder: the append-only journal and the derived tables."""

    def __init__(self, out_dir: str | Path):
        self.dir = Path(out_dir)
        self.journal = self.dir / JOURNAL

    def claim(self, sweep: Sweep) -> None:
        """Check the folder can hold ``sweep``: writable, and empty or holding this very
        sweep (which then resumes).  A different sweep's folder, or any other non-empty
        folder, is refused with ``OutputError`` before anything is written."""
        ensure_writable(self.dir)
        echo_path = self.dir / SWEEP_ECHO
        if echo_path.is_file():
            try:
                old = read_json(echo_path)
            except ValueError:
                old = {}
            if old.get("fingerprint") != sweep.fingerprint:
                raise OutputError(
                    f"{self.dir} holds a different sweep ({old.get('sweep', {}).get('name', '?')}"
                    f"); choose another --out (the same sweep file and package version resume)"
                )
            return
        present = sorted(p.name for p in self.dir.iterdir() if not p.name.startswith("."))
        if present:
            listed = ", ".join(present[:3]) + (", ..." if len(present) > 3 else "")
            raise OutputError(f"{self.dir} is not empty and holds no sweep ({listed}); "
                              "choose another --out")

    def finished(self) -> dict[str, dict[str, Any]]:
        """Records in the journal by run id (a torn last line from a kill is skipped);
        ``OutputError`` naming the line when one is JSON but not a run record (the journal
        was edited by hand or by another program)."""
        records: dict[str, dict[str, Any]] = {}
        if not self.journal.exists():
            return records
        for number, line in enumerate(self.journal.read_text(encoding="utf-8").splitlines(), 1):
            try:
                record = read_json_line(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(record, dict) or not isinstance(record.get("run_id"), str):
                raise OutputError(f"{self.journal}, line {number}: not a run record (a JSON "
                                  "object with a run_id); restore the line or remove it to "
                                  "run that point again")
            records[record["run_id"]] = record  # a retried run's last record counts
        return records

    def append(self, record: dict[str, Any]) -> None:
        """Add one finished run, durably, before anything else happens."""
        self._repair_torn_tail()
        append_durably(self.journal, strict_json_line(record) + "\n")

    def _repair_torn_tail(self) -> None:
        """A kill mid-write can leave a last line without newline: cut it before appending."""
        if not self.journal.exists() or self.journal.stat().st_size == 0:
            return
        with self.journal.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) == b"\n":
                return
        text = self.journal.read_bytes()
        atomic_write_bytes(self.journal, text[: text.rfind(b"\n") + 1])

    def write_tables(self, sweep: Sweep) -> pd.DataFrame:
        """Rewrite results.parquet and aggregate.parquet from the journal (task order).
        Both carry ``partial = true`` in their metadata until every run has finished."""
        records = self.finished()
        rows = [records[t["run_id"]] for t in sweep.tasks if t["run_id"] in records]
        table = results_frame(rows, sweep.axes)
        partial = {"partial": str(len(rows) < len(sweep.tasks)).lower(),
                   "finished_runs": str(len(rows)), "runs": str(len(sweep.tasks)),
                   "provenance": json.dumps(environment_provenance(), sort_keys=True)}
        write_parquet(self.dir / RESULTS, table, partial)
        write_parquet(self.dir / AGGREGATE, aggregate(table, sweep.axes), partial)
        return table


def load_results(out_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The tables of a sweep folder.

    Parameters
    ----------
    out_dir
        A folder written by ``sweep``, ``run_sweep`` or ``circuits-abm sweep``.

    Returns
    -------
    results : pandas.DataFrame
        One row per run.
    aggregate : pandas.DataFrame
        One row per parameter point: the probability of each regime over the seeds with its
        Wilson 95% interval, the modal structure, and the theory's prediction.
    echo : dict
        The sweep as run, its fingerprint and provenance; ``echo["partial"]`` says whether
        the tables are a checkpoint of an unfinished sweep.

    Raises
    ------
    FileNotFoundError
        If ``out_dir`` is not a sweep folder.
    ValueError
        If a table cannot be read.

    Examples
    --------
    >>> import circuits_abm as ca, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> design = {"name": "demo", "base": "standard", "seeds": 2, "steps": 600,
    ...           "axes": {"geometry.sharing": {"values": [0.1, 0.9]}}}
    >>> _ = ca.sweep(design, folder, executor="serial", progress=False)
    >>> results, aggregate, echo = ca.load_results(folder)
    >>> len(results), len(aggregate), echo["partial"]
    (4, 2, False)
    """
    out = Path(out_dir)
    missing = [n for n in (RESULTS, AGGREGATE, SWEEP_ECHO) if not (out / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{out} is not a sweep folder: missing {', '.join(missing)}")
    try:
        echo = read_json(out / SWEEP_ECHO)
        results, aggregated = pd.read_parquet(out / RESULTS), pd.read_parquet(out / AGGREGATE)
        echo["partial"] = parquet_metadata(out / RESULTS).get("partial") == "true"
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the sweep in {out}: {str(exc).splitlines()[0]}") from None
    check_sweep(out, results, aggregated, echo)
    return results, aggregated, echo
