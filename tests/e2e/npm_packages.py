"""Statsig's JavaScript SDKs from the npm registry, pinned by `tests/e2e/node/package-lock.json`.

`node_packages()` installs them with `npm ci` on first use (and again whenever the lock file
changes) into `tests/e2e/node/node_modules` (not committed), under a file lock so parallel test
workers install once. Without Node.js and npm the calling test is skipped with one clear line.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parent / "node"
MODULES = NODE_DIR / "node_modules"
JS_CLIENT_BUNDLE = MODULES / "@statsig" / "js-client" / "build" / "statsig-js-client.min.js"
INSTALL_TIMEOUT_SECONDS = 300


def node_executable() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js and npm are not installed: the JavaScript SDK tests need them (apt-get install npm)")
    return node


def node_packages() -> Path:
    """The installed `node_modules` (installing them first when missing or out of date)."""
    node_executable()
    lock_digest = hashlib.sha256((NODE_DIR / "package-lock.json").read_bytes()).hexdigest()
    stamp = MODULES / ".installed-lock-sha256"
    with (NODE_DIR / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.exists() or stamp.read_text() != lock_digest:
            npm = shutil.which("npm")
            assert npm is not None
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=NODE_DIR,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_SECONDS,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"npm ci failed in {NODE_DIR}:\n{done.stdout}\n{done.stderr}")
            stamp.write_text(lock_digest)
    return MODULES
