"""What `/v1/log_event` does with a body that passed its checks, in one of three modes (docs/ingestion.md).

- `log` (the default of `openautotune serve`): append the raw batch to the database's batch log and
  answer once it is committed. Batches arriving while a commit is in flight join the next one
  (group commit): one fsync serves many requests, so the log takes batches faster than one
  transaction each could. The processor turns them into rows later.
- `queue` (`--queue nats://...`): publish the raw batch to the NATS JetStream stream and answer
  after the stream's ack (file storage: the message is on disk). `openautotune process --queue`
  turns messages into rows.
- `sync`: append the batch already processed and write its rows in one transaction, and answer
  with the per-event report (`rejected`, `dropped`). Used by the tests that read rows right after
  the POST, and by deployments that want each answer to say which events were refused.

In `log` and `queue` mode the answer says the batch is durable, not that its events are valid:
`accepted` counts the events logged and the per-event report is kept on the batch
(`ingest_batches.problems`) and in the processor's log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from openautotune.api.errors import ApiError
from openautotune.clock import Clock
from openautotune.service.ingest import BatchResult, FactsCache
from openautotune.service.ingest.log_processor import append_batches, process_now
from openautotune.service.ingest.logged import GZIP, PLAIN, new_batch
from openautotune.service.ingest.nats_queue import NatsError, NatsPublisher, QueueTooLarge
from openautotune.store.batch_log import LoggedBatch
from openautotune.store.database import Database

LOG = "log"
QUEUE = "queue"
SYNC = "sync"
MODES = (LOG, SYNC)
MAX_GROUP = 200  # batches per group commit
PUBLISH_TIMEOUT_SECONDS = 10.0
QUEUE_UNAVAILABLE = "The event queue is unavailable; retry later"
log = logging.getLogger("openautotune.ingest")

Waiter = tuple[LoggedBatch, "asyncio.Future[None]"]


class GroupAppender:
    """Appends batches to the log; the first waiter writes at once, later ones join the next commit."""

    def __init__(self, db: Database, max_group: int = MAX_GROUP) -> None:
        self._db = db
        self._max_group = max_group
        self._pending: list[Waiter] = []
        self._writing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.on_appended: Callable[[], None] | None = None

    async def append(self, batch: LoggedBatch) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((batch, future))
        if not self._writing:
            self._writing = True
            task = asyncio.ensure_future(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                group, self._pending = self._pending[: self._max_group], self._pending[self._max_group :]
                try:
                    await run_in_threadpool(append_batches, self._db, [batch for batch, _ in group])
                except Exception as error:  # nobody in this group is acknowledged
                    for _, future in group:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for _, future in group:
                    if not future.done():
                        future.set_result(None)
                if self.on_appended is not None:
                    self.on_appended()
        finally:
            self._writing = False


def _json(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), status_code=200, media_type="application/json")


def full_answer(result: BatchResult) -> Response:
    return _json(
        {
            "success": True,
            "accepted": result.accepted,
            "rejected": [{"index": item.index, "reason": item.reason} for item in result.rejected],
            "ignored": result.ignored,
            "dropped": result.dropped,
        }
    )


def logged_answer(batch: LoggedBatch) -> Response:
    return _json(
        {
            "success": True,
            "accepted": batch.event_count,
            "rejected": [],
            "ignored": 0,
            "dropped": {},
            "batch_id": batch.id,
        }
    )


class BatchIntake:
    """Takes checked batches in the configured mode and shapes the answer."""

    def __init__(self, db: Database, clock: Clock, mode: str = LOG, queue_url: str = "") -> None:
        if mode not in MODES:
            raise ValueError(f"ingest mode must be one of {', '.join(MODES)}, not {mode!r}")
        if queue_url and not queue_url.startswith(("nats://", "tls://")):
            raise ValueError(f"the queue URL must start with nats:// or tls://, not {queue_url!r}")
        self.mode = QUEUE if queue_url else mode
        self._db = db
        self._clock = clock
        self._cache = FactsCache()
        self.appender = GroupAppender(db)
        self.publisher = NatsPublisher(queue_url) if queue_url else None

    async def take(self, stored_body: bytes, gzip: bool, events: Sequence[Any]) -> Response:
        if not events:
            return full_answer(BatchResult())  # nothing to keep: no row, no message
        batch = new_batch(stored_body, GZIP if gzip else PLAIN, len(events), self._clock.now_ms())
        if self.mode == SYNC:
            result = await run_in_threadpool(process_now, self._db, self._cache, batch, events, batch.received_ms)
            return full_answer(result)
        if self.publisher is not None:
            await self._publish(self.publisher, batch)
        else:
            await self.appender.append(batch)
        return logged_answer(batch)

    async def _publish(self, publisher: NatsPublisher, batch: LoggedBatch) -> None:
        """413 for a batch the queue cannot carry; 503 (SDKs retry) when the stream does not ack in time."""
        try:
            await asyncio.wait_for(publisher.publish(batch), PUBLISH_TIMEOUT_SECONDS)
        except QueueTooLarge as too_large:
            raise ApiError(413, str(too_large)) from None
        except (TimeoutError, NatsError, OSError):
            log.warning("Publishing a batch to the queue failed; answered 503", exc_info=True)
            raise ApiError(503, QUEUE_UNAVAILABLE) from None

    async def close(self) -> None:
        if self.publisher is not None:
            await self.publisher.close()
