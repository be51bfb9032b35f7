"""`@statsig/js-client` 3.33.5 (from npm) in a real Chromium page against a real server.

The page is served from another origin (`localhost` vs the server's `127.0.0.1`), so every call is
cross-origin: CORS is exercised as a web shop would. One client switches through 200 users, reads an
autotune for each and logs a success event; unloading the page sends the rest with `sendBeacon`.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from openautotune.domain.autotune import Stage
from openautotune.serving.evaluate import Evaluator
from openautotune.store.ingest_tables import events_table, exposures_table
from tests.e2e.live import LiveServer, free_port
from tests.e2e.npm_packages import JS_CLIENT_BUNDLE, node_packages
from tests.e2e.test_legacy_sdk import create
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("js_client")]

PAGE_DIR = Path(__file__).resolve().parent / "js_page"
USERS = [f"web-{i}" for i in range(200)]
VISITORS_PER_PAGE = 40
SUCCESS_EVENT = "web_checkout"
UNLOAD_EVENT = "web_leave"
# Nothing but loopback resolves: the SDK can never reach Statsig's hosts from the test.
LOOPBACK_ONLY = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@contextlib.contextmanager
def page_origin(directory: Path) -> Iterator[str]:
    """A static file server for the page: another origin than the openautotune server."""
    port = free_port()
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def page_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    node_packages()
    directory = tmp_path_factory.mktemp("js-page")
    shutil.copy(PAGE_DIR / "index.html", directory / "index.html")
    shutil.copy(JS_CLIENT_BUNDLE, directory / JS_CLIENT_BUNDLE.name)
    with page_origin(directory) as origin:
        yield f"{origin}/index.html"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, LOOPBACK_ONLY], headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


def run_page(chromium: Any, page_url: str, server: LiveServer, autotune_id: str, users: list[str]) -> dict[str, Any]:
    """Load the page for each group of visitors, run them, then unload it: what is still queued goes
    out as a beacon (Chromium caps a page's beacons at 64 KiB, one more reason for small groups)."""
    context = chromium.new_context()
    result: dict[str, Any] = {"readyMs": [], "seen": [], "fetched": [], "beacons": []}
    try:
        for start in range(0, len(users), VISITORS_PER_PAGE):
            page = context.new_page()
            page.on("request", lambda r: "rgstr" in r.url and result["fetched"].append((r.resource_type, r.url)))
            page.goto(page_url)
            run = page.evaluate(
                "([api, key, autotune, users, event]) => window.runUsers(api, key, autotune, users, event)",
                [
                    f"{server.url}/v1",
                    server.client_key,
                    autotune_id,
                    users[start : start + VISITORS_PER_PAGE],
                    SUCCESS_EVENT,
                ],
            )
            result["readyMs"] += run["readyMs"]
            result["seen"] += run["seen"]
            fetched = len(result["fetched"])
            page.evaluate("(event) => window.logBeforeUnload(event)", UNLOAD_EVENT)
            page.goto("about:blank")  # pagehide: the client sends what is left with navigator.sendBeacon
            result["beacons"] += [url for kind, url in result["fetched"][fetched:] if kind == "ping"]
            page.close()
    finally:
        context.close()
    return result


def wait_for_rows(server: LiveServer, query: sa.Select[Any], want: int, timeout: float = 15.0) -> list[Any]:
    """The rows of `query`, once at least `want` are stored (or whatever is there at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        with server.db.read() as conn:
            rows = list(conn.execute(query).all())
        if len(rows) >= want or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def stored_events(server: LiveServer, name: str, want: int) -> list[Any]:
    query = sa.select(events_table).where(events_table.c.event_name == name, events_table.c.id_type == "userID")
    return wait_for_rows(server, query, want)


def stored_exposures(server: LiveServer, autotune_id: str, want: int) -> list[Any]:
    return wait_for_rows(server, sa.select(exposures_table).where(exposures_table.c.autotune_id == autotune_id), want)


def expected_rules(server: LiveServer, autotune_id: str) -> dict[str, str]:
    evaluator = Evaluator.from_specs(server.v1_specs())
    answers = {}
    for user_id in USERS:
        evaluation = evaluator.evaluate({"userID": user_id}, autotune_id)
        assert evaluation is not None
        answers[user_id] = evaluation.rule_id
    return answers


def test_js_client_in_a_page_reads_our_variants_and_logs_back(
    shared_live_server: LiveServer, chromium: Any, page_url: str
) -> None:
    server = shared_live_server
    autotune_id = create(server, "web_checkout_button")["id"]
    expected = expected_rules(server, autotune_id)

    before = int(time.time() * 1000)
    result = run_page(chromium, page_url, server, autotune_id, USERS)
    after = int(time.time() * 1000)

    seen = {row["userID"]: row for row in result["seen"]}
    assert {user: row["ruleID"] for user, row in seen.items()} == expected
    assert all(row["reason"] == "Network:Recognized" for row in seen.values())
    assert len(set(expected.values())) == 3  # 200 users reach all three variants
    ready = sorted(result["readyMs"])
    print(
        f"js-client initialize or user switch to ready: median {ready[len(ready) // 2]:.1f} ms, max {ready[-1]:.1f} ms"
    )

    exposures = stored_exposures(server, autotune_id, len(USERS))
    events = stored_events(server, SUCCESS_EVENT, len(USERS))
    assert sorted((row.unit_id, row.variant_id, row.config_version) for row in exposures) == sorted(
        (user, rule, 1) for user, rule in expected.items()
    )
    for row in exposures:
        assert before <= row.time_ms <= after and abs(row.time_ms - seen[row.unit_id]["time"]) < 1000
        assert row.analysable and row.user["userID"] == row.unit_id
    assert sorted(row.unit_id for row in events) == sorted(USERS)
    assert all(before <= row.time_ms <= after and row.value == "1" for row in events)
    last_of_each_page = USERS[VISITORS_PER_PAGE - 1 :: VISITORS_PER_PAGE]
    # The unload path used sendBeacon (whether the client takes it or flushes by fetch on blur first
    # depends on the browser's focus events, so not every page's unload need be a beacon).
    assert result["beacons"]
    assert sorted(row.unit_id for row in stored_events(server, UNLOAD_EVENT, len(last_of_each_page))) == sorted(
        last_of_each_page
    )

    # The engine moves the split; a page loaded afterwards gets the new allocation.
    server.publish_allocation(autotune_id, (0.1, 0.1, 0.8), Stage.EXPLOITING)
    moved = expected_rules(server, autotune_id)
    assert moved != expected
    returning = USERS[:VISITORS_PER_PAGE]  # one page of returning visitors (their old values are cached)
    again = run_page(chromium, page_url, server, autotune_id, returning)
    assert {row["userID"]: row["ruleID"] for row in again["seen"]} == {user: moved[user] for user in returning}
    assert any(moved[user] != expected[user] for user in returning)
    exposures = stored_exposures(server, autotune_id, len(USERS) + len(returning))
    assert sum(row.config_version == 2 for row in exposures) == len(returning)
