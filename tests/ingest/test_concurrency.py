"""Batches that overlap (the same units, the same events) written at once from several threads:
no deadlock, no error, no duplicate, and each unit ends on its earliest exposure."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

from openautotune.clock import MINUTE_MS
from openautotune.service.ingest import Ingestor
from tests.ingest.conftest import Ingest, create_autotune, custom_event, exposure
from tests.ingest.test_fuzz import consistent


def test_overlapping_batches_in_parallel(ingest: Ingest) -> None:
    app = ingest.app
    autotune = create_autotune(app, "color")
    variants = [variant.id for variant in autotune.definition.variants]
    t = app.clock.now_ms() - 10 * MINUTE_MS
    events = []
    for unit in range(60):
        user = {"userID": f"u{unit}", "customIDs": {"stableID": f"s{unit}"}}
        for k in range(3):
            events.append(exposure("color", variants[(unit + k) % 2], user=user, time=t + unit + 1000 * k))
        events.append(custom_event("click", user=user, time=t + unit, value=unit))
    batches = []
    for seed in range(8):
        shuffled = events[:]
        random.Random(seed).shuffle(shuffled)
        batches.append(shuffled[: len(shuffled) * 3 // 4])
    ingestor = Ingestor(app.db, app.clock)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(ingestor.ingest, batches))

    assert all(not result.rejected for result in results)
    consistent(ingest)
    stored = ingest.exposures()
    assert len(stored) == len({row["dedup_key"] for row in stored})
    earliest = {f"u{unit}": t + unit for unit in range(60)}
    for unit in ingest.units():
        assert unit["first_exposure_ms"] >= earliest[unit["unit_id"]]
