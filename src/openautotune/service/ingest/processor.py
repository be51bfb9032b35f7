"""Logged batches -> exposure, unit and event rows, many batches per transaction (docs/ingestion.md).

`process_into(conn, ...)` is the one place batches become rows: the log processor, the NATS
consumer and the request path in sync mode all call it. Within the caller's transaction it writes
the rows of every batch (three executemany statements whatever the number of batches) and returns
one report per batch. Idempotent twice over: every row carries a content hash (`dedup_key`, insert
unless already there), and the batch is stamped processed in the same transaction as its rows, so a
crash either leaves both or neither.

Times: an event without `time` gets the batch's receive time, and "too far in the future" is judged
against it too, so processing a batch later (or again) gives the very same rows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from openautotune.service.ingest import parse
from openautotune.service.ingest.batch import BatchResult, FactsCache, Rejection, _Rows, _wanted
from openautotune.service.ingest.logged import Unreadable, events_of
from openautotune.store.batch_log import BatchReport, LoggedBatch
from openautotune.store.event_store import EventStore

log = logging.getLogger("openautotune.ingest")

MAX_REPORTED = 100  # rejected events listed per batch (all are counted in `dropped`)
UNREADABLE = "the batch cannot be read"


@dataclass
class _Checked:
    batch: LoggedBatch
    exposures: list[parse.CheckedExposure] = field(default_factory=list)
    events: list[parse.CheckedEvent] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    ignored: int = 0
    event_rows: int = 0


def _check(batch: LoggedBatch, raw_events: Sequence[Any]) -> _Checked:
    checked = _Checked(batch)
    for index, raw in enumerate(raw_events):
        try:
            item = parse.check_event(raw, batch.received_ms)
        except parse.Invalid as invalid:
            checked.rejected.append(Rejection(index, invalid.reason))
            continue
        if isinstance(item, parse.CheckedExposure):
            checked.exposures.append(item)
        elif isinstance(item, parse.CheckedEvent):
            checked.events.append(item)
            checked.event_rows += len(item.ids.pairs())
        else:
            checked.ignored += 1
    return checked


def _report(checked: _Checked, processed_ms: int) -> tuple[BatchReport, BatchResult]:
    result = BatchResult(
        accepted=len(checked.exposures) + len(checked.events),
        rejected=tuple(checked.rejected),
        ignored=checked.ignored,
        exposures=len(checked.exposures),
        events=checked.event_rows,
    )
    problems = None
    if result.rejected:
        listed = [[item.index, item.reason] for item in result.rejected[:MAX_REPORTED]]
        problems = {"dropped": result.dropped, "rejected": listed}
    report = BatchReport(
        id=checked.batch.id,
        received_ms=checked.batch.received_ms,
        event_count=checked.batch.event_count,
        processed_ms=processed_ms,
        accepted=result.accepted,
        ignored=result.ignored,
        rejected=len(result.rejected),
        problems=problems,
    )
    return report, result


def _unreadable(batch: LoggedBatch, problem: str) -> _Checked:
    log.error("Logged batch %s cannot be read (%s): reported, its events are not stored", batch.id, problem)
    checked = _Checked(batch)
    checked.rejected = [Rejection(index, UNREADABLE) for index in range(batch.event_count)]
    return checked


@dataclass(frozen=True)
class CheckedBatches:
    """Batches read and checked (the CPU-heavy part), ready to be written by `write_checked`."""

    items: tuple[_Checked, ...]

    @property
    def ids(self) -> list[str]:
        return [item.batch.id for item in self.items]

    def only(self, ids: set[str]) -> CheckedBatches:
        return CheckedBatches(tuple(item for item in self.items if item.batch.id in ids))


def check_batches(batches: Sequence[LoggedBatch], *, decoded: Sequence[Sequence[Any]] | None = None) -> CheckedBatches:
    """Read and check every event of `batches`; pure (no database), so it runs outside any transaction.

    `decoded` passes events already read (sync mode read them to check the body); otherwise each
    batch's stored body is read here.
    """
    checked: list[_Checked] = []
    for number, batch in enumerate(batches):
        if decoded is not None:
            checked.append(_check(batch, decoded[number]))
            continue
        try:
            raw_events = events_of(batch)
        except Unreadable as problem:
            checked.append(_unreadable(batch, str(problem)))
            continue
        checked.append(_check(batch, raw_events))
    return CheckedBatches(tuple(checked))


def write_checked(
    conn: Connection,
    cache: FactsCache,
    checked: CheckedBatches,
    processed_ms: int,
    *,
    events: EventStore | None = None,
) -> list[tuple[BatchReport, BatchResult]]:
    """Classify exposures against the autotunes as this transaction sees them and write every row
    (three executemany statements whatever the number of batches; exposures, units and events in
    `events` when they live in another store, see `_Rows.write`); one (report, result) per batch."""
    _rows_of(conn, cache, checked).write(conn, events)
    return reports_of(checked, processed_ms)


def store_in_event_store(conn: Connection, cache: FactsCache, checked: CheckedBatches, events: EventStore) -> None:
    """The rows of `checked` (exposures classified as `conn`, a read transaction, sees the autotunes)
    written to the separate event store only; idempotent, so it may run before the batches are claimed
    and again if they are processed twice. The caller then stamps them with `reports_of`."""
    _rows_of(conn, cache, checked).write_to(events)


def _rows_of(conn: Connection, cache: FactsCache, checked: CheckedBatches) -> _Rows:
    rows = _Rows()
    exposures = [exposure for item in checked.items for exposure in item.exposures]
    facts = cache.lookup(conn, _wanted(exposures)) if exposures else {}
    for item in checked.items:
        for exposure in item.exposures:
            rows.add_exposure(exposure, facts.get(exposure.config), item.batch.received_ms)
        for event in item.events:
            rows.add_event(event, item.batch.received_ms)
    return rows


def reports_of(checked: CheckedBatches, processed_ms: int) -> list[tuple[BatchReport, BatchResult]]:
    """One (report, result) per batch, its rejections logged."""
    reports = [_report(item, processed_ms) for item in checked.items]
    for report, result in reports:
        if result.rejected:
            # The batch id goes in `extra` (and the report on its row): the message stays countable.
            log.warning(
                "Event batch: %d stored, %d ignored, %d dropped %s",
                result.accepted,
                result.ignored,
                len(result.rejected),
                result.dropped,
                extra={"batch_id": report.id},
            )
    return reports


def process_into(
    conn: Connection,
    cache: FactsCache,
    batches: Sequence[LoggedBatch],
    processed_ms: int,
    *,
    decoded: Sequence[Sequence[Any]] | None = None,
    events: EventStore | None = None,
) -> list[tuple[BatchReport, BatchResult]]:
    """`check_batches` then `write_checked`, in the caller's transaction."""
    return write_checked(conn, cache, check_batches(batches, decoded=decoded), processed_ms, events=events)
