"""The dashboard's health card in a real browser, and the same facts in `openautotune results`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from typer.testing import CliRunner

from openautotune.cli import app
from openautotune.clock import FixedClock, SystemClock
from openautotune.store import migrate
from openautotune.store.database import Database
from openautotune.testing import START_MS
from tests.e2e.live import LiveServer
from tests.web.health_seed import unhealthy

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    made = context.new_page()
    errors: list[str] = []
    made.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield made
    finally:
        context.close()
    assert not errors, errors


@pytest.mark.e2e
def test_health_card_shows_the_mismatch_and_the_excluded_variant(page: Page, web_server: LiveServer) -> None:
    clock = SystemClock()
    made = unhealthy(web_server.db, clock, clock.now_ms())
    page.goto(web_server.url + "/")
    page.fill("#key", web_server.console_key)
    page.click("#login-form button[type=submit]")
    page.goto(f"{web_server.url}/autotunes/{made.id}")
    card = page.locator("#health")
    expect(card).to_be_visible()
    expect(page.locator("#health-srm")).to_contain_text("Sample ratio mismatch")
    expect(page.locator("#health-srm")).to_contain_text("'Short' has 11.1% fewer units")
    expect(page.locator("#srm-table tbody tr")).to_have_count(2)
    expect(card.locator(".health-reason").first).to_contain_text("'Short' excluded from traffic")
    excluded = card.locator(".guardrail-table tr.guardrail-excluded")
    expect(excluded).to_have_count(1)
    expect(excluded).to_contain_text("Short")
    expect(card.locator(".guardrail-table tr.guardrail-reference")).to_contain_text("Long")
    card.screenshot(path=str(IMAGES / "dashboard-health.png"))


def test_results_command_prints_health(sqlite_url: str) -> None:
    db = Database.from_url(sqlite_url)
    migrate.upgrade(db.engine)
    made = unhealthy(db, FixedClock(START_MS), START_MS)
    shown = CliRunner().invoke(app, ["results", made.id, "--database-url", sqlite_url], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "Sample ratio mismatch" in shown.output and "'Short' has 11.1% fewer units" in shown.output
    assert "'Short' excluded from traffic: guardrail 'error'" in shown.output
    assert "guardrail error: lower is better; at most 10% worse than the best" in shown.output
    assert "excluded" in shown.output.split("guardrail error:")[1]
    db.dispose()
