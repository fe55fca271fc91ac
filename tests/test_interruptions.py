"""What stops a command from outside ends it cleanly.  SIGTERM (what ``kill``, a batch
scheduler or a container stop sends) stops it as Ctrl-C does: a message, exit code 143, the
journal kept, and no process left behind.  A full disk (here a file-size limit, which fails
writes as a full disk does) gives one line naming the folder, and no part of a run."""

from __future__ import annotations

import contextlib
import json
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

STARTUP_SECONDS = 120  # a slow CI machine starting the fork server and its workers
LONG_RUN_STEPS = 400_000  # far longer than the test: each run is still going at the signal


FILE_SIZE_LIMIT = 8_000  # bytes: a few journal lines, less than a run's timeseries


def start(args: list[str], cwd: Path, preexec_fn=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "circuits_abm.cli", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=preexec_fn)


def small_files_only() -> None:
    """In the child: writing past FILE_SIZE_LIMIT fails with EFBIG, as on a full disk."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def wait_for_workers(main: psutil.Process, count: int = 2
                     ) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """``count`` pool workers under ``main``, and every process under ``main`` then.

    Workers are the fork server's children.  The fork server also starts a short-lived
    ``git`` (the provenance) while it loads the package, and between its fork and its exec
    that child looks like a worker; the workers are forked only after, so two of them
    alive at once are workers.  With ``count=1`` that short window remains."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        with contextlib.suppress(psutil.NoSuchProcess):
            servers = {p.pid for p in main.children() if is_fork_server(p)}
            descendants = main.children(recursive=True)
            workers = [p for p in descendants if p.ppid() in servers and is_fork_server(p)]
            if len(workers) >= count:
                return workers, descendants
    raise AssertionError(f"{count} worker processes did not start within {STARTUP_SECONDS} s")


def is_fork_server(process: psutil.Process) -> bool:
    """Whether ``process`` runs the fork server's command line (a worker forked from it
    does too)."""
    return "multiprocessing.forkserver" in " ".join(process.cmdline())


def test_sigterm_stops_a_sweep_and_leaves_no_process_behind(tmp_path):
    spec = tmp_path / "long.toml"
    spec.write_text(f'name = "long"\nbase = "standard"\nseeds = 4\nsteps = {LONG_RUN_STEPS}\n'
                    '[axes."geometry.sharing"]\nvalues = [0.1]\n')  # one chunk: one worker
    process = start(["sweep", str(spec), "--out", "out", "--workers", "2"], tmp_path)
    _, descendants = wait_for_workers(psutil.Process(process.pid), count=1)

    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 143
    assert "every finished run is kept" in stderr.decode()
    _, alive = psutil.wait_procs(descendants, timeout=30)
    assert alive == [], f"left behind: {[p.cmdline()[:3] for p in alive]}"
    journal = tmp_path / "out" / "runs.jsonl"
    lines = journal.read_text().splitlines() if journal.exists() else []
    assert all(isinstance(json.loads(line), dict) for line in lines)


def test_sigterm_stops_a_run_and_writes_nothing(tmp_path):
    process = start(["run", "standard", "--steps", str(LONG_RUN_STEPS), "--out", "out"],
                    tmp_path)
    process.stderr.read(1)  # the progress bar has started: the handler is in place

    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 143
    assert "interrupted: nothing was written" in stderr.decode()
    assert not list((tmp_path / "out").glob("*.parquet"))


def test_a_full_disk_during_a_run_leaves_no_part_of_it(tmp_path):
    process = start(["run", "standard", "--steps", "3000", "--out", "out", "-q"], tmp_path,
                    preexec_fn=small_files_only)
    _, stderr = process.communicate(timeout=300)

    assert process.returncode == 1
    assert stderr.decode().strip().splitlines()[-1].startswith(
        "error: could not write the run into out: [Errno 27]")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".circuits_abm.lock"]


def test_a_full_disk_during_a_sweep_keeps_the_journal_and_resumes(tmp_path):
    spec = tmp_path / "small.toml"
    spec.write_text('name = "small"\nbase = "standard"\nseeds = 4\nsteps = 300\n'
                    '[axes."geometry.sharing"]\nvalues = [0.1, 0.5, 0.9]\n')
    args = ["sweep", str(spec), "--out", "out", "--executor", "serial"]
    process = start(args, tmp_path, preexec_fn=small_files_only)
    _, stderr = process.communicate(timeout=300)

    assert process.returncode == 1
    assert "run the same command again to resume" in stderr.decode()
    kept = (tmp_path / "out" / "runs.jsonl").read_text().count("\n")  # whole lines
    assert 0 < kept < 12

    resumed = start(args, tmp_path)
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr.decode()
    assert f"resuming: {kept} of 12 runs already finished" in stdout.decode()


