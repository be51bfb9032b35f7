"""`/console/v1/metric_sources`: named SQL sources of success data (an extension; docs/metric-sources.md).

Same conventions as the autotunes API: console keys, Statsig's error shapes, pagination. No answer
ever carries a source's connection URL as given: only `url` masked (password `***`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from openautotune.api.auth import console_actor
from openautotune.api.console import ERRORS, MAX_PAGE
from openautotune.api.console_router import Reader, Writer, console_router
from openautotune.api.console_router import json_response as _json
from openautotune.api.console_router import request_clock as _clock
from openautotune.api.console_router import request_db as _db
from openautotune.domain.field_limits import MAX_DESCRIPTION
from openautotune.domain.metric_sources import MetricSource, SourceHealth
from openautotune.service import metric_sources

BASE = "/console/v1/metric_sources"


class MetricSourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str
    url: str
    query: str | None = None
    table: str | None = None
    unitIdColumn: str
    timestampColumn: str
    valueColumn: str | None = None
    description: Annotated[str, Field(max_length=MAX_DESCRIPTION)] = ""


class SourceErrorOut(BaseModel):
    time: int
    autotuneID: str | None
    reason: str


class MetricSourceOut(BaseModel):
    id: str
    name: str
    url: str = Field(description="The connection URL with its password (and secret-looking parameters) as ***")
    query: str | None = None
    table: str | None = None
    unitIdColumn: str
    timestampColumn: str
    valueColumn: str | None = None
    description: str
    creatorID: str
    creatorName: str
    createdTime: int
    lastReadTime: int | None
    lastError: SourceErrorOut | None


class MetricSourceAnswer(BaseModel):
    message: str
    data: MetricSourceOut


class MetricSourceListAnswer(BaseModel):
    message: str
    data: list[MetricSourceOut]
    pagination: dict[str, Any]


class DeletedAnswer(BaseModel):
    message: str


router = console_router(BASE, "Metric sources", ERRORS)


def source_json(source: MetricSource, health: SourceHealth) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": source.id,
        "name": source.name,
        "url": source.masked_url,
        "unitIdColumn": source.unit_id_column,
        "timestampColumn": source.timestamp_column,
        "description": source.description,
        "creatorID": source.creator_id,
        "creatorName": source.creator_name,
        "createdTime": source.created_ms,
        "lastReadTime": health.last_read_ms,
        "lastError": None
        if health.last_error is None
        else {
            "time": health.last_error_ms,
            "autotuneID": health.last_error_autotune_id,
            "reason": health.last_error,
        },
    }
    for name, value in (("query", source.query), ("table", source.table), ("valueColumn", source.value_column)):
        if value is not None:
            body[name] = value
    return body


def _page_link(page: int, limit: int) -> str:
    return f"{BASE}?page={page}&limit={limit}"


@router.get("", response_model=MetricSourceListAnswer, summary="List metric sources")
def list_sources(
    request: Request,
    _key: Reader,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
) -> Response:
    items, total = metric_sources.page(_db(request), limit, page)
    return _json(
        {
            "message": "Metric sources listed successfully.",
            "data": [source_json(source, health) for source, health in items],
            "pagination": {
                "itemsPerPage": limit,
                "pageNumber": page,
                "nextPage": _page_link(page + 1, limit) if page * limit < total else None,
                "previousPage": _page_link(page - 1, limit) if page > 1 else None,
                "totalItems": total,
                "all": BASE,
            },
        }
    )


@router.post("", status_code=201, response_model=MetricSourceAnswer, summary="Create metric source")
def create_source(request: Request, key: Writer, body: MetricSourceIn) -> Response:
    given = metric_sources.SourceInput(
        name=body.name,
        url=body.url,
        query=body.query,
        table=body.table,
        unit_id_column=body.unitIdColumn,
        timestamp_column=body.timestampColumn,
        value_column=body.valueColumn,
        description=body.description,
    )
    source, health = metric_sources.create(_db(request), _clock(request), console_actor(key), given)
    return _json({"message": "Metric source created successfully.", "data": source_json(source, health)}, 201)


@router.get("/{id}", response_model=MetricSourceAnswer, summary="Read metric source")
def read_source(request: Request, _key: Reader, id: str) -> Response:
    source, health = metric_sources.get(_db(request), id)
    return _json({"message": "Metric source read successfully.", "data": source_json(source, health)})


@router.delete("/{id}", response_model=DeletedAnswer, summary="Delete metric source")
def delete_source(request: Request, _key: Writer, id: str) -> Response:
    metric_sources.delete(_db(request), id)
    return _json({"message": "Metric source deleted successfully."})
