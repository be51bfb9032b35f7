"""Contextual autotunes served by the server itself (contextual.md, "Policy" and "Results").

- `/v1/get_config` (in `sdk_specs`) asks `serve()` first, like the core SDK checks `cmab_configs` before
  `dynamic_configs`: a trained contextual autotune is decided by Thompson sampling
  (`contextual.serving`); an untrained one (no `config` in its published entry) gets the SDK's own
  equal split of that entry (`serving.cmab.equal_split`), so both assign every unit alike. Either way the
  exposure is stored with its exact propensity before the answer is sent.
- `POST /v1/get_cmab_ranked_groups` with `{configName, user}`: every variant with its published score,
  best first. The caller logs an ordinary exposure for the one it shows (`isManualExposure: "true"`).

Deciders are rebuilt when the published specs change (a new policy always changes them). Contextual
serving (numpy, scipy) is imported on first use: a server starts without it, and one with no contextual
autotune never loads it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

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
from openautotune.api.published import published_specs
from openautotune.api.spec_cache import Published
from openautotune.clock import Clock
from openautotune.service.ingest import ExposureInput
from openautotune.serving.cmab import equal_split
from openautotune.store.database import Database

if TYPE_CHECKING:
    import numpy as np

    from openautotune.contextual.serving import Decider

router = APIRouter(
    tags=["SDK"], responses={code: {"model": ErrorBody} for code in (400, 401, 404, 429, 503)}, route_class=SdkJsonRoute
)


class ContextualDeciders:
    """The deciders of the latest published change, loaded once per change (thread-safe)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._changed_ms: int | None = None
        self._deciders: dict[str, Decider] = {}
        self._rng: np.random.Generator | None = None

    @property
    def rng(self) -> np.random.Generator:
        if self._rng is None:
            import numpy as np

            self._rng = np.random.default_rng()
        return self._rng

    @rng.setter
    def rng(self, generator: np.random.Generator) -> None:
        self._rng = generator

    def fresh(self, changed_ms: int) -> dict[str, Decider] | None:
        return self._deciders if self._changed_ms == changed_ms else None

    def load(self, changed_ms: int) -> dict[str, Decider]:
        from openautotune.contextual.serving import load_deciders

        with self._lock:
            if self._changed_ms != changed_ms:
                self._deciders = load_deciders(self._db)
                self._changed_ms = changed_ms
            return self._deciders


async def deciders(request: Request, changed_ms: int) -> dict[str, Decider]:
    holder: ContextualDeciders = request.app.state.contextual
    ready = holder.fresh(changed_ms)
    return ready if ready is not None else await run_in_threadpool(holder.load, changed_ms)


@dataclass(frozen=True)
class Served:
    """One server-side assignment: the group answered, and what its exposure records."""

    group_id: str
    group_name: str
    value: Any
    rule_id: str
    version: int
    propensity: float


async def decide(request: Request, config_name: str, user: dict[str, Any], published: Published) -> Served | None:
    """Assign a running contextual autotune to `user` and store the exposure with its propensity before
    answering (a 2xx means it is durable); None when `config_name` is not one (the ordinary evaluation
    applies). Untrained: the core SDK's equal split of the published entry; trained: Thompson sampling."""
    entry = published.cmab.get(config_name)
    if entry is None:
        return None
    untrained = equal_split(entry, user)
    if untrained is not None:
        group = untrained.group
        served = Served(
            group["id"],
            group["name"],
            group["parameterValues"],
            untrained.rule_id,
            untrained.version,
            untrained.propensity,
        )
    else:
        decider = (await deciders(request, published.changed_ms)).get(config_name)
        if decider is None:
            return None
        holder: ContextualDeciders = request.app.state.contextual
        decision = decider.decide(user, holder.rng)
        chosen = decision.group
        served = Served(chosen.id, chosen.name, chosen.value, decision.rule_id, decision.version, decision.propensity)
    await _record(request, config_name, user, served)
    return served


async def serve(
    request: Request, config_name: str, user: dict[str, Any], published: Published
) -> dict[str, Any] | None:
    """The `/v1/get_config` answer for a running contextual autotune (exposure stored), else None."""
    served = await decide(request, config_name, user, published)
    if served is None:
        return None
    return {
        "name": config_name,
        "value": served.value,
        "rule_id": served.rule_id,
        "group": served.group_id,
        "group_name": served.group_name,
    }


async def _record(request: Request, config_name: str, user: dict[str, Any], served: Served) -> None:
    batcher: ExposureBatcher = request.app.state.exposure_batcher
    clock: Clock = request.app.state.clock
    refused = await batcher.record(
        ExposureInput(
            autotune_id=config_name,
            rule_id=served.rule_id,
            user=user,
            time_ms=clock.now_ms(),
            config_version=served.version,
            propensity=served.propensity,
        )
    )
    if refused is not None:
        raise ApiError(400, f"The exposure could not be recorded: {refused}")


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
