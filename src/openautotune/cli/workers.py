"""`serve --workers N`: N server processes on one port, forked from a small supervisor.

Why pre-fork, not uvicorn's own `workers=`: `serve` binds the port first (a taken port is said at once;
early requests wait in the backlog) and builds the app before forking, so every worker starts at once,
sharing the parent's loaded modules copy-on-write. uvicorn's multi-process mode spawns fresh
interpreters that import everything again (about a second each, all at once on a busy machine) and
needs the app as an import string. Each worker gets a listening socket of its own on the same port
(SO_REUSEPORT; `cli.serve._listen` says why).

The supervisor only forks, restarts a worker that dies (unless workers keep dying at once: then it
stops, as a bad setting would make every restart fail), and on SIGTERM or SIGINT stops them all.
Workers die with it (`PR_SET_PDEATHSIG`): a killed `serve` leaves no orphan holding the port.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from openautotune.cli.common import err

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
GRACE_SECONDS = 30.0  # for workers to finish their requests on shutdown, then they are killed
QUICK_DEATH_SECONDS = 5.0
QUICK_DEATHS_TO_GIVE_UP = 5
PR_SET_PDEATHSIG = 1


def prepare_metrics_dir() -> Path | None:
    """Point prometheus_client at a directory shared by the workers; before it is first imported.

    Returns the directory to remove at exit (one we made), or None when the operator chose it (then
    it is emptied: values left by a previous run would be counted again)."""
    chosen = os.environ.get(MULTIPROC_ENV)
    if chosen:
        directory = Path(chosen)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        return None
    made = Path(tempfile.mkdtemp(prefix="openautotune-metrics-"))
    os.environ[MULTIPROC_ENV] = str(made)
    return made


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to kill this worker when the supervisor ends, however it ends (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the supervisor died before the call above
        os._exit(1)


class Supervisor:
    """Forks `count` workers that each run `serve_one`, and keeps that many running until told to stop."""

    def __init__(self, count: int, serve_one: Callable[[int], None], on_exit: Callable[[int], None]) -> None:
        self._count = count
        self._serve_one = serve_one  # with the worker's index (0 to count - 1; a replacement keeps it)
        self._on_exit = on_exit  # with the pid of each worker that ended
        self._workers: dict[int, tuple[int, float]] = {}  # pid -> (index, start time)
        self._stopping = False
        self._quick_deaths = 0

    def run(self) -> int:
        """Until SIGTERM or SIGINT; returns the exit status for `serve`."""
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for index in range(self._count):
                self._fork(index)
            return self._watch()
        finally:
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self, _signum: int, _frame: object) -> None:
        self._stopping = True

    def _fork(self, index: int) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the supervisor's code
            status = 0
            try:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, signal.SIG_DFL)  # uvicorn installs its own
                _die_with_parent(parent)
                self._serve_one(index)
            except BaseException:
                traceback.print_exc()
                status = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status)
        self._workers[pid] = (index, time.monotonic())

    def _watch(self) -> int:
        while not self._stopping:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:  # none left (a fork failed): nothing to watch
                return 1
            if pid == 0:
                time.sleep(0.2)  # a signal wakes it early
                continue
            worker = self._workers.pop(pid, None)
            self._on_exit(pid)
            if worker is None or self._stopping:
                continue
            index, started = worker
            self._quick_deaths = self._quick_deaths + 1 if time.monotonic() - started < QUICK_DEATH_SECONDS else 0
            if self._quick_deaths >= QUICK_DEATHS_TO_GIVE_UP:
                err.print(f"workers keep exiting at start (last status {status}); stopping. See the log above.")
                return 1
            err.print(f"worker {pid} exited (status {status}); starting another")
            self._fork(index)
        return 0

    def _shutdown(self) -> None:
        """SIGTERM every worker (uvicorn finishes its requests), wait, then kill what is left."""
        for pid in self._workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        while self._workers and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.05)
                continue
            self._workers.pop(pid, None)
            self._on_exit(pid)
        for pid in list(self._workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            self._on_exit(pid)
        self._workers.clear()


def remove_metrics_dir(directory: Path | None) -> None:
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)
