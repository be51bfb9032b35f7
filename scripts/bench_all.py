"""`make bench`: run every bench/*.py one after another and put their output into docs/benchmarks.md.

The figures are ratios measured within one run of each script (the machines are shared and noisy), so
they are written together with the date, the machine and the command, between two markers in
docs/benchmarks.md (the section "Latest `make bench` run"); the rest of that file is prose kept by hand.
PostgreSQL figures need a server: OPENAUTOTUNE_TEST_POSTGRES_URL, else a throwaway one is started.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.services.postgres import ThrowawayPostgres, Unavailable  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
START = "<!-- make-bench:start -->"
END = "<!-- make-bench:end -->"


def run_all(env: dict[str, str]) -> str:
    sections = []
    for script in sorted((ROOT / "bench").glob("*.py")):
        began = time.monotonic()
        done = subprocess.run(
            [sys.executable, str(script)], check=False, env=env, cwd=ROOT, capture_output=True, text=True
        )
        took = time.monotonic() - began
        print(f"{script.name}: exit {done.returncode} in {took:.0f} s", flush=True)
        output = (done.stdout + ("\n" + done.stderr if done.returncode else "")).strip()
        sections.append(f"### {script.name} ({took:.0f} s, exit {done.returncode})\n\n```\n{output}\n```\n")
    return "\n".join(sections)


def write_doc(body: str) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = (
        f"{START}\nRun {stamp} on {platform.node() or 'this machine'} ({os.cpu_count()} cores, Python "
        f"{platform.python_version()}) with `make bench`.\n\n{body}\n{END}"
    )
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n## Latest `make bench` run\n\n" + block + "\n"
    DOC.write_text(text)


def main() -> int:
    env = dict(os.environ)
    server = None
    if not env.get("OPENAUTOTUNE_TEST_POSTGRES_URL"):
        try:
            server = ThrowawayPostgres.start()
            env["OPENAUTOTUNE_TEST_POSTGRES_URL"] = server.url
        except Unavailable as error:
            print(f"PostgreSQL figures skipped: {error}", file=sys.stderr)
    try:
        write_doc(run_all(env))
    finally:
        if server is not None:
            server.stop()
    print(f"figures written to {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
