"""The `serve --workers` supervisor (cli.workers.Supervisor), with workers that do nothing but live or die."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from openautotune.cli import workers as workers_cli


def test_it_restarts_a_dying_worker_in_its_slot_and_gives_up_on_a_crash_loop() -> None:
    ended: list[int] = []
    supervisor = workers_cli.Supervisor(2, lambda index: os._exit(3 + index), on_exit=ended.append)
    started = time.monotonic()
    assert supervisor.run() == 1, "workers that die at once, again and again, stop serve"
    assert time.monotonic() - started < 30
    assert len(ended) >= workers_cli.QUICK_DEATHS_TO_GIVE_UP


def test_sigterm_stops_every_worker_and_reaps_it() -> None:
    ended: list[int] = []
    marks: list[int] = []

    def live(index: int) -> None:
        time.sleep(600)  # a worker: until SIGTERM (default action: end)

    supervisor = workers_cli.Supervisor(2, live, on_exit=ended.append)

    def terminate_once_both_run() -> None:
        # The handler is installed before the first fork: once both workers exist, SIGTERM reaches it
        # (never pytest's own default, which would end this test process).
        deadline = time.monotonic() + 60
        while len(supervisor._workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        marks.append(1)
        os.kill(os.getpid(), signal.SIGTERM)

    sender = threading.Thread(target=terminate_once_both_run, daemon=True)
    sender.start()
    assert supervisor.run() == 0
    sender.join()
    assert marks and len(ended) == 2
    for pid in ended:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_the_metrics_directory_is_made_and_removed_or_emptied_when_chosen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Set (empty: "not chosen") through monkeypatch, so the value prepare_metrics_dir writes is undone.
    monkeypatch.setenv(workers_cli.MULTIPROC_ENV, "")
    made = workers_cli.prepare_metrics_dir()
    assert made is not None and made.is_dir() and os.environ[workers_cli.MULTIPROC_ENV] == str(made)
    workers_cli.remove_metrics_dir(made)
    assert not made.exists()
    chosen = tmp_path / "metrics"
    chosen.mkdir()
    (chosen / "counter_123.db").write_bytes(b"old")
    (chosen / "keep.txt").write_text("not ours")
    monkeypatch.setenv(workers_cli.MULTIPROC_ENV, str(chosen))
    assert workers_cli.prepare_metrics_dir() is None
    assert sorted(path.name for path in chosen.iterdir()) == ["keep.txt"]


def test_the_command_line_does_not_import_prometheus_client_before_serve_sets_its_directory() -> None:
    """prometheus_client picks its multi-process mode when first imported: `serve --workers N` must set
    PROMETHEUS_MULTIPROC_DIR before that, so nothing on the CLI's import path may import it."""
    import subprocess
    import sys

    probe = "import sys, openautotune.cli, openautotune.cli.serve; print('prometheus_client' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
