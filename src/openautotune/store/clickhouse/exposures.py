"""The ClickHouse text of the raw-exposure reads and of an autotune's deletion (`ClickHouseEvents`).

The same answers as the SQL of `store/exposure_log.py`: the log stream newest first by (time sent,
time received, dedup key), the daily traffic per (UTC day, variant) of one run. Plain SELECTs with
ORDER BY / LIMIT / GROUP BY run unchanged on 18.16 and 26.x, on one node or through the `Distributed`
table of a cluster (each shard sorts, limits and groups; the initiator merges).
"""

from __future__ import annotations

from openautotune.store.clickhouse.client import literal
from openautotune.store.exposure_log import DAY_MS

RECENT_COLUMNS = ("time_ms", "received_ms", "unit_id", "variant_id", "rule_id", "run", "analysable", "reason")


def recent_sql(autotune_id: str, limit: int, *, table: str = "exposures") -> str:
    return (
        f"SELECT {', '.join(RECENT_COLUMNS)} FROM {table} WHERE autotune_id = {literal(autotune_id)} "
        f"ORDER BY time_ms DESC, received_ms DESC, dedup_key DESC LIMIT {int(limit)}"
    )


def daily_counts_sql(autotune_id: str, run: int, *, table: str = "exposures") -> str:
    return (
        f"SELECT intDiv(time_ms, {DAY_MS}) * {DAY_MS} AS day, assumeNotNull(variant_id) AS variant, count() "
        f"FROM {table} WHERE autotune_id = {literal(autotune_id)} AND run = {int(run)} "
        "AND isNotNull(variant_id) GROUP BY day, variant"
    )
