"""The queue between API replicas and processors: one NATS JetStream stream (docs/ingestion.md, "Queue").

- `NatsPublisher(url).publish(batch)` (API replicas): one message per batch on `SUBJECT`, the
  batch id as `Nats-Msg-Id` (the stream drops a re-publish within its duplicate window), returns
  after the stream's ack: with file storage the message is then on the server's disk.
- `NatsConsumer(db, clock, url).run(stop)` (`openautotune process --queue`): a durable pull consumer
  shared by every processor; each fetch of up to `FETCH` messages is checked outside any transaction,
  then written in ONE transaction (rows, and a processed row in `ingest_batches` per batch id) and
  acked only after the commit, while the next fetch is already under way. A
  kill between commit and ack redelivers messages whose batch id is already recorded: they are
  acked without writing anything, so each batch is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import threading
from collections.abc import Sequence
from typing import Any

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from openautotune.clock import Clock
from openautotune.service.ingest.batch import FactsCache
from openautotune.service.ingest.logged import GZIP, PLAIN
from openautotune.service.ingest.processor import check_batches, write_checked
from openautotune.store import batch_log
from openautotune.store.batch_log import LoggedBatch
from openautotune.store.database import Database

log = logging.getLogger("openautotune.ingest")

__all__ = ["NatsConsumer", "NatsError", "NatsPublisher", "QueueTooLarge"]

STREAM = "OPENAUTOTUNE_BATCHES"
SUBJECT = "openautotune.batches"
DURABLE = "openautotune-processor"
FETCH = 20
FETCH_WAIT_SECONDS = 0.5
ACK_WAIT_SECONDS = 60.0
DUPLICATE_WINDOW_SECONDS = 120.0
H_RECEIVED = "Openautotune-Received-Ms"
H_EVENTS = "Openautotune-Events"
H_ENCODING = "Openautotune-Encoding"


class QueueTooLarge(ValueError):
    """A batch bigger than the NATS server's max_payload even gzip-compressed."""


async def _stream(url: str) -> tuple[Client, JetStreamContext]:
    """Connect and make sure the stream exists (file storage, one copy per server in the cluster)."""
    servers = [part.strip() for part in url.split(",") if part.strip()]  # a cluster: several URLs
    client = await nats.connect(servers, max_reconnect_attempts=-1, reconnect_time_wait=0.5, connect_timeout=5)
    stream = client.jetstream()
    try:
        await stream.stream_info(STREAM)
    except NotFoundError:
        config = StreamConfig(
            name=STREAM,
            subjects=[SUBJECT],
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
        )
        await stream.add_stream(config)
    return client, stream


def _payload(batch: LoggedBatch) -> tuple[bytes, str]:
    """A plain body is gzipped (fast level) for the wire: messages stay under max_payload longer."""
    if batch.encoding == GZIP:
        return batch.body, GZIP
    return gzip.compress(batch.body, compresslevel=1), GZIP


