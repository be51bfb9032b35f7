"""Before an update counts events: wait (a bounded while) for logged batches received before its as_of.

Log-first ingestion acknowledges a batch before its rows exist (docs/ingestion.md). An update at
`as_of` that ran while such batches were still pending would count those units and events one
update later, not lose them: attribution reads by event time, and the next update's window covers
them only if they fall inside it. So the update waits up to `timeout_seconds` for the processor,
and when batches are still pending after that it says so in the engine log and goes on (a stopped
processor must not stop the engine).
"""

from __future__ import annotations

import logging
import time

from openautotune.store.batch_log import unprocessed_batches
from openautotune.store.database import Database

log = logging.getLogger("openautotune.engine")

DEFAULT_WAIT_SECONDS = 30.0
POLL_SECONDS = 0.2


def wait_for_ingest(db: Database, as_of_ms: int, timeout_seconds: float = DEFAULT_WAIT_SECONDS) -> int:
    """Wait until no batch received at or before `as_of_ms` is pending, or the timeout; the number
    still pending (0 when all are processed), which is logged as a warning."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        pending, oldest = unprocessed_batches(db.engine, received_before_ms=as_of_ms + 1)
        if pending == 0:
            return 0
        if time.monotonic() >= deadline:
            log.warning(
                "%d SDK batches received before as_of %d are not processed yet (oldest received at %s): "
                "this update counts without them; is a processor running?",
                pending,
                as_of_ms,
                oldest,
            )
            return pending
        time.sleep(POLL_SECONDS)
