"""The dashboard in a real browser (Debian's Chromium via Playwright) against a real server process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from openautotune.clock import FixedClock, SystemClock
from openautotune.service import autotunes as autotune_service
from openautotune.service import keys as key_service
from openautotune.service.keys import KeyKind
from openautotune.store import updates
from openautotune.store.ingest_tables import exposures_table
from tests.e2e.live import LiveServer
from tests.engine.conftest import Env
from tests.web.contextual_seed import trained
from tests.web.helpers import ADMIN, HOUR_MS, create, insert_records, record

pytestmark = pytest.mark.e2e

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
DAY_MS = 24 * HOUR_MS
HOURS = 73
# [name, points] per trace of a drawn chart: points of the figure's data (long series arrive as typed
# arrays, {dtype, bdata}) must equal the points plotly.js drew (`_fullData`, decoded).
POINTS_JS = """selector => {
  const chart = document.querySelector(selector);
  const count = v => v && v.bdata ? atob(v.bdata).length / Number(v.dtype.slice(1)) : v.length;
  return chart.data.map((t, i) => [t.name, count(t.x) === chart._fullData[i].x.length ? count(t.x) : -1]);
}"""  # 73 hourly updates: 4 UTC days of a 3-day-old autotune


def _seed(server: LiveServer) -> dict[str, Any]:
    """A running autotune with 73 hourly update records and exposures on 4 days, plus a draft."""
    clock = SystemClock()
    now = clock.now_ms()
    start = now - now % DAY_MS - 3 * DAY_MS
    running = create(server.db, clock, "Checkout button", variants=("Classic", "Bold", "Minimal"))
    autotune_service.start(server.db, clock, ADMIN, running.id)
    running = autotune_service.get(server.db, running.id)
    with server.db.write() as conn:
        conn.execute(
            exposures_table.insert(),
            [
                {
                    "autotune_id": running.id,
                    "run": running.run,
                    "unit_id": f"user-{day}-{n}",
                    "rule_id": "rule",
                    "variant_id": running.definition.variants[n % 3].id,
                    "config_version": 1,
                    "time_ms": start + day * DAY_MS + n * 60_000,
                    "received_ms": start + day * DAY_MS + n * 60_000,
                    "user": None,
                    "analysable": True,
                    "reason": "",
                    "dedup_key": f"{day}-{n}",
                }
                for day in range(4)
                for n in range(30)
            ],
        )
    insert_three_variant_records(server, running, start)
    draft = create(server.db, clock, "Pricing page")
    return {"running": running, "draft": draft, "start": start}


def insert_three_variant_records(server: LiveServer, running: Any, start: int) -> None:
    with server.db.write() as conn:
        for hour in range(1, HOURS + 1):
            units = 40 * hour
            as_of = start + hour * HOUR_MS
            stage = "exploring" if hour < 24 else "exploiting"
            per_variant = [
                (units, units // 10, 0.05, 0.2),
                (units, units * 13 // 100, 0.91, 0.7),
                (units, units // 12, 0.04, 0.1),
            ]
            updates.insert_record(
                conn,
                updates.UpdateRecord(
                    autotune_id=running.id,
                    incarnation_ms=running.created_ms,
                    run=running.run,
                    as_of_ms=as_of,
                    computed_ms=as_of,
                    stage=stage,
                    decision=None,
                    allocation_version=None,
                    record=record(running, as_of, stage, per_variant),
                ),
            )


def _log_exposure(server: LiveServer, autotune: Any, unit_id: str) -> None:
    now = SystemClock().now_ms()
    row = {
        "autotune_id": autotune.id,
        "run": autotune.run,
        "unit_id": unit_id,
        "rule_id": "rule",
        "variant_id": autotune.definition.variants[0].id,
        "config_version": 1,
        "time_ms": now,
        "received_ms": now,
        "user": None,
        "analysable": True,
        "reason": "",
        "dedup_key": unit_id,
    }
    with server.db.write() as conn:
        conn.execute(exposures_table.insert(), [row])


@pytest.fixture(scope="module")
def seeded(web_server: LiveServer) -> dict[str, Any]:
    return _seed(web_server)


@pytest.fixture(scope="module")
def context(browser: Browser) -> Iterator[BrowserContext]:
    """One context for the module, so the browser caches plotly.min.js (4 MB) once."""
    made = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A fresh tab, signed out; fails the test when the page logs an error (e.g. a CSP violation)."""
    context.clear_cookies()
    made = context.new_page()
    errors: list[str] = []
    made.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    made.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield made
    finally:
        made.close()
    assert not [e for e in errors if "401" not in e], errors


