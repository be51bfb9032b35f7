"""What Statsig's SDKs download: config specs v1 and v2, id lists, and `/v1/get_config`.

See sdk-protocol.md and sdk-core-protocol.md. Spec bodies come ready-encoded from `SpecCache`;
a poll that is already up to date gets `{"has_updates": false}`.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from openautotune.api import cmab
from openautotune.api.auth import SERVER_ONLY, SERVER_OR_CLIENT, require_sdk_key
from openautotune.api.console_models import ErrorBody
from openautotune.api.errors import ApiError
from openautotune.api.exposure_batcher import ExposureBatcher
from openautotune.api.json_body import SdkJsonRoute
from openautotune.api.published import published_specs
from openautotune.api.spec_cache import Encoded
from openautotune.clock import Clock
from openautotune.service.ingest import ExposureInput
from openautotune.serving.evaluate import Evaluation

ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (400, 401, 429, 503)}
router = APIRouter(tags=["SDK"], responses=ERRORS, route_class=SdkJsonRoute)

NO_UPDATES = orjson.dumps({"has_updates": False})
EMPTY = b"{}"
JSON = "application/json"


def _accepts(request: Request) -> set[str]:
    """Content codings the client accepts (q=0 excluded)."""
    accepted: set[str] = set()
    for item in request.headers.get("accept-encoding", "").split(","):
        coding, _, params = item.strip().partition(";")
        quality = params.strip().removeprefix("q=").strip()
        if coding and quality not in ("0", "0.0", "0.00", "0.000"):
            accepted.add(coding.strip().lower())
    return accepted


def encoded_response(request: Request, body: Encoded) -> Response:
    accepted = _accepts(request)
    headers = {"Vary": "Accept-Encoding"}
    if body.br is not None and "br" in accepted:
        content, headers["Content-Encoding"] = body.br, "br"
    elif "gzip" in accepted or "*" in accepted:
        content, headers["Content-Encoding"] = body.gzip, "gzip"
    else:
        content = body.identity
    return Response(content, media_type=JSON, headers=headers)


def _json(body: bytes) -> Response:
    return Response(body, media_type=JSON)


def since_time_ms(raw: Any) -> int:
    if raw is None or raw == "":
        return 0
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise ApiError(400, "sinceTime must be an integer (epoch milliseconds)")
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, "sinceTime must be an integer (epoch milliseconds)") from None


async def _v1_specs(request: Request, raw_key: str | None, since_time: int) -> Response:
    require_sdk_key(request, raw_key, SERVER_ONLY)
    published = await published_specs(request)
    if since_time and since_time >= published.time_ms:
        return _json(NO_UPDATES)
    return encoded_response(request, published.v1)


@router.get("/v1/download_config_specs/{sdk_key}.json")
async def download_config_specs_v1(
    request: Request,
    sdk_key: str,
    sinceTime: str | None = None,
) -> Response:
    """Config specs v1 for the legacy `statsig` SDK (key in the path or the STATSIG-API-KEY header)."""
    return await _v1_specs(request, sdk_key or request.headers.get("statsig-api-key"), since_time_ms(sinceTime))


@router.post("/v1/download_config_specs")
async def download_config_specs_v1_post(
    request: Request,
    statsig_api_key: Annotated[str | None, Header(alias="STATSIG-API-KEY")] = None,
) -> Response:
    """Config specs v1; the body may be empty or `{"sinceTime": <ms>}`."""
    body: Any = await request.json()  # read with limits by SdkJsonRoute; None when blank
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object")
    return await _v1_specs(request, statsig_api_key, since_time_ms(body.get("sinceTime")))


@router.post("/v1/get_id_lists")
async def get_id_lists(
    request: Request,
    statsig_api_key: Annotated[str | None, Header(alias="STATSIG-API-KEY")] = None,
) -> Response:
    """This server has no id lists: always `{}`."""
    require_sdk_key(request, statsig_api_key, SERVER_ONLY)
    return _json(EMPTY)


async def _v2_specs(request: Request, sdk_key: str, sinceTime: str | None, checksum: str | None) -> Response:
    require_sdk_key(request, sdk_key or request.headers.get("statsig-api-key"), SERVER_ONLY)
    since_time = since_time_ms(sinceTime)
    published = await published_specs(request)
    if (checksum and checksum == published.checksum) or (since_time and since_time >= published.time_ms):
        return _json(NO_UPDATES)
    return encoded_response(request, published.v2)


@router.get("/v2/download_config_specs/{sdk_key}.json")
async def download_config_specs_v2(
    request: Request, sdk_key: str, sinceTime: str | None = None, checksum: str | None = None
) -> Response:
    """Config specs v2 for Statsig's server-core SDKs (`statsig-python-core`)."""
    return await _v2_specs(request, sdk_key, sinceTime, checksum)


@router.get("/v2/download_config_specs//{sdk_key}.json", include_in_schema=False)
async def download_config_specs_v2_double_slash(
    request: Request, sdk_key: str, sinceTime: str | None = None, checksum: str | None = None
) -> Response:
    return await _v2_specs(request, sdk_key, sinceTime, checksum)


async def _record_exposure(request: Request, user: dict[str, Any], evaluation: Evaluation) -> None:
    """Stored like an SDK's exposure before answering (a 2xx answer means it is durable)."""
    batcher: ExposureBatcher = request.app.state.exposure_batcher
    clock: Clock = request.app.state.clock
    exposure = ExposureInput(
        autotune_id=evaluation.config_name,
        rule_id=evaluation.rule_id,
        user=user,
        time_ms=clock.now_ms(),
        config_version=evaluation.version,
    )
    refused = await batcher.record(exposure)
    if refused is not None:
        raise ApiError(400, f"The exposure could not be recorded: {refused}")


class GetConfigIn(BaseModel):
    """Statsig's HTTP API body; other fields (such as `statsigMetadata`) are ignored."""

    configName: str = Field(min_length=1)
    user: dict[str, Any]


@router.post("/v1/get_config")
async def get_config(
    request: Request,
    body: GetConfigIn,
    statsig_api_key: Annotated[str | None, Header(alias="statsig-api-key")] = None,
) -> Response:
    """Evaluate one autotune server-side, exactly as an SDK would for the same specs."""
    require_sdk_key(request, statsig_api_key, SERVER_OR_CLIENT)
    published = await published_specs(request)
    # An autotune left out of the specs (a bad row) answers as SDKs see it: unknown, the default.
    servable = body.configName not in published.unrenderable
    contextual = await cmab.serve(request, body.configName, body.user, published) if servable else None
    if contextual is not None:  # a running contextual autotune, as the core SDK reads `cmab_configs` first
        return _json(orjson.dumps(contextual))
    evaluation = published.evaluator.evaluate(body.user, body.configName)
    if evaluation is None:
        answer: dict[str, Any] = {"name": body.configName, "value": {}, "rule_id": "", "group": "", "group_name": None}
        return _json(orjson.dumps(answer))
    await _record_exposure(request, body.user, evaluation)
    return _json(
        orjson.dumps(
            {
                "name": evaluation.config_name,
                "value": evaluation.value,
                "rule_id": evaluation.rule_id,
                "group": evaluation.variant_id or evaluation.rule_id,
                "group_name": evaluation.group_name,
            }
        )
    )
