"""Raw exposures with events in chdb, through the running system: SDK batches (sync and log-first) put
their exposures in ClickHouse and none in the main database, a re-sent batch is stored once, the log
stream and daily traffic match an app without an event store fed the same batches, and the dashboard's
exposures log and the results history show them."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from openautotune.service import autotunes, exposures_log
from openautotune.service.ingest.log_processor import LogProcessor, append_batches
from openautotune.service.ingest.logged import GZIP, new_batch
from openautotune.store import batch_log
from openautotune.store.batch_log import LoggedBatch
from openautotune.store.clickhouse.store import ClickHouseEvents
from openautotune.store.event_store import EventStoreUnavailable
from openautotune.testing import TestApp, make_test_app
from tests.ingest.conftest import Ingest, create_autotune, custom_event, exposure
from tests.web.helpers import sign_in

HOUR = 3_600_000
HISTORY = "/console/v1/autotunes/{}/results/history"


def _app(tmp_path: Path, name: str, *, chdb: bool, mode: str = "sync") -> TestApp:
    made = make_test_app(f"sqlite:///{tmp_path / f'{name}.db'}", ingest_mode=mode)
    if chdb:
        store = ClickHouseEvents(f"chdb://{tmp_path / f'{name}-events'}")
        store.migrate(0)
        made.db.events = store
    return made


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Ingest, Ingest]]:
    """The same app twice: events in the main database (SQLite), and events in chdb."""
    plain, on_chdb = _app(tmp_path, "plain", chdb=False), _app(tmp_path, "chdb", chdb=True)
    with TestClient(plain.app) as first, TestClient(on_chdb.app) as second:
        yield Ingest(plain, first), Ingest(on_chdb, second)
    plain.db.dispose()
    on_chdb.db.dispose()


def _batches(ingest: Ingest, autotune_id: str, rules: list[str]) -> list[list[dict[str, Any]]]:
    """Three batches of exposures over three days (some at the same instant), clicks, an unknown rule."""
    now = ingest.now
    batches = []
    for day in range(3):
        evening = now - day * 24 * HOUR - 6 * HOUR  # the START clock is midnight: stay inside each day
        batch: list[dict[str, Any]] = []
        for number in range(12):
            user = {"userID": f"user{number}"}
            batch.append(exposure(autotune_id, rules[number % 2], user=user, time=evening - number % 4))
            if number % 3 == 0:
                batch.append(custom_event("click", user=user, time=evening + HOUR))
        batch.append(exposure(autotune_id, "no-such-rule", user={"userID": "stray"}, time=evening))
        batches.append(batch)
    return batches


def _post_all(ingest: Ingest) -> str:
    made = create_autotune(ingest.app, "colors")
    rules = [variant.id for variant in made.definition.variants]
    for batch in _batches(ingest, made.id, rules):
        response = ingest.post(batch)
        assert response.status_code == 200, response.text
    return made.id


def _named(ingest: Ingest, autotune_id: str) -> tuple[list[tuple[Any, ...]], dict[tuple[int, str], int]]:
    """The log stream and daily traffic with variant ids replaced by names (ids differ between apps)."""
    db = ingest.app.db
    names = {variant.id: variant.name for variant in _definition(ingest, autotune_id).variants}
    recent = [
        (row.time_ms, row.unit_id, names.get(row.variant_id or "", row.variant_id), row.run, row.analysable, row.reason)
        for row in exposures_log.recent(db, autotune_id, limit=500)
    ]
    autotune_run = 1
    daily = {
        (day, names[variant]): n
        for (day, variant), n in exposures_log.daily_counts(db, autotune_id, autotune_run).items()
    }
    return recent, daily


def _definition(ingest: Ingest, autotune_id: str) -> Any:
    return autotunes.get(ingest.app.db, autotune_id).definition


def test_exposures_go_to_clickhouse_and_read_the_same_as_sqlite(pair: tuple[Ingest, Ingest]) -> None:
    plain, on_chdb = pair
    plain_id, chdb_id = _post_all(plain), _post_all(on_chdb)

    assert on_chdb.exposures() == [] and on_chdb.units() == [] and on_chdb.events() == []  # main DB: nothing
    assert len(plain.exposures()) == 39
    store = on_chdb.app.db.events
    assert isinstance(store, ClickHouseEvents)
    assert store.main.rows("SELECT count() FROM exposures") == [(39,)]

    # A re-delivered batch (an SDK retry) stores its exposures once.
    again = _batches(on_chdb, chdb_id, [variant.id for variant in _definition(on_chdb, chdb_id).variants])[0]
    assert on_chdb.post(again).status_code == 200
    assert store.main.rows("SELECT count() FROM exposures") == [(39,)]

    recent_plain, daily_plain = _named(plain, plain_id)
    recent_chdb, daily_chdb = _named(on_chdb, chdb_id)
    # Equal times are ordered by dedup key, a hash of the (per-app random) variant ids: compare as sets,
    # and the order on time (tests/store/test_exposure_store.py checks the exact order on every store).
    assert sorted(recent_chdb) == sorted(recent_plain) and len(recent_chdb) == 39
    assert [row[0] for row in recent_chdb] == [row[0] for row in recent_plain]
    assert [row[0] for row in recent_chdb] == sorted((row[0] for row in recent_chdb), reverse=True)
    assert daily_chdb == daily_plain
    assert sorted(daily_chdb.values()) == [6, 6, 6, 6, 6, 6]  # 3 days x 2 variants; the stray rule has none


def test_the_dashboard_log_and_the_results_history_show_exposures_from_clickhouse(
    pair: tuple[Ingest, Ingest],
) -> None:
    _, on_chdb = pair
    autotune_id = _post_all(on_chdb)
    client, app = on_chdb.client, on_chdb.app
    sign_in(client, app.console_key)
    fragment = client.get(f"/autotunes/{autotune_id}/exposures")
    assert fragment.status_code == 200
    assert "user11" in fragment.text and "No exposures logged yet." not in fragment.text
    assert client.get(f"/autotunes/{autotune_id}").status_code == 200
    history = client.get(HISTORY.format(autotune_id), headers=app.console_headers(read_only=True))
    assert history.status_code == 200
    days = history.json()["data"]["daily"]
    assert [sum(variant["exposures"] for variant in day["variants"]) for day in days] == [12, 12, 12]


def test_log_first_ingestion_puts_exposures_in_clickhouse(tmp_path: Path) -> None:
    app = _app(tmp_path, "log", chdb=True, mode="log")
    with TestClient(app.app) as client:
        ingest = Ingest(app, client)
        autotune_id = _post_all(ingest)
        assert LogProcessor(app.db, app.clock).drain() == 3
        assert ingest.exposures() == []
        assert len(exposures_log.recent(app.db, autotune_id, limit=100)) == 39
    app.db.dispose()


def test_the_processor_writes_clickhouse_outside_sqlites_write_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the processor's ClickHouse write runs, an SDK batch can still be appended (acknowledged):
    the write comes before the processor takes SQLite's one write lock, not inside it. A processor
    killed after that write, before stamping its batches, leaves them pending; processed again they
    store each row once."""
    app = _app(tmp_path, "lock", chdb=True, mode="log")
    store = app.db.events
    assert isinstance(store, ClickHouseEvents)
    with TestClient(app.app) as client:
        ingest = Ingest(app, client)
        autotune_id = _post_all(ingest)
        real_write = store.write_rows
        appended: list[float] = []

        def write_while_appending(*args: Any, **kwargs: Any) -> int:
            started = time.monotonic()

            def append() -> None:
                append_batches(app.db, [_logged_batch(app.clock.now_ms())])
                appended.append(time.monotonic() - started)

            thread = threading.Thread(target=append)
            thread.start()
            thread.join(timeout=10.0)
            return real_write(*args, **kwargs)

        monkeypatch.setattr(store, "write_rows", write_while_appending)
        monkeypatch.setattr(batch_log, "mark_processed", _killed)
        with pytest.raises(RuntimeError, match="killed"):
            LogProcessor(app.db, app.clock).process_once()
        assert appended and appended[0] < 5.0  # appended (durable) without waiting for the processor
        assert store.exposure_count() == 39  # written, but the batches are still pending
        monkeypatch.undo()
        assert LogProcessor(app.db, app.clock).drain() == 4  # the three, then the one appended meanwhile
        assert store.exposure_count() == 39 and store.counts() == (12, 12)
        assert len(exposures_log.recent(app.db, autotune_id, limit=100)) == 39
    app.db.dispose()
    store.close()


