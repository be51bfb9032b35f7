"""`GET /health`: whether this process serves config specs, and which autotunes it leaves out.

- 200 `{"status": "ok", "unrenderable": []}`: every autotune is served.
- 200 `{"status": "degraded", "unrenderable": ["<autotune id>", ...]}`: those autotunes hold a value no
  SDK document can carry (see `serving.isolate`); they are left out of the specs (SDKs get their
  defaults, `/v1/get_config` answers as for an unknown config) and every other one is served. The
  reason is in the server log (logged once per autotune and problem).
- 503 in the error shape: no specs can be served at all (database unreachable, or a rendering bug), or
  the oldest received event batch has waited longer than `health_max_ingest_lag_seconds` for the
  processor (0 turns that check off). The lag is one figure for the whole installation, so every
  process of it turns unhealthy together: alert on it rather than only rotating replicas out.

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
from openautotune.metrics import IngestLagProbe
from openautotune.settings import Settings

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
    lagging = await _lag_problem(request)
    if lagging is not None:
        return error_response(503, lagging)
    left_out = cache.left_out()
    body = {"status": "degraded" if left_out else "ok", "unrenderable": left_out}
    return Response(orjson.dumps(body), media_type="application/json")


async def _lag_problem(request: Request) -> str | None:
    """Why the ingest lag makes this installation unhealthy, or None."""
    settings: Settings = request.app.state.settings
    bound = settings.health_max_ingest_lag_seconds
    if bound <= 0:
        return None
    probe: IngestLagProbe = request.app.state.ingest_lag
    try:
        batches, seconds = await run_in_threadpool(probe.read)
    except Exception:
        log.exception("health check: the ingest lag cannot be read")
        return "The ingest lag cannot be read; see the server log"
    if seconds <= bound:
        return None
    log.warning("health check: %d event batches wait, the oldest for %.0f s (bound %.0f s)", batches, seconds, bound)
    return f"Event processing lags: {batches} batches wait, the oldest for {seconds:.0f} s (bound {bound:.0f} s)"
