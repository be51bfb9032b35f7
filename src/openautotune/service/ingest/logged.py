"""A raw batch between its arrival and its processing: how it is kept, and how it is read again.

The request path checks a body once (it decodes, it is `{"events": [...]}` within the caps of
`envelope`) and keeps it compact: a gzip body as received (most SDKs send gzip, and it is 5-10x
smaller to write), anything else as the decoded JSON text. Reading it back can then fail only if
the stored bytes were damaged; that is reported on the batch, never raised.
"""

from __future__ import annotations

import uuid
import zlib
from typing import Any

from openautotune.service.ingest.envelope import BadEnvelope, read_events
from openautotune.store.batch_log import LoggedBatch

GZIP = "gzip"
PLAIN = ""
# Bodies were checked against this when they arrived (api.sdk_events.MAX_DECOMPRESSED_BYTES).
MAX_DECODED_BYTES = 16 * 1024 * 1024


class Unreadable(ValueError):
    """A stored batch that no longer decodes (damaged storage): reported, the batch is skipped."""


def new_batch(body: bytes, encoding: str, event_count: int, received_ms: int) -> LoggedBatch:
    """A batch with a fresh unique id (random: replicas need no coordination to mint one)."""
    return LoggedBatch(uuid.uuid4().hex, received_ms, encoding, body, event_count)


def _gunzip(data: bytes) -> bytes:
    out = bytearray()
    while data:
        inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
        out += inflater.decompress(data, MAX_DECODED_BYTES + 1 - len(out))
        if not inflater.eof or inflater.unconsumed_tail or len(out) > MAX_DECODED_BYTES:
            raise Unreadable("the stored body is truncated or too large")
        data = inflater.unused_data
    return bytes(out)


def events_of(batch: LoggedBatch) -> list[Any]:
    """The `events` list of a stored batch; raises `Unreadable`."""
    try:
        raw = _gunzip(batch.body) if batch.encoding == GZIP else batch.body
        return read_events(raw)
    except (zlib.error, BadEnvelope) as error:
        raise Unreadable(f"the stored body cannot be read: {error}") from None