def _sign_in(page: Page, server: LiveServer, key: str) -> None:
    page.goto(server.url + "/")
    expect(page).to_have_url(server.url + "/login?next=%2F")
    page.fill("#key", key)
    page.click("#login-form button[type=submit]")


def test_sign_in_and_list(page: Page, web_server: LiveServer, seeded: dict[str, Any]) -> None:
    _sign_in(page, web_server, web_server.console_key)
    expect(page).to_have_url(web_server.url + "/")
    rows = page.locator("#autotune-list tbody tr")
    expect(rows).to_have_count(2)
    first = rows.nth(0)
    expect(first).to_contain_text("Checkout button")
    expect(first).to_contain_text("exploiting")
    expect(first).to_contain_text("Bold")
    expect(first).to_contain_text("91.0%")
    expect(rows.nth(1)).to_contain_text("draft")
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMAGES / "dashboard-list.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    expect(rows).to_have_count(2)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the list scrolls sideways at phone width"
    page.set_viewport_size({"width": 1200, "height": 900})


def test_autotune_page_charts(page: Page, web_server: LiveServer, seeded: dict[str, Any]) -> None:
    _sign_in(page, web_server, web_server.console_key)
    page.goto(f"{web_server.url}/autotunes/{seeded['running'].id}")
    expect(page.locator("#status-sentence")).to_have_text("Bold leads with 91% probability of being best; needs 95%.")
    expected = {"probability_of_best": HOURS, "cumulative": HOURS, "daily": 4, "traffic": 4, "intervals": 1}
    for name, points in expected.items():
        page.wait_for_function(f"document.querySelector('#chart-{name}').data !== undefined")
        traces = page.evaluate(POINTS_JS, f"#chart-{name}")
        assert traces == [["Classic", points], ["Bold", points], ["Minimal", points]], name
    expect(page.locator("#summary-table tbody tr")).to_have_count(3)
    expect(page.locator("#audit")).to_contain_text("start")
    expect(page.locator("#exposures tbody tr")).to_have_count(25)
    page.screenshot(path=str(IMAGES / "dashboard-autotune.png"), full_page=True)
    _log_exposure(web_server, seeded["running"], "fresh-unit")  # the log refreshes itself every 5 s
    expect(page.locator("#exposures tbody tr").first).to_contain_text("fresh-unit", timeout=15_000)
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_function("document.querySelector('#chart-daily').data !== undefined")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at phone width ({width}px)"
    page.screenshot(path=str(IMAGES / "dashboard-autotune-phone.png"), full_page=False)


def test_start_a_draft_then_decide_then_sign_out(page: Page, web_server: LiveServer, seeded: dict[str, Any]) -> None:
    draft = create(web_server.db, SystemClock(), "Signup copy")
    _sign_in(page, web_server, web_server.console_key)
    page.goto(f"{web_server.url}/autotunes/{draft.id}")
    page.click("#action-start")
    expect(page.locator("#confirm")).to_contain_text("Start")
    page.click("#confirm-start")
    expect(page.locator(".notice")).to_contain_text("Started")
    expect(page.locator("#status-sentence")).to_contain_text("Exploring until")
    page.select_option("#decide-variant", label="blue")
    page.fill("#decide-reason", "blue reads better")
    page.click("#action-decide")
    page.click("#confirm-decide")
    expect(page.locator(".notice")).to_contain_text("Decision made")
    expect(page.locator("#status-sentence")).to_contain_text("blue was chosen by decision on")
    expect(page.locator("#audit tbody tr").first).to_contain_text("DASHBOARD")
    after = autotune_service.get(web_server.db, draft.id)
    assert after.winner is not None and after.winner.name == "blue"
    page.click("#sign-out")
    expect(page).to_have_url(web_server.url + "/login?signed_out=true")
    page.goto(web_server.url + "/")
    expect(page).to_have_url(web_server.url + "/login?next=%2F")


