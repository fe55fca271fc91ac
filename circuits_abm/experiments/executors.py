"""Where work runs: in this process, in a pool of processes, or on a Dask cluster.

One ``concurrent.futures.Executor`` interface serves them all (``make_executor``): sweeps
submit chunks of runs to it, and experiments without a journal (the catalogue, the path
model, the reward-seeking experiments) map a function over arguments with
``map_in_processes``.

The process pool starts its workers from a fork server that has imported the package and
loaded the compiled kernels (``circuits_abm.experiments.worker``), so no worker pays for
that again.  Python's ``forkserver`` start method makes every new worker import the main
script once more; a script that starts work at its top level would start it again in each
worker.  ``refuse_in_a_starting_worker`` stops such a worker with a message naming the
``if __name__ == "__main__":`` guard, and a pool whose workers died raises
``WorkersLost`` with the likely cause.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from circuits_abm.defaults import EXECUTORS
from circuits_abm.progress import progress_bar

CONNECT_TIMEOUT = "10s"  # how long to try a --scheduler address before giving up


class SchedulerError(ValueError):
    """A Dask scheduler address that cannot be reached."""


class WorkersLost(RuntimeError):
    """A worker process died before it returned its runs."""


GUARD = 'if __name__ == "__main__":'

GUARD_PATTERN = re.compile(r"""if\s+__name__\s*==\s*['"]__main__['"]\s*:""")


class SerialExecutor(cf.Executor):
    """Runs each task at submission, in this process (debugging, tiny sweeps)."""

    def submit(self, fn, /, *args, **kwargs):
        """Run ``fn`` now, in this process, and return a finished future."""
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # an interrupt (KeyboardInterrupt) is not a result
            future.set_exception(exc)
        return future


@contextlib.contextmanager
def make_executor(kind: str, workers: int | None, scheduler: str | None) -> Iterator[cf.Executor]:
    """A concurrent.futures executor of the requested kind, shut down on exit."""
    if kind == "serial":
        yield SerialExecutor()
    elif kind == "processes":
        # forkserver: forking a process that already runs threads (pyarrow's) can deadlock.
        # The server imports the package and loads the compiled kernels once
        # (circuits_abm.experiments.worker); each worker forked from it starts ready and runs
        # task after task, so start-up is paid once per sweep, not once per run.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["circuits_abm.experiments.worker"])
        pool = ProcessPool(max_workers=workers or os.cpu_count(), mp_context=context)
        try:
            yield pool
        except BaseException:
            end_workers(pool)
            raise
        pool.shutdown(wait=True)
    elif kind == "dask":
        try:
            from distributed import Client, LocalCluster  # noqa: PLC0415 (optional extra)
        except ImportError:
            raise RuntimeError("the dask executor needs `pip install circuits_abm[dask]`") from None
        if scheduler:
            try:
                client = Client(scheduler, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as exc:
                raise SchedulerError(
                    f"cannot reach the Dask scheduler at {scheduler} within {CONNECT_TIMEOUT}: "
                    f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                ) from None
            with client:
                yield client.get_executor()
        else:
            with (
                LocalCluster(
                    n_workers=workers or os.cpu_count(),
                    threads_per_worker=1,
                    dashboard_address=None,
                ) as cluster,
                Client(cluster) as client,
            ):
                yield client.get_executor()
    else:
        raise ValueError(f"executor {kind!r} is not one of {', '.join(EXECUTORS)}")


class ProcessPool(cf.ProcessPoolExecutor):
    """A process pool whose workers are always known to it.

    The pool starts a worker inside ``submit``: the fork server forks it, then the pool
    records its pid.  An interrupt raised between the two would leave a worker that
    ``end_workers`` cannot see, running on and holding the terminal's output open; so
    ``submit`` holds SIGINT and SIGTERM until it returns (``signals_held``)."""

    def submit(self, fn, /, *args, **kwargs):
        """``ProcessPoolExecutor.submit`` with interrupts held until it returns."""
        with signals_held():
            return super().submit(fn, *args, **kwargs)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the duration of the block, then deliver the first one
    that came (its handler runs, and raises, as if it had just arrived).

    Python-level handlers, not the process's signal mask: a mask would be inherited by
    the fork server started inside the block, and by every worker forked from it, which
    could then no longer be stopped.  Only the main thread can set handlers; elsewhere
    the block runs unguarded."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    previous = {number: handler for number, handler in previous.items() if handler is not None}
    for number in previous:  # (None: a handler set outside Python, left alone)
        signal.signal(number, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if held:
            signal.raise_signal(held[0])


def end_workers(pool: cf.ProcessPoolExecutor) -> None:
    """Stop a pool that is being left by an exception (an interrupt, SIGTERM, an error):
    queued tasks are cancelled and running ones killed, where ``shutdown`` would wait
    for every running task to finish, and a worker whose parent has gone would run its
    chunk to the end on its own.  A second interrupt waits until every worker is gone."""
    with signals_held():
        workers = list((pool._processes or {}).values())  # noqa: SLF001 (public in Python 3.14)
        pool.shutdown(wait=False, cancel_futures=True)
        for process in workers:
            process.terminate()
        for process in workers:
            process.join()


def map_in_processes(fn: Callable[..., Any], arglists: list[tuple], workers: int, desc: str,
                     unit: str, progress: bool = True) -> list[Any]:
    """``[fn(*args) for args in arglists]`` in ``workers`` processes (in this one if 1), in
    order, with a progress bar: for experiments that need no journal to resume."""
    refuse_in_a_starting_worker()
    with make_executor("serial" if workers == 1 else "processes", workers, None) as pool:
        try:  # a worker can die while tasks are still being submitted
            futures = [pool.submit(fn, *args) for args in arglists]
            return [f.result() for f in progress_bar(progress, iterable=futures, desc=desc,
                                                     unit=unit)]
        except BrokenProcessPool as exc:
            raise WorkersLost(lost_workers_message(exc, "nothing was kept")) from exc


def refuse_in_a_starting_worker() -> None:
    """Stop a worker process that is importing the user's script again.

    Python's ``forkserver`` and ``spawn`` start methods run the main script once more in
    every new worker; a sweep started at the script's top level would then start again
    inside each worker.  Raised there, this message is what the worker prints."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise RuntimeError(
            "circuits_abm: a worker process is importing your script again and reached the "
            f"code that starts worker processes.  Put that code under `{GUARD}` (see "
            "https://docs.python.org/3/library/multiprocessing.html#the-spawn-and-forkserver-"
            "start-methods)."
        )


def lost_workers_message(exc: BaseException, kept: str) -> str:
    """Why a process pool broke, and what to do: the missing guard when the main script
    has none, else the usual causes."""
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None) if getattr(main, "__spec__", None) is None else None
    try:
        text = Path(script).read_text(encoding="utf-8", errors="replace") if script else ""
    except OSError:
        text = ""
    if text and not GUARD_PATTERN.search(text):
        cause = (f"Every worker imports your script {script} again, and it starts this work "
                 f"at its top level.  Put the code that starts it under `{GUARD}`:\n\n"
                 f"    {GUARD}\n        ca.sweep(...)\n")
    else:
        cause = "Likely causes: the machine ran out of memory, or the process was killed."
    return f"a worker process stopped before returning its runs ({exc}); {kept}.  {cause}"
