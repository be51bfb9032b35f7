"""`GET /health`: whether this process serves config specs, and which autotunes it leaves out.

- 200 `{"status": "ok", "unrenderable": []}`: every autotune is served.
- 200 `{"status": "degraded", "unrenderable": ["<autotune id>", ...]}`: those autotunes hold a value no
  SDK document can carry (see `serving.isolate`); they are left out of the specs (SDKs get their
  defaults, `/v1/get_config` answers as for an unknown config) and every other one is served. The
  reason is in the server log (logged once per autotune and problem).
- 503 in the error shape: no specs can be served at all (database unreachable, or a rendering bug).

No key is needed: a load balancer asks it. Only autotune ids are shown, never their contents.
"""

from __future__ import annotations

import logging
from typing import Literal

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from openautotune.api.console_models import ErrorBody
from openautotune.api.errors import error_response
from openautotune.api.spec_cache import SpecCache

log = logging.getLogger("openautotune.api")
router = APIRouter(tags=["Operations"])


class HealthAnswer(BaseModel):
    status: Literal["ok", "degraded"]
    unrenderable: list[str]


@router.get("/health", response_model=HealthAnswer, responses={503: {"model": ErrorBody}})
async def health(request: Request) -> Response:
    """ok, or degraded with the autotunes left out of the config specs; 503 when none can be served."""
    cache: SpecCache = request.app.state.specs
    try:
        if cache.fresh() is None:
            await run_in_threadpool(cache.current)
    except Exception:  # whatever stops the specs (the database, a bug) makes this process unhealthy
        log.exception("health check: config specs cannot be served")
        return error_response(503, "Config specs cannot be served; see the server log")
    left_out = cache.left_out()
    body = {"status": "degraded" if left_out else "ok", "unrenderable": left_out}
    return Response(orjson.dumps(body), media_type="application/json")
