"""What every Console API router shares (autotunes, reviews, metric sources): the router's version check,
body reader and error responses, the two kinds of console key, and the app's database and clock."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from openautotune.api.auth import console_key, writable_console_key
from openautotune.api.console_headers import check_version
from openautotune.api.json_body import ConsoleJsonRoute
from openautotune.clock import Clock
from openautotune.domain.keys import KeyRecord
from openautotune.store.database import Database

Reader = Annotated[KeyRecord, Depends(console_key)]
Writer = Annotated[KeyRecord, Depends(writable_console_key)]


def console_router(prefix: str, tag: str, errors: dict[int | str, dict[str, Any]]) -> APIRouter:
    return APIRouter(
        prefix=prefix,
        tags=[tag],
        dependencies=[Depends(check_version)],
        responses=errors,
        route_class=ConsoleJsonRoute,
    )


def request_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def request_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def json_response(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
