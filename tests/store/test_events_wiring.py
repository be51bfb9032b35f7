"""The ClickHouse event store in the running system: SDK batches land there, the engine reads there, and a
store that is down fails the batch (503, nothing acknowledged) and the update (with the reason), after
which the next batch and the next update succeed."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from openautotune.engine.update import update_autotune
from openautotune.store.clickhouse.store import ClickHouseEvents
from openautotune.store.ingest_tables import events_table, units_table
from openautotune.testing import TestApp, make_test_app
from tests.ingest.conftest import Ingest, create_autotune, custom_event, exposure

HOUR = 3_600_000


@pytest.fixture
def app_on_chdb(tmp_path: Path) -> Iterator[Ingest]:
    made: TestApp = make_test_app(f"sqlite:///{tmp_path / 'main.db'}")
    store = ClickHouseEvents(f"chdb://{tmp_path / 'events'}")
    store.migrate(0)
    made.db.events = store
    with TestClient(made.app) as client:
        yield Ingest(made, client)
    made.db.dispose()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again on return: nothing listens there


def _batch(ingest: Ingest, name: str, users: range, variant_rule: str) -> list[dict[str, object]]:
    now = ingest.now
    rows: list[dict[str, object]] = []
    for number in users:
        user = {"userID": f"user{number}"}
        rows.append(exposure(name, variant_rule, user=user, time=now))
        if number % 2 == 0:
            rows.append(custom_event("click", user=user, time=now + 60_000))
    return rows


def test_batches_go_to_clickhouse_and_the_engine_reads_them(app_on_chdb: Ingest) -> None:
    ingest = app_on_chdb
    autotune = create_autotune(ingest.app, "colors")
    rule = autotune.definition.variants[0].id
    response = ingest.post(_batch(ingest, autotune.id, range(10), rule))
    assert response.status_code == 200, response.text
    assert ingest.rows(units_table) == [] and ingest.rows(events_table) == []  # not in the main database
    assert ingest.app.db.events is not None
    assert ingest.app.db.events.counts() == (10, 5)  # type: ignore[attr-defined]
    outcome = update_autotune(ingest.app.db, ingest.app.clock, autotune.id, ingest.now + 2 * HOUR)
    assert outcome.updated and outcome.new_units == 10


def test_a_store_that_is_down_fails_the_batch_and_the_update_then_both_recover(app_on_chdb: Ingest) -> None:
    ingest = app_on_chdb
    autotune = create_autotune(ingest.app, "colors")
    rule = autotune.definition.variants[0].id
    working = ingest.app.db.events
    down = ClickHouseEvents(f"clickhouse://default:@127.0.0.1:{_closed_port()}/events")
    ingest.app.db.events = down

    response = ingest.post(_batch(ingest, autotune.id, range(4), rule))
    assert response.status_code == 503
    assert "Connection refused" in response.json()["message"] or "refused" in response.json()["message"].lower()
    assert ingest.exposures() == []  # the batch rolled back: nothing acknowledged, nothing half-stored
    with pytest.raises(Exception, match="refused"):
        update_autotune(ingest.app.db, ingest.app.clock, autotune.id, ingest.now + 2 * HOUR)

    ingest.app.db.events = working
    assert ingest.post(_batch(ingest, autotune.id, range(4), rule)).status_code == 200
    outcome = update_autotune(ingest.app.db, ingest.app.clock, autotune.id, ingest.now + 2 * HOUR)
    assert outcome.updated and outcome.new_units == 4
    down.close()


CONSOLE = "/console/v1/autotunes"


def test_deleting_an_autotune_deletes_its_clickhouse_units_and_a_namesake_starts_empty(app_on_chdb: Ingest) -> None:
    """A namesake gets the same id and starts at run 1: the deleted one's units must not be read by it,
    nor make the writer skip its exposures as already stored. Other autotunes keep theirs."""
    ingest = app_on_chdb
    events = ingest.app.db.events
    assert isinstance(events, ClickHouseEvents)
    colors, sizes = create_autotune(ingest.app, "colors"), create_autotune(ingest.app, "sizes")
    assert ingest.post(_batch(ingest, colors.id, range(6), colors.definition.variants[0].id)).status_code == 200
    assert ingest.post(_batch(ingest, sizes.id, range(3), sizes.definition.variants[0].id)).status_code == 200
    assert events.counts()[0] == 9

    response = ingest.client.delete(f"{CONSOLE}/{colors.id}", headers=ingest.app.console_headers())
    assert response.status_code == 200, response.text
    assert events.main.rows("SELECT autotune_id, count() FROM units GROUP BY autotune_id") == [(sizes.id, 3)]

    again = create_autotune(ingest.app, "colors")
    assert again.id == colors.id
    ingest.app.clock.advance(60_000)
    assert ingest.post(_batch(ingest, again.id, range(4), again.definition.variants[1].id)).status_code == 200
    outcome = update_autotune(ingest.app.db, ingest.app.clock, again.id, ingest.now + 2 * HOUR)
    assert outcome.updated and outcome.new_units == 4


def test_deleting_an_autotune_while_clickhouse_is_down_deletes_nothing(app_on_chdb: Ingest) -> None:
    """503 and the autotune stays (its units would be read by a namesake); the retry succeeds."""
    ingest = app_on_chdb
    autotune = create_autotune(ingest.app, "colors")
    working = ingest.app.db.events
    down = ClickHouseEvents(f"clickhouse://default:@127.0.0.1:{_closed_port()}/events")
    ingest.app.db.events = down
    headers = ingest.app.console_headers()

    response = ingest.client.delete(f"{CONSOLE}/{autotune.id}", headers=headers)
    assert response.status_code == 503, response.text
    assert ingest.client.get(f"{CONSOLE}/{autotune.id}", headers=headers).status_code == 200
    # Waiting happens after the main commit: a store lost by then is logged, not raised.
    assert down.wait_forgotten(autotune.id, 0.1) is False

    ingest.app.db.events = working
    assert ingest.client.delete(f"{CONSOLE}/{autotune.id}", headers=headers).status_code == 200
    assert ingest.client.get(f"{CONSOLE}/{autotune.id}", headers=headers).status_code == 404
    down.close()
