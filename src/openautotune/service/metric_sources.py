"""Metric sources: create, list, read and delete (docs/metric-sources.md).

A new source's URL is checked for a loadable SQLAlchemy driver but not connected to: a source may be
created before its database is reachable, and the first update reports whether it can be read. The URL
is sealed with the server's sealing secret before it is stored and never comes back out of this module
except masked.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from openautotune.clock import Clock
from openautotune.domain.autotune import Actor
from openautotune.domain.errors import Conflict, InvalidInput, NotFound
from openautotune.domain.metric_sources import (
    NOT_FOUND,
    MetricSource,
    SourceHealth,
    check_source,
    could_be_source_id,
    source_id_from_name,
)
from openautotune.service import server_secrets
from openautotune.store import autotunes as autotune_store
from openautotune.store import metric_sources as store
from openautotune.store.database import Database
from openautotune.store.metric_source_reader import mask_url, parse_url
from openautotune.store.sealed import SEALING_SECRET

NAME_IN_USE = "Name is already in use"


@dataclass(frozen=True)
class SourceInput:
    name: str
    url: str
    unit_id_column: str | None
    timestamp_column: str | None
    query: str | None = None
    table: str | None = None
    value_column: str | None = None
    description: str = ""


def create(db: Database, clock: Clock, actor: Actor, given: SourceInput) -> tuple[MetricSource, SourceHealth]:
    check_source(
        name=given.name,
        url=given.url,
        query=given.query,
        table=given.table,
        unit_id_column=given.unit_id_column,
        timestamp_column=given.timestamp_column,
        value_column=given.value_column,
        description=given.description,
    )
    try:
        parse_url(given.url)
    except ValueError as error:
        raise InvalidInput.field("url", str(error)) from None
    source_id = source_id_from_name(given.name)
    if not source_id.strip("_.-"):
        raise InvalidInput.field("name", "must contain at least one letter or digit")
    assert given.unit_id_column is not None and given.timestamp_column is not None  # checked above
    source = MetricSource(
        id=source_id,
        name=given.name,
        url=given.url,
        masked_url=mask_url(given.url),
        unit_id_column=given.unit_id_column,
        timestamp_column=given.timestamp_column,
        query=given.query,
        table=given.table,
        value_column=given.value_column,
        description=given.description,
        created_ms=clock.now_ms(),
        creator_id=actor.id,
        creator_name=actor.name,
    )
    key = server_secrets.get_or_create(db, clock, SEALING_SECRET)
    with db.write() as conn:
        if store.exists(conn, source_id):
            raise Conflict(NAME_IN_USE)
        store.insert(conn, source, key)
    return _without_url(source), SourceHealth()


def _without_url(source: MetricSource) -> MetricSource:
    # Nothing above the service ever holds the plain URL.
    return replace(source, url="")


def get(db: Database, source_id: str) -> tuple[MetricSource, SourceHealth]:
    if not could_be_source_id(source_id):
        raise NotFound(NOT_FOUND)
    with db.read() as conn:
        found = store.get(conn, source_id)
    if found is None:
        raise NotFound(NOT_FOUND)
    return found


def page(db: Database, limit: int, page_number: int) -> tuple[list[tuple[MetricSource, SourceHealth]], int]:
    with db.read() as conn:
        return store.page(conn, limit, (page_number - 1) * limit)


def delete(db: Database, source_id: str) -> None:
    """Delete a source no autotune reads from (one that is read would fail every update)."""
    if not could_be_source_id(source_id):
        raise NotFound(NOT_FOUND)
    with db.write() as conn:
        if not store.exists(conn, source_id):
            raise NotFound(NOT_FOUND)
        autotunes = autotune_store.readable_autotunes(conn)[0]
        readers = [a.id for a in autotunes if a.definition.metric_source_id == source_id]
        if readers:
            raise Conflict(
                f"Metric source is used by autotune(s) {', '.join(readers[:10])}; change their metricSourceID first"
            )
        store.delete(conn, source_id)
