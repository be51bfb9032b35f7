"""Contextual autotunes served by the server itself (contextual.md, "Policy" and "Results").

- `/v1/get_config` (in `sdk_specs`) asks `serve()` first: a trained contextual autotune is decided by
  Thompson sampling (`engine.contextual_serving`), and the exposure is stored with its exact propensity
  before the answer is sent. Untrained ones (the exploration window) fall through to the ordinary
  evaluation, the same equal split the SDKs use.
- `POST /v1/get_cmab_ranked_groups` with `{configName, user}`: every variant with its published score,
  best first. The caller logs an ordinary exposure for the one it shows (`isManualExposure: "true"`).

Deciders are rebuilt when the published specs change (a new policy always changes them).
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from openautotune.api.auth import SERVER_OR_CLIENT, require_sdk_key
from openautotune.api.console_models import ErrorBody
from openautotune.api.errors import ApiError
from openautotune.api.exposure_batcher import ExposureBatcher
from openautotune.api.json_body import SdkJsonRoute
from openautotune.clock import Clock
from openautotune.engine.contextual_serving import Decider, load_deciders
from openautotune.service.ingest import ExposureInput
from openautotune.store.database import Database

router = APIRouter(
    tags=["SDK"], responses={code: {"model": ErrorBody} for code in (400, 401, 404, 503)}, route_class=SdkJsonRoute
)


class ContextualDeciders:
    """The deciders of the latest published change, loaded once per change (thread-safe)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._changed_ms: int | None = None
        self._deciders: dict[str, Decider] = {}
        self.rng = np.random.default_rng()

    def fresh(self, changed_ms: int) -> dict[str, Decider] | None:
        return self._deciders if self._changed_ms == changed_ms else None

    def load(self, changed_ms: int) -> dict[str, Decider]:
        with self._lock:
            if self._changed_ms != changed_ms:
                self._deciders = load_deciders(self._db)
                self._changed_ms = changed_ms
            return self._deciders


async def deciders(request: Request, changed_ms: int) -> dict[str, Decider]:
    holder: ContextualDeciders = request.app.state.contextual
    ready = holder.fresh(changed_ms)
    return ready if ready is not None else await run_in_threadpool(holder.load, changed_ms)


async def serve(request: Request, config_name: str, user: dict[str, Any], changed_ms: int) -> dict[str, Any] | None:
    """The `/v1/get_config` answer for a trained contextual autotune (exposure stored), else None."""
    decider = (await deciders(request, changed_ms)).get(config_name)
    if decider is None:
        return None
    holder: ContextualDeciders = request.app.state.contextual
    decision = decider.decide(user, holder.rng)
    batcher: ExposureBatcher = request.app.state.exposure_batcher
    clock: Clock = request.app.state.clock
    refused = await batcher.record(
        ExposureInput(
            autotune_id=config_name,
            rule_id=decision.rule_id,
            user=user,
            time_ms=clock.now_ms(),
            config_version=decision.version,
            propensity=decision.propensity,
        )
    )
    if refused is not None:
        raise ApiError(400, f"The exposure could not be recorded: {refused}")
    return {
        "name": config_name,
        "value": decision.group.value,
        "rule_id": decision.rule_id,
        "group": decision.group.id,
        "group_name": decision.group.name,
    }


class RankedGroupsIn(BaseModel):
    configName: str = Field(min_length=1)
    user: dict[str, Any]


@router.post("/v1/get_cmab_ranked_groups")
async def get_cmab_ranked_groups(
    request: Request,
    body: RankedGroupsIn,
    statsig_api_key: Annotated[str | None, Header(alias="statsig-api-key")] = None,
) -> Response:
    """Every variant of a trained contextual autotune for `user`, with its score, best first."""
    from openautotune.api.sdk_specs import published_specs

    require_sdk_key(request, statsig_api_key, SERVER_OR_CLIENT)
    published = await published_specs(request)
    decider = (await deciders(request, published.changed_ms)).get(body.configName)
    if decider is None or body.configName in published.unrenderable:
        raise ApiError(404, f"{body.configName!r} is not a running contextual autotune with a trained policy")
    ranked = [
        {"name": group.name, "id": group.id, "parameterValues": group.value, "score": score}
        for group, score in decider.ranked(body.user)
    ]
    answer = {"configName": body.configName, "version": decider.version, "rankedGroups": ranked}
    return Response(orjson.dumps(answer), media_type="application/json")
