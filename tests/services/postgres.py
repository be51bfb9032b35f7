"""A throwaway PostgreSQL server: initdb in a temporary directory, on a free loopback port, removed after.

Started once per test run (by the controller when pytest-xdist runs workers, which inherit its URL
through the environment) when OPENAUTOTUNE_TEST_POSTGRES_URL is not given. PostgreSQL refuses to run
as root, so as root the server runs as the `postgres` system user that Debian's package creates.
Durability settings are off: the tests kill processes, never the machine, and the OS keeps what a
killed server wrote.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


class Unavailable(Exception):
    """PostgreSQL's server binaries are not installed (or cannot run here); the message says why."""


def _bin_dir() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    raise Unavailable("no initdb on PATH or in /usr/lib/postgresql/*/bin (Debian: apt-get install postgresql)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> str | None:
    """The user to run the server as: ourselves, or `postgres` when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise Unavailable("running as root and there is no `postgres` user to run PostgreSQL as") from None
    return "postgres"


@dataclass
class ThrowawayPostgres:
    directory: Path
    bin_dir: Path
    port: int
    user: str | None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def start(cls) -> ThrowawayPostgres:
        bin_dir = _bin_dir()
        user = _run_as()
        directory = Path(tempfile.mkdtemp(prefix="openautotune-pg-"))
        if user is not None:
            shutil.chown(directory, user=user)
        server = cls(directory=directory, bin_dir=bin_dir, port=_free_port(), user=user)
        try:
            server._initdb()
            server._pg_ctl("start", "-w", "-t", "60", "-l", str(directory / "server.log"), "-o", server._options())
        except BaseException:
            server.stop()
            raise
        return server

    def _options(self) -> str:
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.directory),
            "max_connections": "300",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        return f"-p {self.port} " + " ".join(f"-c {name}={value}" for name, value in settings.items())

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            args,
            check=False,
            user=self.user,
            capture_output=True,
            text=True,
            cwd=self.directory,
            start_new_session=True,
        )
        if done.returncode != 0:
            raise Unavailable(f"{Path(args[0]).name} failed: {(done.stderr or done.stdout).strip()[-2000:]}")

    def _initdb(self) -> None:
        data = str(self.directory / "data")
        self._run(str(self.bin_dir / "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")

    def _pg_ctl(self, *args: str) -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.directory / "data"), *args)

    def stop(self) -> None:
        """Stop the server (immediate: nothing in it is kept) and remove its directory."""
        if (self.directory / "data" / "postmaster.pid").exists():
            with contextlib.suppress(Unavailable):
                self._pg_ctl("stop", "-m", "immediate", "-w", "-t", "30")
        shutil.rmtree(self.directory, ignore_errors=True)
