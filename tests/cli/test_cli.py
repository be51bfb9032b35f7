"""The command line: keys, db upgrade, and the first-start keys of `serve`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from openautotune.cli import app

runner = CliRunner()


def _invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_keys_create_prints_the_key_last_and_list_never_shows_it(sqlite_url: str) -> None:
    output = _invoke(
        "keys", "create", "--type", "console", "--read-only", "--description", "ci", "--database-url", sqlite_url
    )
    key = output.strip().splitlines()[-1]
    assert key.startswith("console-") and len(key) > 30
    listing = _invoke("keys", "list", "--database-url", sqlite_url)
    assert key not in listing
    assert "read-only" in listing and "console" in listing
    for kind, prefix in [("server", "secret-"), ("client", "client-")]:
        made = _invoke("keys", "create", "--type", kind, "--database-url", sqlite_url).strip().splitlines()[-1]
        assert made.startswith(prefix)


def test_keys_revoke(sqlite_url: str) -> None:
    output = _invoke("keys", "create", "--type", "server", "--database-url", sqlite_url)
    key_id = output.split("key ", 1)[1].split(".")[0].split()[0]
    assert "Revoked" in _invoke("keys", "revoke", key_id, "--database-url", sqlite_url)
    assert "revoked" in _invoke("keys", "list", "--database-url", sqlite_url)
    missing = runner.invoke(app, ["keys", "revoke", "nope", "--database-url", sqlite_url])
    assert missing.exit_code == 1


def test_db_upgrade_uses_the_environment_url(tmp_path: Path, monkeypatch: object) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    result = runner.invoke(app, ["db", "upgrade"], env={"OPENAUTOTUNE_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "env.db").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_once(tmp_path: Path) -> tuple[str, str | None]:
    """Start `serve` on an empty or existing database, wait until it answers, stop it; return its output."""
    port = _free_port()
    env = {**os.environ, "OPENAUTOTUNE_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "openautotune", "serve", "--port", str(port), "--update-interval", "3600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    console_key = None
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    for line in output.splitlines():
        if "Console API key" in line:
            console_key = line.split(":", 1)[1].strip()
    return output, console_key


def test_serve_prints_first_keys_once(tmp_path: Path) -> None:
    output, console_key = _serve_once(tmp_path)
    assert console_key is not None and console_key.startswith("console-"), output
    assert "secret-" in output
    again, second_key = _serve_once(tmp_path)
    assert second_key is None and "secret-" not in again


def test_serve_caps_blas_threads() -> None:
    import numpy  # noqa: F401  (loads the BLAS library threadpoolctl inspects)
    from threadpoolctl import threadpool_info

    from openautotune.cli.serve import _limit_blas_threads

    _limit_blas_threads(1)
    blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert blas and all(pool["num_threads"] == 1 for pool in blas)


def test_serve_says_when_its_port_is_taken(sqlite_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", "--port", str(port), "--database-url", sqlite_url])
    assert result.exit_code == 1
    assert f"127.0.0.1:{port} is already in use" in result.output
    assert "--port" in result.output
