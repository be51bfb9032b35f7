"""How long the server takes to render one autotune page, against reading its update records.

Setup: SQLite in a temp dir, one running autotune with 10 variants and 90 days of hourly updates
(2,160 engine-shaped records, each with per-variant posteriors and aggregates, like engine/update.py
writes). Measured in one run on the same machine:

- read: `store.updates.records` (the engine's reader: the records of the current run, oldest first);
- page: `GET /autotunes/{id}` through the ASGI app, signed in (reads the records, builds the series,
  five plotly figures and the HTML), first with the app's history cache emptied before each round
  (a page no one viewed yet), then again with it (only records written since are read: none here).

Prints the median of each and the ratio page / read.  Run: `.venv/bin/python bench/page.py`
"""

from __future__ import annotations

import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from openautotune.domain.autotune import Actor
from openautotune.engine import history
from openautotune.service import autotunes as autotune_service
from openautotune.service.autotunes import VariantInput
from openautotune.store import updates
from openautotune.testing import START_MS, make_test_app

HOUR_MS = 3_600_000
DAYS = 90
VARIANTS = 10
ROUNDS = 7
ACTOR = Actor(id="bench", name="BENCH")


def _record(variant_ids: list[str], as_of: int, hour: int) -> dict[str, Any]:
    units = [40 * hour + 3 * index for index in range(VARIANTS)]
    successes = [u * (10 + index) // 100 for index, u in enumerate(units)]
    share = 1.0 / VARIANTS
    aggregates = [
        {
            "variantId": vid,
            "period": 1,
            "units": u,
            "successes": s,
            "total": float(s),
            "totalSq": float(s),
            "rejected": 0,
        }
        for vid, u, s in zip(variant_ids, units, successes, strict=True)
    ]
    return {
        "asOf": as_of,
        "previousAsOf": as_of - HOUR_MS,
        "run": 1,
        "stage": "exploring" if hour < 24 else "exploiting",
        "metric": "occurrence",
        "winnerThreshold": 0.95,
        "variants": [
            {
                "id": vid,
                "name": f"variant {index}",
                "units": u,
                "successes": s,
                "total": float(s),
                "totalSq": float(s),
                "posterior": {"alpha": 1.0 + s, "beta": 1.0 + u - s},
                "mean": (1 + s) / (2 + u),
                "ciLow": max(0.0, s / u - 0.01),
                "ciHigh": min(1.0, s / u + 0.01),
                "probabilityOfBest": share,
                "weight": share,
            }
            for index, (vid, u, s) in enumerate(zip(variant_ids, units, successes, strict=True))
        ],
        "new": aggregates,
        "cumulative": aggregates,
        "weights": [share] * VARIANTS,
        "thresholds": [100 * (index + 1) for index in range(VARIANTS)],
        "allocationVersion": None,
        "decision": None,
        "diagnostics": {"newUnits": 400, "rejected": 0, "enoughData": True, "message": None},
    }


def _read_records(db: Any, autotune: Any) -> list[updates.UpdateRecord]:
    with db.read() as conn:
        return updates.records(conn, autotune.id, incarnation_ms=autotune.created_ms, run=autotune.run)


def _median_seconds(action: Any) -> tuple[float, float]:
    """Median wall time and median CPU time of this process (all threads), in seconds.

    CPU time is reported too because wall time on a shared machine swings with other load."""
    walls, cpus = [], []
    for _ in range(ROUNDS):
        wall, cpu = time.perf_counter(), time.process_time()
        action()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        made = make_test_app(f"sqlite:///{Path(folder) / 'bench.db'}")
        fields = {
            "name": "Bench",
            "variants": [VariantInput(f"variant {i}", {"i": i}) for i in range(VARIANTS)],
            "success_event": "click",
            "exploration_window": "24hr",
            "attribution_window": "1hr",
            "winner_threshold": "95%",
        }
        autotune = autotune_service.create(made.db, made.clock, ACTOR, fields)
        autotune = autotune_service.start(made.db, made.clock, ACTOR, autotune.id)
        ids = [variant.id for variant in autotune.definition.variants]
        with made.db.write() as conn:
            for hour in range(1, DAYS * 24 + 1):
                as_of = START_MS + hour * HOUR_MS
                body = _record(ids, as_of, hour)
                updates.insert_record(
                    conn,
                    updates.UpdateRecord(
                        autotune_id=autotune.id,
                        incarnation_ms=autotune.created_ms,
                        run=autotune.run,
                        as_of_ms=as_of,
                        computed_ms=as_of,
                        stage=body["stage"],
                        decision=None,
                        allocation_version=None,
                        record=body,
                    ),
                )
        assert len(_read_records(made.db, autotune)) == len(history.run_bodies(made.db, autotune)) == DAYS * 24
        with TestClient(made.app) as client:
            login = client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
            assert token is not None
            client.post("/login", data={"key": made.console_key, "csrf_token": token.group(1)})

            def page() -> None:
                answer = client.get(f"/autotunes/{autotune.id}")
                assert answer.status_code == 200 and "probability_of_best" in answer.text

            def cold_page() -> None:
                made.app.state.web_points_cache.forget()  # as on a server that never showed this run
                page()

            page()  # warm-up: templates compiled, secret read
            read_s = _median_seconds(lambda: _read_records(made.db, autotune))
            page_s = _median_seconds(cold_page)
            warm_s = _median_seconds(page)
            size = len(client.get(f"/autotunes/{autotune.id}").content)
        made.db.dispose()
    print(f"records: {DAYS * 24} hourly updates x {VARIANTS} variants (SQLite), median of {ROUNDS}")
    print(f"read records: {read_s[0] * 1000:8.1f} ms wall, {read_s[1] * 1000:8.1f} ms CPU")
    print(
        f"render page:  {page_s[0] * 1000:8.1f} ms wall, {page_s[1] * 1000:8.1f} ms CPU ({size / 1e6:.2f} MB of HTML)"
    )
    print(f"ratio page / read: {page_s[0] / read_s[0]:.2f} (wall), {page_s[1] / read_s[1]:.2f} (CPU)")
    print(
        f"page again (history cached, only new records read): {warm_s[0] * 1000:8.1f} ms wall, "
        f"{warm_s[1] * 1000:8.1f} ms CPU; ratio to read {warm_s[0] / read_s[0]:.2f} (wall)"
    )
    if page_s[1] >= 1.0:  # CPU time: wall time on a shared machine measures the neighbours too
        print("FAIL: the page takes a second or more of CPU", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
