"""SQLite writers queue on a file lock (store.write_gate): across threads and processes, nested in one
thread, and never shared with a forked child."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import sqlalchemy as sa

from openautotune.store.database import Database
from openautotune.store.write_gate import WriteGate, gate_for

ROOT = Path(__file__).resolve().parents[2]
WRITER = """
import sys
import sqlalchemy as sa
from openautotune.store.database import Database
db = Database.from_url(sys.argv[1])
for _ in range(int(sys.argv[2])):
    with db.write() as conn:
        value = conn.execute(sa.text("SELECT n FROM counter")).scalar_one()
        conn.execute(sa.text("UPDATE counter SET n = :n"), {"n": value + 1})
db.dispose()
"""


def _counter(url: str) -> Database:
    db = Database.from_url(url)
    with db.write() as conn:
        conn.execute(sa.text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        conn.execute(sa.text("INSERT INTO counter VALUES (0)"))
    return db


def test_only_sqlite_files_get_a_gate(tmp_path: Path) -> None:
    assert gate_for(Database.from_url(f"sqlite:///{tmp_path / 'a.db'}").engine) is not None
    assert gate_for(Database.from_url("sqlite://").engine) is None
    assert gate_for(sa.create_engine("postgresql+psycopg://u@127.0.0.1:1/x")) is None


def test_writers_of_several_processes_and_threads_never_lose_an_update(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    db = _counter(url)
    processes = [
        subprocess.Popen([sys.executable, "-c", WRITER, url, "100"], cwd=ROOT, env={**os.environ}) for _ in range(2)
    ]

    def bump() -> None:
        for _ in range(50):
            with db.write() as conn:
                value = conn.execute(sa.text("SELECT n FROM counter")).scalar_one()
                conn.execute(sa.text("UPDATE counter SET n = :n"), {"n": value + 1})

    threads = [threading.Thread(target=bump) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(process.wait(timeout=120) == 0 for process in processes)
    with db.read() as conn:
        assert conn.execute(sa.text("SELECT n FROM counter")).scalar_one() == 2 * 100 + 3 * 50
    db.dispose()


def test_the_gate_nests_in_one_thread_and_excludes_another(tmp_path: Path) -> None:
    gate = WriteGate(str(tmp_path / "x-write.lock"))
    entered = threading.Event()

    def other() -> None:
        with gate.held():
            entered.set()

    with gate.held(), gate.held():
        thread = threading.Thread(target=other)
        thread.start()
        assert not entered.wait(0.3), "another thread got in while this one held the gate"
    assert entered.wait(10)
    thread.join()


def test_a_forked_child_opens_its_own_lock_file(tmp_path: Path) -> None:
    gate = WriteGate(str(tmp_path / "x-write.lock"))
    read, write = os.pipe()
    # The parent holds the gate (its thread's open file) before forking: a child sharing that file
    # would get in at once; one with its own file must wait for the parent.
    with gate.held():
        pid = os.fork()
        if pid == 0:
            os.close(read)
            with gate.held():
                os.write(write, b"in")
            os._exit(0)
        os.close(write)
        os.set_blocking(read, False)
        threading.Event().wait(0.3)
        try:
            early = os.read(read, 2)
        except BlockingIOError:
            early = b""
        assert early == b"", "the child shared the parent's lock"
    os.set_blocking(read, True)
    assert os.read(read, 2) == b"in"
    os.waitpid(pid, 0)
    os.close(read)
