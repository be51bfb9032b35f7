"""Events URLs: what each names, and a clear error for what names nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from openautotune.cli import app as cli_app
from openautotune.settings import Settings
from openautotune.store.clickhouse.url import ClickHouseUrl, EventsUrlError, is_clickhouse, parse


def test_urls() -> None:
    assert parse("chdb:///var/lib/events") == ClickHouseUrl(kind="chdb", path="/var/lib/events")
    native = parse("clickhouse://app:s%40cret@ch1:9440/events?cluster=shards")
    assert (native.host, native.port, native.user, native.password) == ("ch1", 9440, "app", "s@cret")
    assert (native.database, native.cluster) == ("events", "shards")
    assert native.masked() == "clickhouse://app:***@ch1:9440/events?cluster=shards"
    assert parse("clickhouse://ch1").port == 9000 and parse("clickhouse://ch1").database == "default"
    assert is_clickhouse("chdb:///x") and not is_clickhouse("sqlite:///x") and not is_clickhouse("")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("chdb://relative", "absolute"),
        ("clickhouse://h/bad-name", "plain identifier"),
        ("clickhouse://h/db?cluster=a;drop", "plain identifier"),
        ("clickhouse://h:99999/db", "port"),
        ("mysql://h/db", "not chdb or clickhouse"),
        ("nothing", "no scheme"),
    ],
)
def test_bad_urls_say_why(url: str, reason: str) -> None:
    with pytest.raises(EventsUrlError, match=reason):
        parse(url)


def test_settings_read_the_events_url_and_mask_its_password() -> None:
    settings = Settings.from_env({"OPENAUTOTUNE_EVENTS_URL": "clickhouse://app:secret@ch1/events"})
    assert settings.events_url == "clickhouse://app:secret@ch1/events"
    assert "secret" not in repr(settings)


def test_db_upgrade_creates_the_event_store(tmp_path: Path) -> None:
    runner = CliRunner()
    arguments = ["db", "upgrade", "--database-url", f"sqlite:///{tmp_path / 'main.db'}"]
    result = runner.invoke(cli_app, [*arguments, "--events-url", f"chdb://{tmp_path / 'events'}"])
    assert result.exit_code == 0, result.output
    assert "Event store chdb://" in result.output
    bad = runner.invoke(cli_app, [*arguments, "--events-url", "clickhouse://h/bad-name"])
    assert bad.exit_code == 2 and "plain identifier" in bad.output
