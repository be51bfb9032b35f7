"""`events copy`: SQLite -> chdb interrupted and resumed (no duplicates, no losses), and back out again;
the copies give the reference aggregates."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from openautotune.cli import app as cli_app
from openautotune.store.attribution import BEGINNING_MS
from openautotune.store.clickhouse.store import ClickHouseEvents
from openautotune.store.events import SqlEvents
from openautotune.store.events_copy import copy_events

from .conftest import _sql_store
from .event_fixture import AS_OF, AUTOTUNE, DEFINITIONS, REFERENCE, generated, scenario
from .test_event_stores import load, table
from .test_exposure_store import exposure_rows


class Interrupted(Exception):
    pass


class FailsAfter:
    """A target that dies after `pages` writes, like a copy killed half-way."""

    def __init__(self, target: ClickHouseEvents, pages: int) -> None:
        self.target, self.pages = target, pages

    def write_rows(self, units: Sequence[Any], events: Sequence[Any], exposures: Sequence[Any] = ()) -> int:
        if self.pages == 0:
            raise Interrupted
        self.pages -= 1
        return self.target.write_rows(units, events, exposures)

    def counts(self) -> tuple[int, int]:
        return self.target.counts()

    def exposure_count(self) -> int:
        return self.target.exposure_count()

    def page(self, table: str, after: Sequence[Any] | None, size: int) -> list[dict[str, Any]]:
        return self.target.page(table, after, size)

    def close(self) -> None:
        self.target.close()


@pytest.fixture
def source(tmp_path: Path) -> SqlEvents:
    store = _sql_store(f"sqlite:///{tmp_path / 'source.db'}")
    load(store, scenario() + generated(units=600))
    store.write_rows([], [], exposure_rows())
    return store


def test_interrupted_copy_resumes_without_duplicates_or_losses(source: SqlEvents, tmp_path: Path) -> None:
    target = ClickHouseEvents(f"chdb://{tmp_path / 'events'}")
    target.migrate(0)
    checkpoint = tmp_path / "copy.json"
    with pytest.raises(Interrupted):
        copy_events(source, FailsAfter(target, 3), checkpoint=checkpoint, page_size=200)
    assert checkpoint.exists()
    partial = target.counts()
    assert 0 < partial[0] < source.counts()[0]
    report = copy_events(source, target, checkpoint=checkpoint, page_size=200)
    assert report.verified and report.target_counts == source.counts()
    assert report.copied["units"] < source.counts()[0]  # resumed after the checkpoint, not from the start
    for name in DEFINITIONS:
        rows = target.matured_aggregates(
            autotune_id=AUTOTUNE, run=1, definition=DEFINITIONS[name], matured_after_ms=BEGINNING_MS, as_of_ms=AS_OF
        )
        assert table(rows) == REFERENCE[name]
    assert report.target_exposures == source.exposure_count() == len(exposure_rows())
    for autotune_id in ("colors", "other"):
        assert target.recent_exposures(autotune_id=autotune_id, limit=500) == source.recent_exposures(
            autotune_id=autotune_id, limit=500
        )
        assert target.daily_exposures(autotune_id=autotune_id, run=1) == source.daily_exposures(
            autotune_id=autotune_id, run=1
        )
    # Copied twice (the checkpoint gone): the idempotent writes store nothing twice.
    again = copy_events(source, target, page_size=500)
    assert again.verified and again.target_counts == source.counts()

    exported = _sql_store(f"sqlite:///{tmp_path / 'exported.db'}")
    assert copy_events(target, exported, page_size=300).verified
    assert exported.exposure_count() == len(exposure_rows())
    assert exported.page("exposures", None, 1000) == source.page("exposures", None, 1000)  # every column
    rows = exported.matured_aggregates(
        autotune_id=AUTOTUNE, run=1, definition=DEFINITIONS["metadata"], matured_after_ms=BEGINNING_MS, as_of_ms=AS_OF
    )
    assert table(rows) == REFERENCE["metadata"]
    target.close()


def test_the_command_copies_and_verifies(source: SqlEvents, tmp_path: Path) -> None:
    url = str(source.db.engine.url)
    result = CliRunner().invoke(
        cli_app,
        [
            "events",
            "copy",
            "--from",
            url,
            "--to",
            f"chdb://{tmp_path / 'cli'}",
            "--checkpoint",
            str(tmp_path / "c.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    units, events = source.counts()
    assert f"source {units} units / {events} events, target {units} / {events}" in result.output
    exposures = source.exposure_count()
    assert f"copied {exposures} raw exposures, source {exposures} / target {exposures}" in result.output
    assert not (tmp_path / "c.json").exists()
