"""The holdout comparison and immature units: on the dashboard in a real browser (Debian's Chromium via
Playwright) against a real server process, and in `openautotune results`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from typer.testing import CliRunner

from openautotune.cli import app
from openautotune.engine.results import read_results
from openautotune.store import migrate
from openautotune.store.database import Database
from tests.e2e.live import LiveServer
from tests.web.holdout_seed import held_out

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


@pytest.fixture(scope="module")
def seeded(web_server: LiveServer) -> dict[str, Any]:
    autotune = held_out(web_server.db)
    return {"autotune": autotune, "results": read_results(web_server.db, autotune)}


@pytest.fixture(scope="module")
def context(browser: Browser) -> Iterator[BrowserContext]:
    made = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    context.clear_cookies()
    made = context.new_page()
    errors: list[str] = []
    made.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield made
    finally:
        made.close()
    assert not errors, errors


@pytest.mark.e2e
def test_holdout_card_in_the_browser(page: Page, web_server: LiveServer, seeded: dict[str, Any]) -> None:
    page.goto(web_server.url + "/")
    page.fill("#key", web_server.console_key)
    page.click("#login-form button[type=submit]")
    expect(page).to_have_url(web_server.url + "/")
    page.goto(f"{web_server.url}/autotunes/{seeded['autotune'].id}")
    card = page.locator("#holdout-card")
    expect(card).to_be_visible()
    expect(card.locator("h2")).to_have_text("Holdout and delayed conversions")
    block = seeded["results"].holdout
    assert block is not None and block["lift"] is not None
    holdout_row = card.locator('#holdout-table tr[data-arm="holdout"]')
    expect(holdout_row).to_contain_text("20% of units")
    expect(holdout_row).to_contain_text(f"{block['units']:,}")
    expect(card.locator('#holdout-table tr[data-arm="bandit"]')).to_contain_text(f"{block['banditUnits']:,}")
    # The reading follows the lift's interval (the salt is random, so the run is not known in advance).
    low, high = block["lift"]["low"], block["lift"]["high"]
    if low > 0:
        reading = "The bandit's units do better than the holdout's (95% interval above 0)."
    elif high < 0:
        reading = "The bandit's units do worse than the holdout's (95% interval below 0)."
    else:
        reading = "No difference between the bandit and its holdout can be told apart yet (95% interval spans 0)."
    expect(page.locator("#holdout-reading")).to_have_text(reading)
    expect(card.locator("#holdout-lift")).to_contain_text(f"{block['regretAvoided']['value']:,.1f}")
    rows = card.locator("#immature-table tbody tr")
    expect(rows).to_have_count(2)
    for row, variant in zip(rows.all(), seeded["results"].variants, strict=True):
        expect(row).to_contain_text(variant.name)
        expect(row).to_contain_text(f"{variant.immature_units:,}")
    card.screenshot(path=str(IMAGES / "holdout-card.png"))


def test_results_command_shows_immature_units_and_the_holdout(sqlite_url: str) -> None:
    db = Database.from_url(sqlite_url)
    migrate.upgrade(db.engine)
    autotune = held_out(db, hours=26)
    results = read_results(db, autotune)
    runner = CliRunner()
    shown = runner.invoke(app, ["results", autotune.id, "--database-url", sqlite_url], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "immature" in shown.output
    block = results.holdout
    assert block is not None and block["lift"] is not None
    assert f"holdout 20.0%: {block['units']:,} units" in shown.output
    assert f"regret avoided {block['regretAvoided']['value']:,.1f}" in shown.output
    as_json = orjson.loads(runner.invoke(app, ["results", autotune.id, "--json", "--database-url", sqlite_url]).output)
    assert as_json["data"]["holdout"]["units"] == block["units"]
    assert [v["immatureUnits"] for v in as_json["data"]["variants"]] == [v.immature_units for v in results.variants]
    assert sum(v.immature_units for v in results.variants) > 0
    db.dispose()


def test_the_card_shows_only_what_there_is() -> None:
    from openautotune.domain.autotune import Stage
    from openautotune.engine.results import Results, VariantResult
    from openautotune.web.holdout_view import section

    def results(immature: int, holdout: dict[str, Any] | None, stage: Stage = Stage.EXPLOITING) -> Results:
        variant = VariantResult("v", "red", 10, 1, 1.0, 0.1, 0.0, 0.3, 0.5, 0.5, immature_units=immature)
        return Results("a", 1, stage, 1, None, "occurrence", 1, (variant,), None, holdout=holdout)

    assert section(results(0, None)) is None
    assert section(results(5, None, Stage.DRAFT)) is None
    shown = section(results(5, None))
    assert shown is not None and shown.holdout is None and shown.immature[0].units == 5
    block = {"percent": 10.0, "units": 0, "banditUnits": 0, "lift": None, "message": "no update yet"}
    with_holdout = section(results(0, block))
    assert with_holdout is not None and with_holdout.holdout is not None
    assert with_holdout.holdout.reading == "Not enough data yet to compare the bandit with its holdout."
