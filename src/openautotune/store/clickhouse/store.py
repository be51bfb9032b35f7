"""`ClickHouseEvents`: the event store on ClickHouse (chdb in process, one server, or a cluster).

Holds the connections and decides which node runs what:
- one node (chdb or a server): everything on it, tables `units` / `events` / `exposures`;
- a cluster (`?cluster=NAME`): writes go to the `Distributed` tables on the node of the URL (with
  `insert_distributed_sync`, so an INSERT returns only when every shard has its rows), and the
  attribution query runs on each shard over `units_local` / `events_local`, the shards found in
  `system.clusters`; their sums are added (a unit's rows all live on one shard).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

from openautotune.domain.autotune import Definition
from openautotune.store.attribution import BEGINNING_MS, Aggregate
from openautotune.store.clickhouse import exposures, health, schema, writer
from openautotune.store.clickhouse.attribution import NO_PROPENSITY, NO_VERSION, Window, aggregates_sql, units_sql
from openautotune.store.clickhouse.client import ChdbClient, Client, NativeClient, literal
from openautotune.store.clickhouse.url import ClickHouseUrl, parse
from openautotune.store.contextual import UnitRow
from openautotune.store.delay import ImmatureCell
from openautotune.store.event_store import EventStoreUnavailable
from openautotune.store.exposure_log import LoggedExposure, capped

log = logging.getLogger("openautotune.events")

# How long deleting an autotune waits for ClickHouse's background mutation to drop its units.
FORGET_WAIT_SECONDS = 10.0


def _tables_with_autotunes(node: Client) -> list[str]:
    """The tables of the node's database that hold rows per autotune: MergeTree tables (not the
    `Distributed` ones over them) with an `autotune_id` column."""
    query = (
        "SELECT table FROM system.columns WHERE database = currentDatabase() AND name = 'autotune_id' "
        "AND table IN (SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND engine LIKE '%MergeTree') ORDER BY table"
    )
    return [str(table) for (table,) in node.rows(query)]


class _DistributedSync(NativeClient):
    """The initiator of a cluster: inserts into Distributed tables return once every shard has them."""

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES"
        self._call(lambda: self._client.execute(statement, list(rows), settings={"insert_distributed_sync": 1}))


class ClickHouseEvents:
    """Units and events in ClickHouse; see the module docstring for where each statement runs."""

    def __init__(self, url: str | ClickHouseUrl) -> None:
        self.url = parse(url) if isinstance(url, str) else url
        self._shards: list[Client] | None = None
        self.main: Client
        if self.url.kind == "chdb":
            os.makedirs(self.url.path, exist_ok=True)
            self.main = ChdbClient(self.url.path)
        elif self.url.cluster:
            self.main = _DistributedSync(self.url)
        else:
            self.main = NativeClient(self.url)

    @property
    def label(self) -> str:
        return self.url.masked()

    # --- schema -----------------------------------------------------------------------------------

    def _admin_nodes(self) -> list[Client]:
        """Connections to every node that holds tables, on database `default` (which always exists)."""
        if self.url.kind == "chdb":
            return [self.main]
        admin = ClickHouseUrl(**{**self.url.__dict__, "database": "default"})
        first = NativeClient(admin)
        if not self.url.cluster:
            return [first]
        try:
            hosts = self._cluster_hosts(first)
        finally:
            first.close()
        return [NativeClient(admin, host=host, port=port) for host, port in hosts]

    def _cluster_hosts(self, via: Client) -> list[tuple[str, int]]:
        query = (
            "SELECT host_address, port FROM system.clusters "
            f"WHERE cluster = {literal(self.url.cluster)} ORDER BY shard_num, replica_num"
        )
        hosts = [(str(host), int(port)) for host, port in via.rows(query)]
        if not hosts:
            raise ValueError(f"cluster {self.url.cluster!r} is not in the server's remote_servers")
        return hosts

    def migrate(self, now_ms: int) -> int:
        """Create or upgrade the tables (idempotent); returns the schema version."""
        nodes = self._admin_nodes()
        try:
            return schema.migrate(nodes, database=self.url.database, cluster=self.url.cluster, now_ms=now_ms)
        finally:
            for node in nodes:
                if node is not self.main:
                    node.close()

    # --- writes -----------------------------------------------------------------------------------

    def write_rows(
        self,
        units: Sequence[Mapping[str, Any]],
        events: Sequence[Mapping[str, Any]],
        exposures: Sequence[Mapping[str, Any]] = (),
    ) -> int:
        """Store the units, events and raw exposures not stored yet, in bulk (see `writer`); returns
        rows inserted."""
        return writer.write_rows(self.main, units, events, exposures=exposures, tables=("units", "events", "exposures"))

    # --- reads ------------------------------------------------------------------------------------

    def _readers(self) -> tuple[list[Client], str, str]:
        if not self.url.cluster:
            return [self.main], "units", "events"
        if self._shards is None:
            self._shards = [
                NativeClient(self.url, host=host, port=port) for host, port in self._cluster_hosts(self.main)
            ]
        local_units, local_events = schema.local_names(self.url.cluster)
        return self._shards, local_units, local_events

    def _on_shards(self, sql_for: Any) -> list[tuple[Any, ...]]:
        nodes, units, events = self._readers()
        text = sql_for(units, events)
        if len(nodes) == 1:
            return nodes[0].rows(text)
        with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
            parts = list(pool.map(lambda node: node.rows(text), nodes))
        return [row for part in parts for row in part]

    def matured_aggregates(
        self, *, autotune_id: str, run: int, definition: Definition, matured_after_ms: int, as_of_ms: int
    ) -> list[Aggregate]:
        """Per-(variant, period) sums over the units matured in `(matured_after_ms, as_of_ms]`."""
        window = Window(autotune_id, run, matured_after_ms, as_of_ms)
        rows = self._on_shards(lambda u, e: aggregates_sql(definition, window, units=u, events=e))
        # Per (variant, period): every row holds some of the sums and zeros elsewhere (see
        # `aggregates_sql`), so they are added whatever their kind, over shards too (a unit lives on one).
        summed: dict[tuple[str, int], list[float]] = {}
        for _kind, v, p, n, converted, successes, total, total_sq in rows:
            key = (str(v), 0 if int(p) == NO_VERSION else int(p))
            sums = summed.setdefault(key, [0, 0, 0, 0.0, 0.0])
            sums[0] += int(n)
            sums[1] += int(converted)
            sums[2] += int(successes)
            sums[3] += float(total)
            sums[4] += float(total_sq)
        return [
            Aggregate(
                variant_id=variant,
                period=period,
                units=int(sums[0]),
                successes=int(sums[2]),
                total=sums[3],
                total_sq=sums[4],
                rejected=int(sums[1]) - int(sums[2]),
            )
            for (variant, period), sums in sorted(summed.items())
        ]

    def matured_units(
        self,
        *,
        autotune_id: str,
        run: int,
        definition: Definition,
        as_of_ms: int,
        matured_after_ms: int = BEGINNING_MS,
    ) -> list[UnitRow]:
        """Every unit of the run matured in `(matured_after_ms, as_of_ms]`, with its outcome, in
        (first exposure, unit id) order."""
        window = Window(autotune_id, run, matured_after_ms, as_of_ms)
        rows = self._on_shards(lambda u, e: units_sql(definition, window, units=u, events=e))
        rows.sort(key=lambda row: (int(row[-1]), str(row[0])))  # shards' rows merged in query order
        out: list[UnitRow] = []
        for unit_id, v, p, explore, features, propensity, hit, x, _first_ms in rows:
            parsed = orjson.loads(features) if features else None
            out.append(
                UnitRow(
                    unit_id=str(unit_id),
                    variant_id=str(v),
                    allocation_version=None if int(p) == NO_VERSION else int(p),
                    explore=bool(explore),
                    features=parsed if isinstance(parsed, dict) else {},
                    propensity=None if float(propensity) == NO_PROPENSITY else float(propensity),
                    converted=bool(hit),
                    value=None if x is None else float(x),
                )
            )
        return out

    # --- health reads: holdout and delayed conversions (text in clickhouse/health.py, summed per shard) ---

    def holdout_aggregates(
        self, *, autotune_id: str, run: int, definition: Definition, matured_after_ms: int, as_of_ms: int
    ) -> list[Aggregate]:
        """Per-(variant, period) sums over the holdout's units matured in `(matured_after_ms, as_of_ms]`."""
        rows = self._on_shards(
            lambda u, e: health.holdout_aggregates_sql(
                definition,
                autotune_id=autotune_id,
                run=run,
                matured_after_ms=matured_after_ms,
                as_of_ms=as_of_ms,
                units=u,
                events=e,
            )
        )
        return health.aggregates_from(rows)

    def delay_histogram(
        self, *, autotune_id: str, run: int, definition: Definition, matured_after_ms: int, as_of_ms: int, bins: int
    ) -> list[int]:
        """Conversion delays of the units matured in `(matured_after_ms, as_of_ms]`, counted in `bins` bins."""
        rows = self._on_shards(
            lambda u, e: health.delay_histogram_sql(
                definition,
                autotune_id=autotune_id,
                run=run,
                matured_after_ms=matured_after_ms,
                as_of_ms=as_of_ms,
                bins=bins,
                units=u,
                events=e,
            )
        )
        return health.histogram_from(rows, bins)

    def immature_cells(
        self, *, autotune_id: str, run: int, definition: Definition, as_of_ms: int, bins: int
    ) -> list[ImmatureCell]:
        """The bandit's units still in their window at `as_of_ms`, per (variant, period, age bin)."""
        rows = self._on_shards(
            lambda u, e: health.immature_cells_sql(
                definition, autotune_id=autotune_id, run=run, as_of_ms=as_of_ms, bins=bins, units=u, events=e
            )
        )
        return health.cells_from(rows, bins)

    # --- raw exposures: the log stream and daily traffic (text in clickhouse/exposures.py) ----------
    # Read through the node of the URL (on a cluster its `Distributed` table sorts, limits and groups
    # on every shard and merges): one small query each, no per-shard sums to add.

    def recent_exposures(self, *, autotune_id: str, limit: int) -> list[LoggedExposure]:
        """Newest first (time sent, time received, dedup key), at most `limit` rows (capped at MAX_ROWS)."""
        rows = self.main.rows(exposures.recent_sql(autotune_id, capped(limit)))
        return [
            LoggedExposure(
                time_ms=int(time_ms),
                received_ms=int(received_ms),
                unit_id=str(unit_id),
                variant_id=None if variant_id is None else str(variant_id),
                rule_id=str(rule_id),
                run=None if run is None else int(run),
                analysable=bool(analysable),
                reason=str(reason or ""),
            )
            for time_ms, received_ms, unit_id, variant_id, rule_id, run, analysable, reason in rows
        ]

    def daily_exposures(self, *, autotune_id: str, run: int) -> dict[tuple[int, str], int]:
        """Exposures of one run per (UTC day start in ms, variant id)."""
        rows = self.main.rows(exposures.daily_counts_sql(autotune_id, run))
        return {(int(day), str(variant)): int(n) for day, variant, n in rows}

    # --- deleting an autotune ---------------------------------------------------------------------

    def forget_autotune(self, autotune_id: str) -> None:
        """Submit the deletion of every row of `autotune_id` (all runs) from each table that has an
        `autotune_id` column (units, and raw exposures where they live here), on every shard's local
        tables; `wait_forgotten` waits for it.

        Ids are names' hashes and a namesake starts at run 1 again, so units left behind would be read,
        and would make the writer skip the namesake's exposures as already stored. An `ALTER TABLE ...
        DELETE` is a mutation, applied in the background (18.16 has no `mutations_sync`); it rewrites
        only parts that existed when it was submitted, so a namesake's new rows are never touched.
        Events are not per autotune and stay. Raises `EventStoreUnavailable` when a shard refuses or
        cannot be reached (the caller then keeps the autotune: see `service.autotunes.delete`)."""
        for node, table in self._holding(autotune_id, self._readers()[0]):
            node.execute(f"ALTER TABLE {table} DELETE WHERE autotune_id = {literal(autotune_id)}")

    def wait_forgotten(self, autotune_id: str, wait_seconds: float = FORGET_WAIT_SECONDS) -> bool:
        """Wait until no row of `autotune_id` is left (the mutations of `forget_autotune` done), up to
        `wait_seconds`, so a namesake created right after starts empty. False (and a warning) when
        rows are still there or the store cannot be asked: the mutations then finish on their own."""
        deadline = time.monotonic() + wait_seconds
        try:
            while pending := self._holding(autotune_id, self._readers()[0]):
                if time.monotonic() >= deadline:
                    log.warning("ClickHouse still deleting autotune %s in %d table(s)", autotune_id, len(pending))
                    return False
                time.sleep(0.05)
        except EventStoreUnavailable as error:
            log.warning("ClickHouse deletion of autotune %s not confirmed: %s", autotune_id, error)
            return False
        return True

    @staticmethod
    def _holding(autotune_id: str, nodes: Sequence[Client]) -> list[tuple[Client, str]]:
        """(node, table) pairs that still hold rows of `autotune_id`."""
        condition = f"autotune_id = {literal(autotune_id)}"
        return [
            (node, table)
            for node in nodes
            for table in _tables_with_autotunes(node)
            if node.rows(f"SELECT count() FROM {table} WHERE {condition}") != [(0,)]
        ]

    # --- copy and maintenance ----------------------------------------------------------------------

    def counts(self) -> tuple[int, int]:
        """(units, events) stored: distinct (autotune, run, unit) and distinct dedup keys."""
        ((units,),) = self.main.rows("SELECT uniqExact(autotune_id, run, unit_id) FROM units")
        ((events,),) = self.main.rows("SELECT uniqExact(dedup_key) FROM events")
        return int(units), int(events)

    def exposure_count(self) -> int:
        """Raw exposures stored: distinct dedup keys."""
        ((exposures_stored,),) = self.main.rows("SELECT uniqExact(dedup_key) FROM exposures")
        return int(exposures_stored)

    def page(self, table: str, after: Sequence[Any] | None, size: int) -> list[dict[str, Any]]:
        """Up to `size` rows of `units` (one per unit: its earliest), `events` or `exposures` (one per
        dedup key), in key order after `after` (`events copy` out of ClickHouse)."""
        if table == "units":
            key = "(autotune_id, run, unit_id)"
            picked = ", ".join(
                f"argMin({name}, first_exposure_ms)" if name not in ("autotune_id", "run", "unit_id") else name
                for name in schema.UNIT_COLUMNS
            )
            names: tuple[str, ...] = schema.UNIT_COLUMNS
        else:
            key = "dedup_key"
            names = schema.EVENT_COLUMNS if table == "events" else schema.EXPOSURE_COLUMNS
            picked = ", ".join(name if name == "dedup_key" else f"any({name})" for name in names)
        where = ""
        if after is not None:
            bound = ", ".join(literal(value) for value in after)
            where = f"WHERE {key} > ({bound})" if table == "units" else f"WHERE dedup_key > {bound}"
        rows = self.main.rows(
            f"SELECT {picked} FROM {table} {where} GROUP BY {key.strip('()')} ORDER BY {key.strip('()')} LIMIT {size}"
        )
        out = []
        for row in rows:
            item = dict(zip(names, row, strict=True))
            for name in ("features", "metadata", "user"):
                if item.get(name):
                    item[name] = orjson.loads(item[name])
            for name in ("explore", "analysable"):
                if name in item:
                    item[name] = bool(item[name])
            out.append(item)
        return out

    def close(self) -> None:
        self.main.close()
        for node in self._shards or []:
            node.close()
