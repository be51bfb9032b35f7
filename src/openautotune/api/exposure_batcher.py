"""Group commit for exposures the server serves itself (`/v1/get_config`).

Each request must not be answered before its exposure is committed, but one transaction per request
caps throughput at the database's commit rate. So the first waiting request starts a write at once
(no added latency when alone), and every request that arrives while a write is in flight joins the
next one: under load, one commit serves many requests. Everything but the write itself runs on the
event loop, so the queue needs no lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool

from openautotune.service.ingest import BatchResult, ExposureInput, Ingestor

MAX_BATCH = 500

Waiter = tuple[ExposureInput, "asyncio.Future[str | None]"]


class ExposureBatcher:
    def __init__(self, ingestor: Ingestor, max_batch: int = MAX_BATCH) -> None:
        self._ingestor = ingestor
        self._max_batch = max_batch
        self._pending: list[Waiter] = []
        self._writing = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def record(self, exposure: ExposureInput) -> str | None:
        """Returns once the exposure is committed: None, or why ingestion refused it."""
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._pending.append((exposure, future))
        if not self._writing:
            self._writing = True
            task = asyncio.ensure_future(self._drain())
            self._tasks.add(task)  # keep a reference until it is done
            task.add_done_callback(self._tasks.discard)
        return await future

    def _write(self, batch: Sequence[ExposureInput]) -> BatchResult:
        return self._ingestor.record_exposures(batch)

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
                try:
                    result = await run_in_threadpool(self._write, [exposure for exposure, _ in batch])
                except Exception as error:  # every waiter of this batch gets the failure
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                reasons = {rejection.index: rejection.reason for rejection in result.rejected}
                for index, (_, future) in enumerate(batch):
                    if not future.done():
                        future.set_result(reasons.get(index))
        finally:
            self._writing = False
