"""Group commit of get_config exposures: concurrent requests share transactions, each still waits
for its own commit, and a refused exposure is refused alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fastapi.testclient import TestClient

from openautotune.api.exposure_batcher import ExposureBatcher
from openautotune.service import exposures_log
from openautotune.service.ingest import BatchResult, ExposureInput, Ingestor
from openautotune.testing import TestApp
from tests.api.helpers import created_id, put


class CountingBatcher(ExposureBatcher):
    def __init__(self, ingestor: Ingestor) -> None:
        super().__init__(ingestor, max_batch=8)
        self.batches: list[int] = []

    def _write(self, batch: Sequence[ExposureInput]) -> BatchResult:
        self.batches.append(len(batch))
        return super()._write(batch)


def test_concurrent_exposures_share_commits(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    assert put(client, test_app, f"{autotune_id}/start").status_code == 200
    variant = client.get(f"/console/v1/autotunes/{autotune_id}", headers=test_app.console_headers()).json()
    rule_id = variant["data"]["variants"][0]["id"]
    batcher = CountingBatcher(Ingestor(test_app.db, test_app.clock))
    now = test_app.clock.now_ms()

    def exposure(user: dict[str, object]) -> ExposureInput:
        return ExposureInput(autotune_id=autotune_id, rule_id=rule_id, user=user, time_ms=now, config_version=1)

    async def many() -> list[str | None]:
        users: list[dict[str, object]] = [{"userID": f"u{i}"} for i in range(40)]
        users[17] = {"userID": {"not": "an id"}}
        return await asyncio.gather(*(batcher.record(exposure(user)) for user in users))

    answers = asyncio.run(many())
    assert [i for i, answer in enumerate(answers) if answer is not None] == [17]
    assert sum(batcher.batches) == 40 and len(batcher.batches) < 40 and max(batcher.batches) <= 8
    stored = {row.unit_id for row in exposures_log.recent(test_app.db, autotune_id, limit=100)}
    assert stored == {f"u{i}" for i in range(40) if i != 17}
