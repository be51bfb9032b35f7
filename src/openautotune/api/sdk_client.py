"""Client SDKs (`@statsig/js-client` 3.x): `POST /v1/initialize` and `POST /v1/sdk_exception`.

See sdk-client-protocol.md. A page calls `/v1/initialize` with its user and gets every autotune
already evaluated for that user (`serving.initialize`): the values and rule ids, never the rules.
Its exposures and events then arrive at `/v1/rgstr` (`sdk_events`). Trained contextual autotunes
are assigned here (the core SDK's equal split before training, Thompson sampling after), and their
exposure is stored with its propensity before the answer (`cmab.decide`), exactly as `/v1/get_config` does.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from openautotune.api import cmab
from openautotune.api.auth import SERVER_OR_CLIENT, require_sdk_key
from openautotune.api.console_models import ErrorBody
from openautotune.api.errors import ApiError
from openautotune.api.published import published_specs
from openautotune.api.sdk_specs import NO_UPDATES, since_time_ms
from openautotune.domain.json_limits import JsonProblem, parse_json_fast
from openautotune.service.keys import CONSOLE_HEADER
from openautotune.serving.evaluate import Evaluation
from openautotune.serving.initialize import DEFAULT_HASH, HASHES, client_entry, hashed_name, initialize_answer

log = logging.getLogger("openautotune.sdk_client")

ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (400, 401, 413, 429, 503)}
router = APIRouter(tags=["SDK"], responses=ERRORS)
JSON = "application/json"

INITIALIZE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["user"],
    "properties": {
        "user": {"type": "object"},
        "hash": {"type": "string", "enum": list(HASHES)},
        "sinceTime": {"type": "integer"},
        "statsigMetadata": {"type": "object"},
    },
}
# The body is read raw (the JS client sends it as text/plain, or obfuscated with se=1).
INITIALIZE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {media: {"schema": INITIALIZE_SCHEMA} for media in ("text/plain", "application/json")},
    }
}


def sdk_key(request: Request) -> str | None:
    """Server SDKs send the `STATSIG-API-KEY` header; the browser client only the `k` query parameter."""
    return request.headers.get(CONSOLE_HEADER) or request.query_params.get("k")


def _decoded(raw: bytes, obfuscated: bool) -> bytes:
    """The JSON text of a body; `se=1` means the client sent `btoa(json)` reversed."""
    if not obfuscated:
        return raw
    try:
        return base64.b64decode(raw.strip()[::-1], validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "The body is not the reversed base64 that se=1 announces") from None


def read_body(raw: bytes, obfuscated: bool) -> dict[str, Any]:
    """A JSON object read with the project's limits; anything else is a 400."""
    try:
        body = parse_json_fast(_decoded(raw, obfuscated))
    except JsonProblem as problem:
        raise ApiError(400, f"The body is not valid: {problem}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object")
    return body


def _user(body: dict[str, Any]) -> dict[str, Any]:
    user = body.get("user")
    if not isinstance(user, dict):
        raise ApiError(400, "user must be an object")
    return user


def _hash(body: dict[str, Any]) -> str:
    algorithm = body.get("hash")
    if algorithm is None:
        return DEFAULT_HASH
    if algorithm not in HASHES:
        raise ApiError(400, f"hash must be one of {', '.join(HASHES)}")
    return str(algorithm)


def _entry(key: str, evaluation: Evaluation, decision: cmab.Served | None) -> dict[str, Any]:
    """A contextual autotune's server-side assignment wins over the plain evaluation (its marginal split)."""
    if decision is not None:
        return client_entry(
            key,
            value=decision.value,
            rule_id=decision.rule_id,
            group_name=decision.group_name,
            id_type=evaluation.id_type,
            version=decision.version,
            in_experiment=True,
        )
    return client_entry(
        key,
        value=evaluation.value,
        rule_id=evaluation.rule_id,
        group_name=evaluation.group_name,
        id_type=evaluation.id_type,
        version=evaluation.version,
        in_experiment=evaluation.variant_id is not None,
    )


@router.post(
    "/v1/initialize",
    summary="Every autotune evaluated for one user (client SDKs)",
    openapi_extra=INITIALIZE_BODY,
)
async def initialize(request: Request) -> Response:
    """The key comes from `k` (browsers) or `STATSIG-API-KEY`; client and server keys are accepted."""
    require_sdk_key(request, sdk_key(request), SERVER_OR_CLIENT)
    body = read_body(await request.body(), request.query_params.get("se") == "1")
    user, algorithm = _user(body), _hash(body)
    since = since_time_ms(body.get("sinceTime"))
    published = await published_specs(request)
    if since and since >= published.time_ms:
        return Response(NO_UPDATES, media_type=JSON)  # the client's values are current: no evaluation
    evaluator = published.evaluator
    decided = [name for name in evaluator.names() if name in published.cmab]
    decisions = await asyncio.gather(*(cmab.decide(request, name, user, published) for name in decided))
    by_name = dict(zip(decided, decisions, strict=True))
    entries = []
    for name in evaluator.names():
        evaluation = evaluator.evaluate(user, name)
        assert evaluation is not None  # every name comes from this evaluator
        entries.append(_entry(hashed_name(name, algorithm), evaluation, by_name.get(name)))
    answer = initialize_answer(user, algorithm, published.time_ms, entries)
    return Response(orjson.dumps(answer), media_type=JSON)


class _LogBudget:
    """At most `per_minute` reports logged a minute: a broken page must not flood the log."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._window = 0
        self._used = 0

    def take(self) -> bool:
        window = int(time.monotonic() // 60)
        if window != self._window:
            self._window, self._used = window, 0
        self._used += 1
        return self._used <= self.per_minute


EXCEPTION_LOG_BUDGET = _LogBudget(per_minute=20)
MAX_LOGGED_CHARS = 2000


@router.post("/v1/sdk_exception", status_code=202, summary="An SDK's report of its own error (logged)")
async def sdk_exception(request: Request) -> Response:
    """Client SDKs report their internal errors here when `sdkExceptionUrl` points at this server."""
    require_sdk_key(request, sdk_key(request), SERVER_OR_CLIENT)
    body = read_body(await request.body(), obfuscated=False)
    if EXCEPTION_LOG_BUDGET.take():
        log.warning("SDK exception report: %s", orjson.dumps(body).decode()[:MAX_LOGGED_CHARS])
    return Response(orjson.dumps({"success": True}), status_code=202, media_type=JSON)