def test_two_processors_on_one_sqlite_file_take_turns_writing_clickhouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside SQLite's write lock, two processors (two `openautotune process`, or one beside
    `serve`) would write the same pending batches to ClickHouse at once, and its check-then-insert
    would store a unit twice: they take turns (a flock next to the database file)."""
    app = _app(tmp_path, "turns", chdb=True, mode="log")
    store = app.db.events
    assert isinstance(store, ClickHouseEvents)
    with TestClient(app.app) as client:
        _post_all(Ingest(app, client))
        real_write = store.write_rows
        in_flight: list[int] = []
        most = [0]
        guard = threading.Lock()

        def slow_write(*args: Any, **kwargs: Any) -> int:
            with guard:
                in_flight.append(1)
                most[0] = max(most[0], len(in_flight))
            time.sleep(0.3)  # the other processor has every chance to start its own write
            try:
                return real_write(*args, **kwargs)
            finally:
                with guard:
                    in_flight.pop()

        monkeypatch.setattr(store, "write_rows", slow_write)
        done: list[int] = []
        processors = [
            threading.Thread(target=lambda: done.append(LogProcessor(app.db, app.clock).drain())) for _ in range(2)
        ]
        for thread in processors:
            thread.start()
        for thread in processors:
            thread.join(timeout=30.0)
        assert sorted(done) == [0, 3] and most[0] == 1
        assert store.main.rows("SELECT count() FROM units") == [(12,)]
        assert store.exposure_count() == 39 and store.counts() == (12, 12)
    app.db.dispose()
    store.close()


def _killed(*args: Any) -> None:
    raise RuntimeError("killed before the stamp")


def _logged_batch(now_ms: int) -> LoggedBatch:
    return new_batch(gzip.compress(b"[]"), GZIP, 0, now_ms)


def test_a_clickhouse_failure_after_the_units_fails_the_batch_and_the_retry_stores_each_row_once(
    pair: tuple[Ingest, Ingest], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, on_chdb = pair
    made = create_autotune(on_chdb.app, "colors")
    store = on_chdb.app.db.events
    assert isinstance(store, ClickHouseEvents)
    batch = _batches(on_chdb, made.id, [variant.id for variant in made.definition.variants])[0]
    real_insert = store.main.insert

    def exposures_refused(table: str, columns: Any, rows: Any) -> None:
        if table == "exposures":
            raise EventStoreUnavailable("chdb: exposures refused")
        real_insert(table, columns, rows)

    monkeypatch.setattr(store.main, "insert", exposures_refused)
    response = on_chdb.post(batch)
    assert response.status_code == 503 and "exposures refused" in response.json()["message"]
    assert store.main.rows("SELECT count() FROM units") == [(12,)]  # written before the failure...
    assert store.main.rows("SELECT count() FROM exposures") == [(0,)]
    assert on_chdb.exposures() == []  # ...but nothing acknowledged, nothing in the main database

    monkeypatch.setattr(store.main, "insert", real_insert)
    assert on_chdb.post(batch).status_code == 200  # the SDK's retry completes the batch, once
    assert store.main.rows("SELECT count() FROM units") == [(12,)]
    assert store.main.rows("SELECT count() FROM exposures") == [(13,)]
    assert store.counts() == (12, 4)