class NatsPublisher:
    """One connection per API process, opened at the first publish (on the server's event loop)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._client: Client | None = None
        self._stream: JetStreamContext | None = None
        self._lock: asyncio.Lock | None = None

    async def _connected(self) -> tuple[Client, JetStreamContext]:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._client is None or self._stream is None or self._client.is_closed:
                self._client, self._stream = await _stream(self._url)
            return self._client, self._stream

    async def publish(self, batch: LoggedBatch) -> None:
        """Returns after the stream acknowledged the message; raises if it did not."""
        client, stream = await self._connected()
        payload, encoding = (
            (batch.body, batch.encoding) if batch.encoding == GZIP else await asyncio.to_thread(_payload, batch)
        )
        if len(payload) > client.max_payload:
            raise QueueTooLarge(f"The batch is larger than the queue's {client.max_payload} bytes compressed")
        headers = {
            "Nats-Msg-Id": batch.id,
            H_RECEIVED: str(batch.received_ms),
            H_EVENTS: str(batch.event_count),
            H_ENCODING: encoding,
        }
        await stream.publish(SUBJECT, payload, stream=STREAM, headers=headers)

    async def close(self) -> None:
        if self._client is not None and not self._client.is_closed:
            await self._client.drain()


async def _give_back(ahead: asyncio.Future[list[Any]]) -> None:
    """Stopping: messages fetched ahead and not written are handed back (nak) for redelivery at once,
    rather than after the ack wait."""
    try:
        for msg in await ahead:
            await msg.nak()
    except Exception:  # the connection is what failed: they come back after the ack wait
        return


def _batch(msg: Any) -> LoggedBatch | None:
    """The batch a message carries; None for a message that was not published by `NatsPublisher`."""
    headers = msg.headers or {}
    try:
        return LoggedBatch(
            id=headers["Nats-Msg-Id"],
            received_ms=int(headers[H_RECEIVED]),
            encoding=GZIP if headers.get(H_ENCODING) == GZIP else PLAIN,
            body=msg.data,
            event_count=int(headers[H_EVENTS]),
        )
    except (KeyError, ValueError):
        return None


class NatsConsumer:
    """Consumes the stream into the database until stopped; any number may share the durable consumer."""

    def __init__(self, db: Database, clock: Clock, url: str, *, fetch: int = FETCH) -> None:
        self._db = db
        self._clock = clock
        self._url = url
        self._fetch = fetch
        self._cache = FactsCache()
        self.batches_processed = 0

    def write(self, batches: Sequence[LoggedBatch]) -> int:
        """Check the batches (CPU; outside any transaction, so SQLite's one write lock is not held meanwhile),
        then ONE transaction: the rows of those not yet recorded, and their processed rows."""
        checked = check_batches(batches)
        with self._db.write() as conn:
            known = batch_log.known_ids(conn, checked.ids)
            fresh = checked.only(set(checked.ids) - known)  # a redelivery repeats ids
            if not fresh.items:
                return 0
            results = write_checked(conn, self._cache, fresh, self._clock.now_ms(), events=self._db.events)
            batch_log.insert_processed(conn, [report for report, _ in results])
        return len(fresh.items)

    async def _pull(self, subscription: JetStreamContext.PullSubscription) -> list[Any]:
        try:
            return await subscription.fetch(self._fetch, timeout=FETCH_WAIT_SECONDS)
        except TimeoutError:
            # nats-py raises its own TimeoutError (a subclass) or the plain one (asyncio's), depending on
            # where in the pull the time ran out. Catching only the former restarted the consumer whenever
            # messages trickled in: a reconnect, and the messages of the abandoned pull came back only
            # after the 60 s ack wait (the lag that grew without bound in bench/ingest_log.py --nats).
            return []

    async def _loop(self, stop: threading.Event) -> None:
        client, stream = await _stream(self._url)
        config = ConsumerConfig(durable_name=DURABLE, ack_wait=ACK_WAIT_SECONDS, max_ack_pending=10_000)
        subscription = await stream.pull_subscribe(SUBJECT, durable=DURABLE, stream=STREAM, config=config)
        # One fetch runs ahead while the previous messages are checked and written in a thread: the
        # round trip to NATS and the server's reads overlap the processing instead of adding to it.
        ahead = asyncio.ensure_future(self._pull(subscription))
        try:
            while not stop.is_set():
                messages = await ahead
                ahead = asyncio.ensure_future(self._pull(subscription))
                if messages:
                    await self._consume(messages)
        finally:
            await _give_back(ahead)
            # Not drain(): it waits for the pull subscription's undelivered queue, which nothing reads,
            # and timed out after 30 s. Acks are flushed; anything unacked is redelivered after the ack wait.
            with contextlib.suppress(Exception):  # the connection may be what failed
                await client.flush()
            await client.close()

    async def _consume(self, messages: list[Any]) -> None:
        batches = [_batch(msg) for msg in messages]
        readable = [batch for batch in batches if batch is not None]
        self.batches_processed += await asyncio.to_thread(self.write, readable)
        for msg, batch in zip(messages, batches, strict=True):  # only after the commit
            if batch is None:
                log.error("Dropped a message without openautotune's batch headers from %s", SUBJECT)
                await msg.term()
            else:
                await msg.ack()

    def run(self, stop: threading.Event) -> None:
        """Blocks until `stop` is set (its own event loop, so it can run in any thread)."""
        while not stop.is_set():
            try:
                asyncio.run(self._loop(stop))
            except Exception:  # NATS or the database went away: start over, nothing was acked
                log.exception("consuming the queue failed; reconnecting")
                stop.wait(2.0)