def test_a_worker_killed_under_any_parallel_command_is_one_line(tmp_path):
    folder = tmp_path / "claims"
    folder.mkdir()
    (folder / "long.toml").write_text(
        (Path(__file__).parent.parent / "scenarios" / "standard.toml").read_text()
        .replace("steps = 6000", f"steps = {LONG_RUN_STEPS}"))
    process = start(["catalogue", str(folder), "--runs", "4", "--workers", "2"], tmp_path)
    workers, _ = wait_for_workers(psutil.Process(process.pid))

    workers[0].kill()
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 1
    assert stderr.decode().strip().splitlines()[-1].startswith(
        "error: a worker process stopped before returning its runs")
    assert "Traceback" not in stderr.decode()


def test_signals_held_in_a_block_arrive_when_it_ends():
    from circuits_abm.experiments.executors import signals_held

    class Stop(Exception):
        pass

    def stop(signum, frame):
        raise Stop(signum)

    before = signal.signal(signal.SIGTERM, stop)
    try:
        finished = False
        try:
            with signals_held():
                signal.raise_signal(signal.SIGTERM)
                finished = True  # the block runs to its end
            raise AssertionError("the held signal was not delivered")
        except Stop as stopped:
            assert stopped.args == (signal.SIGTERM,)
        assert finished
        assert signal.getsignal(signal.SIGTERM) is stop
        try:
            with signals_held():
                signal.raise_signal(signal.SIGINT)
            raise AssertionError("the held Ctrl-C was not delivered")
        except KeyboardInterrupt:
            pass
    finally:
        signal.signal(signal.SIGTERM, before)


def test_sigterm_at_any_moment_of_the_start_leaves_no_process_behind(tmp_path):
    # The signal lands before the fork server, while it loads, while workers are started
    # or while they run; whichever, nothing may outlive the command.  (Before the handler
    # is installed the default action ends the process: -15.)
    spec = tmp_path / "two.toml"
    spec.write_text(f'name = "two"\nbase = "standard"\nseeds = 2\nsteps = {LONG_RUN_STEPS}\n'
                    '[axes."geometry.sharing"]\nvalues = [0.1, 0.5]\n')
    for delay in (0.5, 1.5, 3.0, 4.5):
        process = start(["sweep", str(spec), "--out", f"out{delay}", "--workers", "2"],
                        tmp_path)
        main = psutil.Process(process.pid)
        seen: dict[int, psutil.Process] = {}
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            with contextlib.suppress(psutil.NoSuchProcess):
                seen.update({p.pid: p for p in main.children(recursive=True)})
        process.send_signal(signal.SIGTERM)
        while process.poll() is None:  # a worker may still be started after the signal
            with contextlib.suppress(psutil.NoSuchProcess):
                seen.update({p.pid: p for p in main.children(recursive=True)})
        process.communicate(timeout=60)

        assert process.returncode in (143, -signal.SIGTERM), (delay, process.returncode)
        _, alive = psutil.wait_procs(list(seen.values()), timeout=30)
        assert alive == [], f"after {delay} s, left behind: {[p.cmdline()[:3] for p in alive]}"


class InterruptedWhileStarting(BaseException):
    pass


def test_an_interrupt_while_a_worker_starts_leaves_no_worker_behind(monkeypatch):
    # The narrowest moment: the fork server has forked a second worker, which will take
    # the second task, and the pool has not yet recorded it.  A real pool and a real
    # signal, sent from inside Process.start right after the fork: the pool must still
    # know that worker, so that end_workers stops it.
    import multiprocessing

    from circuits_abm.experiments.executors import ProcessPool, end_workers

    context = multiprocessing.get_context("forkserver")
    started: list[int] = []
    fork = context.Process.start

    def fork_then_signal(self):
        fork(self)
        started.append(self.pid)
        if len(started) == 2:
            signal.raise_signal(signal.SIGTERM)

    def interrupt(signum, frame):
        raise InterruptedWhileStarting

    monkeypatch.setattr(context.Process, "start", fork_then_signal)
    before = signal.signal(signal.SIGTERM, interrupt)
    pool = ProcessPool(max_workers=2, mp_context=context)
    try:
        try:
            pool.submit(time.sleep, 120)
            pool.submit(time.sleep, 120)
            raise AssertionError("the signal was not delivered")
        except InterruptedWhileStarting:
            known = set(pool._processes or {})  # what end_workers will stop
            end_workers(pool)
    finally:
        signal.signal(signal.SIGTERM, before)
    assert len(started) == 2
    assert set(started) <= known, f"workers {started}, of which the pool knows {known}"
    workers = []
    for pid in started:
        with contextlib.suppress(psutil.NoSuchProcess):
            workers.append(psutil.Process(pid))
    _, alive = psutil.wait_procs(workers, timeout=30)
    assert alive == [], f"left running: {[p.pid for p in alive]} of {started}"
