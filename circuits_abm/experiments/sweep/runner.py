"""Running a sweep: the submission loop, failures, and the public ``sweep`` call.

Chunks of runs (the replicates of one point together) go to an executor
(``circuits_abm.experiments.executors``) with a bounded number in flight; each finished
record is journaled before the next chunk is submitted, so an interruption loses at most
the runs in flight.  A sweep with more than ``max_failed_share`` of its runs failed, or
all of them, ends with ``SweepFailed`` naming the first error; ``retry_failed`` runs the
failed runs again when the sweep resumes.  A worker process that dies stops the sweep with
``WorkersLost`` and journals nothing for its runs.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import time
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pandas as pd

from circuits_abm.defaults import MAX_FAILED_SHARE
from circuits_abm.experiments.executors import (
    WorkersLost,
    lost_workers_message,
    make_executor,
    refuse_in_a_starting_worker,
)
from circuits_abm.experiments.runs import environment_provenance, package_version
from circuits_abm.experiments.storage import folder_lock, write_json
from circuits_abm.experiments.sweep.journal import SWEEP_ECHO, SweepStore
from circuits_abm.experiments.sweep.records import Task, failure_fields, run_task, task_fields
from circuits_abm.experiments.sweep.spec import Sweep, load_sweep, sweep_from_dict
from circuits_abm.progress import progress_bar


class SweepFailed(RuntimeError):
    """More of a sweep's runs failed than it allows.  The tables are written; ``results``
    holds them."""

    def __init__(self, message: str, results: pd.DataFrame):
        super().__init__(message)
        self.results = results


def check_failures(table: pd.DataFrame, max_failed_share: float, out_dir: Path) -> None:
    """Raise ``SweepFailed`` when every run failed, or more than ``max_failed_share``."""
    failed = table[table.status != "ok"]
    if failed.empty or (len(failed) < len(table) and len(failed) <= max_failed_share * len(table)):
        return
    raise SweepFailed(
        f"{len(failed)} of {len(table)} runs failed (at most {max_failed_share:.0%} may); the "
        f"first: {failed.error.iloc[0].rstrip('.')}.  The tables in {out_dir} hold every run; "
        "fix the cause, then run again with retry_failed=True (--retry-failed) to redo the "
        "failed runs.",
        table,
    )


def run_sweep(
    sweep: Sweep,
    out_dir: str | Path,
    executor: str = "processes",
    workers: int | None = None,
    scheduler: str | None = None,
    checkpoint_seconds: float = 60.0,
    progress: Callable[[int, int, dict[str, Any] | None], None] | None = None,
    retry_failed: bool = False,
    max_failed_share: float = MAX_FAILED_SHARE,
) -> pd.DataFrame:
    """Run every task of ``sweep`` not already finished in ``out_dir``; return the results.

    The lower-level loop under ``sweep``: each finished run is journaled at once, so an
    interrupted sweep resumes without redoing it; the tables are checkpointed from the
    journal every ``checkpoint_seconds`` and at the end, written atomically.  The folder
    is locked against a second writer, and bound to the sweep's fingerprint (a different
    sweep is refused).

    Parameters
    ----------
    sweep
        From ``load_sweep`` or ``sweep_from_dict``.
    out_dir
        The output folder (created if needed).
    executor, workers, scheduler
        ``"processes"`` (``workers`` processes, default the number of cores), ``"serial"``,
        or ``"dask"`` (a local cluster, or the Dask ``scheduler`` address given).
    checkpoint_seconds
        Least time between checkpoints of the tables.  Rewriting them reads the whole
        journal and aggregates it (about a second at a thousand runs), so checkpointing by
        time keeps that work from competing with the workers for the cores.
    progress
        ``progress(done, total, record)`` is called once at the start (record None) and
        after every run.
    retry_failed
        Run again the runs that the journal holds as failed (their new records replace
        the old ones).
    max_failed_share
        Raise ``SweepFailed`` (after writing the tables) when more than this share of the
        runs failed, or all of them.

    Raises
    ------
    SweepFailed
        Too many runs failed; the first error is in the message.
    WorkersLost
        A worker process died; its runs were not journaled, so resuming runs them.

    Returns
    -------
    pandas.DataFrame
        The results table, one row per run (see ``sweep``).

    Examples
    --------
    >>> import circuits_abm as ca, tempfile
    >>> taxonomy = ca.load_sweep("taxonomy")
    >>> results = ca.run_sweep(taxonomy, tempfile.mkdtemp(), workers=2)  # doctest: +SKIP
    """
    refuse_in_a_starting_worker()
    store = SweepStore(out_dir)
    store.claim(sweep)
    echo = {
        "sweep": sweep.spec.model_dump(mode="json"),
        "axes": sweep.axes,
        "source": sweep.source,
        "tasks": len(sweep.tasks),
        "package_version": package_version(),
        "fingerprint": sweep.fingerprint,
        "provenance": environment_provenance(),
    }
    with folder_lock(store.dir):
        done = store.finished()
        if retry_failed:
            done = {key: record for key, record in done.items() if record["status"] == "ok"}
        pending = [t for t in sweep.tasks if t["run_id"] not in done]
        total = len(sweep.tasks)
        finished = total - len(pending)
        if progress:
            progress(finished, total, None)
        if not pending:
            write_json(store.dir / SWEEP_ECHO, echo)
            table = store.write_tables(sweep)
            check_failures(table, max_failed_share, store.dir)
            return table
        checkpointed = time.monotonic()
        serial = executor == "serial"
        window = 1 if serial else 2 * (workers or os.cpu_count() or 1)
        chunks = replicate_chunks(pending, 1 if serial else CHUNK_RUNS)
        with make_executor(executor, workers, scheduler) as pool:
            write_json(store.dir / SWEEP_ECHO, echo)  # only once the executor is up
            for record in _rolling(pool, chunks, window):
                store.append(record)
                finished += 1
                if progress:
                    progress(finished, total, record)
                if time.monotonic() - checkpointed >= checkpoint_seconds:
                    store.write_tables(sweep)
                    checkpointed = time.monotonic()
        table = store.write_tables(sweep)
        check_failures(table, max_failed_share, store.dir)
        return table


CHUNK_RUNS = 8  # at most this many replicates of a point go to a worker as one task


def replicate_chunks(tasks: list[Task], size: int) -> list[list[Task]]:
    """Consecutive tasks of the same point, at most ``size`` to a chunk.  A worker runs a
    chunk seed after seed; the replicates share their scenario, so the theory's
    prediction is computed once per chunk rather than once per run."""
    chunks: list[list[Task]] = []
    for task in tasks:
        if chunks and len(chunks[-1]) < size and chunks[-1][-1]["point"] == task["point"]:
            chunks[-1].append(task)
        else:
            chunks.append([task])
    return chunks


def run_chunk(tasks: list[Task]) -> list[dict[str, Any]]:
    """``run_task`` for each task of a chunk, in order, in one worker."""
    return [run_task(task) for task in tasks]


def _rolling(pool: cf.Executor, chunks: list[list[Task]], window: int):
    """Run ``chunks`` with at most ``window`` in flight, yielding each record as its chunk
    finishes: every finished chunk is journaled before the next is submitted, so an
    interrupt (even of the serial executor, which runs at submission, one run to a chunk)
    loses at most the runs in flight."""
    queue = iter(chunks)
    in_flight: dict[cf.Future, list[Task]] = {}

    def top_up() -> None:
        while len(in_flight) < window and (chunk := next(queue, None)) is not None:
            try:
                in_flight[pool.submit(run_chunk, chunk)] = chunk
            except BrokenProcessPool as exc:  # a worker died between two submissions
                raise WorkersLost(lost_workers_message(
                    exc, "the runs in flight were not journaled and run again when you resume"
                )) from exc

    top_up()
    while in_flight:
        done, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
        for future in done:
            yield from _results_or_failures(future, in_flight.pop(future))
        top_up()


def _results_or_failures(future: cf.Future, chunk: list[Task]) -> list[dict[str, Any]]:
    """The worker's records, or a failed row per run if the chunk could not run (say its
    task could not be sent).  A dead worker process stops the sweep (``WorkersLost``)."""
    try:
        return future.result()
    except BrokenProcessPool as exc:
        raise WorkersLost(lost_workers_message(
            exc, f"its {len(chunk)} runs were not journaled and run again when you resume"
        )) from exc
    except Exception as exc:
        return [{**task_fields(task), **failure_fields(exc), "wall_time_seconds": 0.0}
                for task in chunk]


def sweep(
    sweep: str | Path | dict[str, Any] | Sweep,
    out: str | Path,
    executor: str = "processes",
    workers: int | None = None,
    progress: bool = True,
    retry_failed: bool = False,
    max_failed_share: float = MAX_FAILED_SHARE,
) -> pd.DataFrame:
    """Run a sweep into ``out`` and return its results, one row per run.

    An interrupted sweep resumes where it stopped when called again with the same ``out``;
    a different sweep into the same folder is an error, not a mix.  With the ``processes``
    executor, call it from a script under ``if __name__ == "__main__":`` (every worker
    imports the script again).

    Parameters
    ----------
    sweep
        A sweep file, a built-in sweep's name (``"taxonomy"``), a dict with the fields of a
        sweep file, or a ``Sweep`` from ``load_sweep``.
    out
        The output folder: ``results.parquet`` (one row per run), ``aggregate.parquet``
        (one row per point, regime probabilities with Wilson intervals) and ``runs/``.
    executor, workers
        ``"processes"`` (default; ``workers`` defaults to the number of cores),
        ``"serial"``, or ``"dask"``.
    progress
        Show a progress bar (terminal or notebook).
    retry_failed, max_failed_share
        Run again the runs that failed last time; raise ``SweepFailed`` when more than
        ``max_failed_share`` of the runs (or all of them) failed.

    Returns
    -------
    pandas.DataFrame
        One row per run: the swept values, the seed, the regime and structure, the
        theory's prediction, and the run's metrics.

    Examples
    --------
    >>> import circuits_abm as ca, tempfile
    >>> design = {"name": "demo", "base": "standard", "seeds": 2, "steps": 600,
    ...           "axes": {"geometry.sharing": {"values": [0.1, 0.9]}}}
    >>> results = ca.sweep(design, tempfile.mkdtemp(), executor="serial", progress=False)
    >>> results.groupby("geometry.sharing").size()
    geometry.sharing
    0.1    2
    0.9    2
    dtype: int64
    >>> results.groupby("geometry.sharing").regime.value_counts()  # doctest: +SKIP
    """
    if isinstance(sweep, dict):
        spec = sweep_from_dict(sweep)
    elif isinstance(sweep, Sweep):
        spec = sweep
    else:
        spec = load_sweep(sweep)
    with progress_bar(progress, total=len(spec.tasks), unit="run",
                      desc=spec.spec.name) as bar:

        def advance(done: int, total: int, record: dict | None) -> None:
            bar.update(done if record is None else 1)

        return run_sweep(spec, out, executor, workers, progress=advance,
                         retry_failed=retry_failed, max_failed_share=max_failed_share)