def test_read_only_key_sees_no_actions(page: Page, web_server: LiveServer, seeded: dict[str, Any]) -> None:
    read_only = key_service.create_key(web_server.db, SystemClock(), KeyKind.CONSOLE, read_only=True).secret
    _sign_in(page, web_server, read_only)
    expect(page).to_have_url(web_server.url + "/")
    page.goto(f"{web_server.url}/autotunes/{seeded['draft'].id}")
    expect(page.locator("#status-sentence")).to_contain_text("Draft")
    expect(page.locator("#actions")).to_have_count(0)
    expect(page.locator("[id^=action-]")).to_have_count(0)


def test_wrong_key_cannot_sign_in(page: Page, web_server: LiveServer, seeded: dict[str, Any]) -> None:
    _sign_in(page, web_server, "console-wrong")
    expect(page.locator(".error")).to_contain_text("not an active console key")
    page.goto(web_server.url + "/")
    expect(page).to_have_url(web_server.url + "/login?next=%2F")
    _sign_in(page, web_server, web_server.server_key)
    expect(page.locator(".error")).to_contain_text("not an active console key")


def test_contextual_policy_value_chart(page: Page, web_server: LiveServer, seeded: dict[str, Any]) -> None:
    now = SystemClock().now_ms()
    autotune = trained(Env(web_server.db, FixedClock(now - 6 * HOUR_MS)))
    _sign_in(page, web_server, web_server.console_key)
    page.goto(f"{web_server.url}/autotunes/{autotune.id}")
    page.wait_for_function("document.querySelector('#chart-policy_value').data !== undefined")
    traces = page.evaluate(POINTS_JS, "#chart-policy_value")
    assert [name for name, _ in traces][::2] == ["Personalized policy", "Uniform split"] and [n for _, n in traces] == [
        3
    ] * 3
    expect(page.locator("#contextual-reading")).to_contain_text("Personalization is worth +")
    page.locator("#contextual").screenshot(path=str(IMAGES / "dashboard-contextual.png"))


def test_a_variant_named_like_a_link_is_text_in_the_charts(
    page: Page, web_server: LiveServer, seeded: dict[str, Any]
) -> None:
    hostile = '<a href="https://evil.example/">Win</a>'
    now = SystemClock().now_ms()
    made = create(web_server.db, FixedClock(now - 2 * DAY_MS), "Hostile names", variants=(hostile, "R&D <b>x</b>"))
    insert_records(web_server.db, made, 30, made.created_ms)
    _sign_in(page, web_server, web_server.console_key)
    page.goto(f"{web_server.url}/autotunes/{made.id}")
    for name in ("probability_of_best", "traffic", "intervals"):
        page.wait_for_function(f"document.querySelector('#chart-{name}').data !== undefined")
        chart = page.locator(f"#chart-{name}")
        expect(chart.locator("a")).to_have_count(0)  # plotly would draw an svg <a> for a live link
        expect(chart.locator("b")).to_have_count(0)
    legend = page.locator("#chart-probability_of_best .legendtext")
    expect(legend).to_have_text([hostile, "R&D <b>x</b>"])
    ticks = page.locator("#chart-intervals .ytick text")
    expect(ticks).to_have_count(2)
    assert sorted(ticks.all_text_contents()) == sorted([hostile, "R&D <b>x</b>"])
