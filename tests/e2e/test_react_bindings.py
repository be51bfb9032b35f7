"""`@statsig/react-bindings` 3.33.5 (React 18) in a real Chromium page against a real server.

The page (tests/e2e/react_page) is what a React shop writes: `useClientAsyncInit` + `StatsigProvider`
+ `useExperiment`, a button whose click logs the success event. The test bundles it from the pinned npm
packages with esbuild, signs users in one after another as a shop does, clicks for each, and checks
that every rendered variant is the server's own evaluation and every exposure and click is stored.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from openautotune.serving.evaluate import Evaluator
from tests.e2e.live import LiveServer
from tests.e2e.npm_packages import node_packages
from tests.e2e.test_js_client import chromium, page_origin, stored_events, stored_exposures
from tests.e2e.test_legacy_sdk import create

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("js_client")]

__all__ = ["chromium"]  # the module-scoped browser fixture, shared with the js-client test

PAGE_DIR = Path(__file__).resolve().parent / "react_page"
USERS = [f"react-{i}" for i in range(40)]
SUCCESS_EVENT = "react_checkout"
BUILD_TIMEOUT_SECONDS = 120
# The client allows itself 50 requests a second; a sign-in and a flush may each send one.
PACE_SECONDS = 0.05


@pytest.fixture(scope="module")
def react_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    modules = node_packages()
    directory = tmp_path_factory.mktemp("react-page")
    shutil.copy(PAGE_DIR / "index.html", directory / "index.html")
    built = subprocess.run(
        [
            str(modules / ".bin" / "esbuild"),
            str(PAGE_DIR / "app.jsx"),
            "--bundle",
            "--minify",
            "--jsx=automatic",
            "--define:process.env.NODE_ENV='production'",
            f"--outfile={directory / 'app.js'}",
        ],
        env={"NODE_PATH": str(modules), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    with page_origin(directory) as origin:
        yield f"{origin}/index.html"


def rendered(page: Any, user_id: str) -> dict[str, str]:
    """The button's attributes once it shows `user_id`'s values from the server."""
    button = page.wait_for_selector(f'#checkout[data-user="{user_id}"][data-reason="Network:Recognized"]')
    return {name: button.get_attribute(f"data-{name}") for name in ("rule", "group", "value")}


def test_react_bindings_render_our_variants_and_log_clicks(
    shared_live_server: LiveServer, chromium: Any, react_page: str
) -> None:
    server = shared_live_server
    autotune_id = create(server, "react_checkout_button")["id"]
    evaluator = Evaluator.from_specs(server.v1_specs())
    expected = {}
    for user_id in USERS:
        evaluation = evaluator.evaluate({"userID": user_id}, autotune_id)
        assert evaluation is not None
        expected[user_id] = evaluation.rule_id

    query = urlencode(
        {"api": f"{server.url}/v1", "key": server.client_key, "autotune": autotune_id, "event": SUCCESS_EVENT}
    )
    before = int(time.time() * 1000)
    context = chromium.new_context()
    seen: dict[str, dict[str, str]] = {}
    try:
        page = context.new_page()
        page.goto(f"{react_page}?{query}&{urlencode({'user': USERS[0]})}")
        for index, user_id in enumerate(USERS):
            if index:
                page.evaluate("(userID) => window.switchUser(userID)", user_id)
            seen[user_id] = rendered(page, user_id)
            page.click("#checkout")
            time.sleep(PACE_SECONDS)
        page.evaluate("() => window.flushEvents()")
    finally:
        context.close()
    after = int(time.time() * 1000)

    assert {user: row["rule"] for user, row in seen.items()} == expected
    assert len(set(expected.values())) == 3  # 40 users reach all three variants

    # One exposure per signed-in user, with the variant rendered: the renders made while a user's values
    # were still loading logged nothing the engine would count.
    exposures = stored_exposures(server, autotune_id, len(USERS))
    assert sorted((row.unit_id, row.variant_id, row.analysable) for row in exposures) == sorted(
        (user, rule, True) for user, rule in expected.items()
    )
    assert all(before <= row.time_ms <= after for row in exposures)
    clicks = stored_events(server, SUCCESS_EVENT, len(USERS))
    assert sorted(row.unit_id for row in clicks) == sorted(USERS)
    assert all(before <= row.time_ms <= after and row.value == "1" for row in clicks)
