"""A batch of SDK events -> rows in exposures, units and events, in one transaction (those three in
the event store instead when one is set: `_Rows.write`).

Per batch: one tiny query for the specs-change marker, at most two queries to load autotunes
not yet cached, and three `executemany` writes. Nothing is queried per event.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from openautotune.clock import Clock
from openautotune.service.ingest import parse
from openautotune.service.ingest.classify import classify
from openautotune.store import ingest as store
from openautotune.store.database import Database
from openautotune.store.event_store import EventStore
from openautotune.store.ingest import AutotuneFacts

log = logging.getLogger("openautotune.ingest")


@dataclass(frozen=True)
class Rejection:
    index: int
    reason: str


@dataclass(frozen=True)
class BatchResult:
    """What happened to a batch: `accepted` events are stored (or were already, if re-sent)."""

    accepted: int = 0
    rejected: tuple[Rejection, ...] = ()
    ignored: int = 0
    exposures: int = 0
    analysable: int = 0
    events: int = 0

    @property
    def dropped(self) -> dict[str, int]:
        """How many events were rejected, per reason (reasons never quote the event)."""
        return dict(Counter(item.reason for item in self.rejected))


@dataclass(frozen=True)
class ExposureInput:
    """An exposure the server itself served (e.g. `/v1/get_config`), recorded like an SDK's.

    `user` is the Statsig JSON user (`userID`, `customIDs`, `custom`, ...), `rule_id` the rule the
    evaluation matched (a variant id, `prestart`, `<variant>:explore`, ...), `config_version` the
    allocation version served, and `propensity` the exact probability of the served variant when
    the server knows it (contextual autotunes).
    """

    autotune_id: str
    rule_id: str
    user: Mapping[str, Any]
    time_ms: int
    config_version: int | None
    propensity: float | None = None


class FactsCache:
    """Autotune id -> facts (or None: no such autotune), valid while the specs-change marker holds.

    Any mutation of an autotune bumps the marker in its own transaction, so a batch never
    classifies with facts older than the state its own transaction sees.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self._max_entries = max_entries
        self._marker: int | None = None
        self._facts: dict[str, AutotuneFacts | None] = {}
        self._lock = threading.Lock()

    def lookup(self, conn: Connection, wanted: Mapping[str, set[int]]) -> dict[str, AutotuneFacts]:
        """Facts of the wanted autotunes that exist; `wanted` maps each id to the versions seen.

        An autotune whose cached facts lack a version an exposure names is reloaded (an engine
        update may have published it since), so facts are never older than the exposures.
        """
        marker = store.specs_changed_at(conn)
        with self._lock:
            if marker != self._marker:
                self._facts = {}
                self._marker = marker
            known = {key: self._facts[key] for key in wanted if key in self._facts}
        missing = [
            key
            for key, versions in wanted.items()
            if key not in known or ((facts := known[key]) is not None and not versions <= facts.allocations.keys())
        ]
        if missing:
            loaded = store.load_facts(conn, missing)
            fresh = {key: loaded.get(key) for key in missing}
            known.update(fresh)
            with self._lock:
                if self._marker == marker:
                    if len(self._facts) + len(fresh) > self._max_entries:
                        self._facts = {}
                    self._facts.update(fresh)
        return {key: facts for key, facts in known.items() if facts is not None}


@dataclass
class _Rows:
    exposures: dict[str, dict[str, Any]] = field(default_factory=dict)
    units: dict[tuple[str, int, str], dict[str, Any]] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    analysable: int = 0

    def add_exposure(self, exposure: parse.CheckedExposure, facts: AutotuneFacts | None, received_ms: int) -> None:
        verdict = classify(exposure, facts)
        if verdict.analysable:
            self.analysable += 1
        if exposure.dedup_key in self.exposures:
            return
        self.exposures[exposure.dedup_key] = {
            "autotune_id": exposure.config,
            "run": verdict.run,
            "unit_id": verdict.unit_id,
            "rule_id": exposure.rule_id,
            "variant_id": verdict.variant_id,
            "explore": verdict.explore,
            "config_version": exposure.config_version,
            "time_ms": exposure.time_ms,
            "received_ms": received_ms,
            "user": exposure.user,
            "propensity": exposure.propensity,
            "analysable": verdict.analysable,
            "reason": verdict.reason,
            "dedup_key": exposure.dedup_key,
        }
        if not verdict.analysable or verdict.run is None:
            return
        key = (exposure.config, verdict.run, verdict.unit_id)
        known = self.units.get(key)
        if known is not None and known["first_exposure_ms"] <= exposure.time_ms:
            return  # the batch already holds an exposure of this unit at least as early
        self.units[key] = {
            "autotune_id": exposure.config,
            "run": verdict.run,
            "unit_id": verdict.unit_id,
            "variant_id": verdict.variant_id,
            "first_exposure_ms": exposure.time_ms,
            "allocation_version": exposure.config_version,
            "explore": verdict.explore,
            "features": exposure.user,
            "holdout": verdict.holdout,
            "propensity": exposure.propensity,
        }

    def add_event(self, event: parse.CheckedEvent, received_ms: int) -> None:
        for id_type, unit in event.ids.pairs():
            key = parse.event_key(event, id_type, unit)
            self.events[key] = {
                "id_type": id_type,
                "unit_id": unit,
                "event_name": event.name,
                "value": event.value,
                "metadata": event.metadata,
                "time_ms": event.time_ms,
                "received_ms": received_ms,
                "dedup_key": key,
            }

    def write(self, conn: Connection, events: EventStore | None = None) -> None:
        """Rows go in key order, tables in a fixed order: two batches touching the same units or
        dedup keys at once then wait for each other instead of deadlocking (PostgreSQL).

        The one place that decides where rows go. With a separate event store (ClickHouse), units,
        events AND raw exposures go there in one bulk call inside this transaction, and nothing of
        them to the main database: if that store fails, the transaction (and the batch's processed
        stamp) rolls back and the batch is not acknowledged."""
        if events is not None:
            self.write_to(events)
            return
        exposure_rows, units, event_rows = self._in_key_order()
        store.insert_exposures(conn, exposure_rows)
        store.upsert_units(conn, units)
        store.insert_events(conn, event_rows)

    def write_to(self, events: EventStore) -> None:
        """Units, events and raw exposures to a separate event store, in one bulk, idempotent call."""
        exposure_rows, units, event_rows = self._in_key_order()
        events.write_rows(units, event_rows, exposure_rows)

    def _in_key_order(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """(raw exposures, units, events), each sorted by its key."""
        return (
            [self.exposures[key] for key in sorted(self.exposures)],
            [self.units[key] for key in sorted(self.units)],
            [self.events[key] for key in sorted(self.events)],
        )


def _wanted(exposures: Iterable[parse.CheckedExposure]) -> dict[str, set[int]]:
    wanted: dict[str, set[int]] = {}
    for exposure in exposures:
        versions = wanted.setdefault(exposure.config, set())
        if exposure.config_version is not None:
            versions.add(exposure.config_version)
    return wanted


class Ingestor:
    """Stores what SDKs log. One per process (it keeps the autotune facts cache)."""

    def __init__(self, db: Database, clock: Clock, cache: FactsCache | None = None) -> None:
        self._db = db
        self._clock = clock
        self._cache = cache or FactsCache()

    def ingest(self, raw_events: Sequence[Any]) -> BatchResult:
        """Check every event, then store the good ones in ONE transaction (committed on return)."""
        now = self._clock.now_ms()
        rejected: list[Rejection] = []
        exposures: list[parse.CheckedExposure] = []
        events: list[parse.CheckedEvent] = []
        ignored = 0
        for index, raw in enumerate(raw_events):
            try:
                checked = parse.check_event(raw, now)
            except parse.Invalid as invalid:
                rejected.append(Rejection(index, invalid.reason))
                continue
            if isinstance(checked, parse.CheckedExposure):
                exposures.append(checked)
            elif isinstance(checked, parse.CheckedEvent):
                events.append(checked)
            else:
                ignored += 1
        rows = self._store(now, exposures, events)
        result = BatchResult(
            accepted=len(exposures) + len(events),
            rejected=tuple(rejected),
            ignored=ignored,
            exposures=len(exposures),
            analysable=rows.analysable,
            events=len(rows.events),
        )
        if rejected:
            log.warning(
                "Event batch: %d stored, %d ignored, %d dropped %s",
                result.accepted,
                ignored,
                len(rejected),
                result.dropped,
            )
        return result

    def record_exposures(self, inputs: Sequence[ExposureInput]) -> BatchResult:
        """Record exposures the server served itself, classified and stored exactly like an SDK's."""
        now = self._clock.now_ms()
        rejected: list[Rejection] = []
        exposures: list[parse.CheckedExposure] = []
        for index, item in enumerate(inputs):
            try:
                exposures.append(_checked(item, now))
            except parse.Invalid as invalid:
                rejected.append(Rejection(index, invalid.reason))
        rows = self._store(now, exposures, [])
        return BatchResult(
            accepted=len(exposures), rejected=tuple(rejected), exposures=len(exposures), analysable=rows.analysable
        )

    def _store(self, now: int, exposures: list[parse.CheckedExposure], events: list[parse.CheckedEvent]) -> _Rows:
        rows = _Rows()
        for event in events:
            rows.add_event(event, now)
        if not exposures and not rows.events:
            return rows
        with self._db.write() as conn:
            facts = self._cache.lookup(conn, _wanted(exposures)) if exposures else {}
            for exposure in exposures:
                rows.add_exposure(exposure, facts.get(exposure.config), now)
            rows.write(conn, self._db.events)
        return rows


def _checked(item: ExposureInput, now: int) -> parse.CheckedExposure:
    ids = parse.user_ids(item.user)
    time_ms = parse.check_time(item.time_ms, now)
    version = item.config_version
    return parse.CheckedExposure(
        config=parse.clean_text(item.autotune_id, "autotune id", parse.MAX_CONFIG),
        rule_id=parse.clean_text(item.rule_id, "rule id", parse.MAX_RULE_ID),
        config_version=version,
        time_ms=time_ms,
        user=parse.check_object(parse.stored_user(item.user), "user"),
        ids=ids,
        propensity=item.propensity,
        dedup_key=parse.exposure_key(item.autotune_id, item.rule_id, version, time_ms, ids),
    )


def record_exposures(db: Database, clock: Clock, inputs: Sequence[ExposureInput]) -> BatchResult:
    """Record server-side exposures in one transaction (without a long-lived cache: two small reads)."""
    return Ingestor(db, clock).record_exposures(inputs)
