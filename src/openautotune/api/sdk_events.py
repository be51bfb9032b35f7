"""`POST /v1/log_event` and `POST /v1/rgstr`: SDK event batches (sdk-protocol.md, docs/ingestion.md).

This router only authenticates the key and checks the envelope (it decodes: gzip, deflate, zstd,
br or plain JSON; it is `{"events": [...]}` within the caps); `api.batch_intake` then logs,
queues or processes the batch, and what each event means is `service.ingest`'s business. The
answer is always a JSON object: an empty body would make the SDK drop the batch.
"""

from __future__ import annotations

import zlib
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from openautotune.api.auth import SERVER_OR_CLIENT, require_sdk_key
from openautotune.api.batch_intake import BatchIntake
from openautotune.api.body_encodings import decode_other
from openautotune.api.console_models import ErrorBody
from openautotune.api.errors import ApiError
from openautotune.service.ingest.envelope import BadEnvelope, read_events
from openautotune.service.ingest.parse import MAX_NAME, MAX_VALUE
from openautotune.service.keys import CONSOLE_HEADER


class RejectedEvent(BaseModel):
    index: int
    reason: str


class LogEventAnswer(BaseModel):
    success: bool
    accepted: int
    rejected: list[RejectedEvent]
    ignored: int
    dropped: dict[str, int]
    batch_id: str | None = None  # log and queue modes: the batch's id; events are checked later


ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (400, 401, 413, 429, 503)}
router = APIRouter(tags=["SDK"], responses={200: {"model": LogEventAnswer}, **ERRORS})

# The body is read raw (it may be gzip), so its schema is documented by hand.
BATCH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["events"],
                    "properties": {
                        "events": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                # Limits per field: docs/api.md, "SDK events". An event that breaks
                                # one is dropped alone (listed in `rejected`), never its batch.
                                "properties": {
                                    "eventName": {"type": "string", "minLength": 1, "maxLength": MAX_NAME},
                                    "user": {"type": "object"},
                                    "time": {"type": "integer"},
                                    "value": {"type": ["string", "number"], "maxLength": MAX_VALUE},
                                    "metadata": {"type": "object"},
                                },
                            },
                        },
                        "statsigMetadata": {"type": "object"},
                    },
                }
            }
        },
    }
}

MAX_DECOMPRESSED_BYTES = 16 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"


def _inflate(data: bytes, wbits: int) -> bytes:
    """Decompress gzip (every member) or zlib data, refusing more than MAX_DECOMPRESSED_BYTES."""
    out = bytearray()
    while data:
        inflater = zlib.decompressobj(wbits=wbits)
        try:
            out += inflater.decompress(data, MAX_DECOMPRESSED_BYTES + 1 - len(out))
        except zlib.error:
            raise ApiError(400, "The body is not valid compressed data") from None
        if inflater.unconsumed_tail or len(out) > MAX_DECOMPRESSED_BYTES:
            raise ApiError(413, f"The decompressed body is larger than {MAX_DECOMPRESSED_BYTES} bytes")
        if not inflater.eof:
            raise ApiError(400, "The compressed body is truncated")
        data = inflater.unused_data
    return bytes(out)


def is_gzip(body: bytes, content_encoding: str | None) -> bool:
    encoding = (content_encoding or "").strip().lower()
    return encoding in ("gzip", "x-gzip") or (encoding in ("", "identity") and body.startswith(GZIP_MAGIC))


def decode_body(body: bytes, content_encoding: str | None) -> bytes:
    encoding = (content_encoding or "").strip().lower()
    if is_gzip(body, content_encoding):
        return _inflate(body, zlib.MAX_WBITS | 16)
    if encoding == "deflate":
        return _inflate(body, zlib.MAX_WBITS)
    if encoding in ("", "identity"):
        return body
    return decode_other(body, encoding, MAX_DECOMPRESSED_BYTES)


def parse_envelope(raw: bytes) -> list[Any]:
    """The `events` list of a batch; a malformed envelope is refused whole (400, nothing stored)."""
    try:
        return read_events(raw)
    except BadEnvelope as bad:
        raise ApiError(bad.status, bad.message) from None


def check_body(body: bytes, content_encoding: str | None) -> tuple[bytes, bool, list[Any]]:
    """(the bytes to keep, whether they are gzip, the events): gzip is kept as received, others decoded."""
    decoded = decode_body(body, content_encoding)
    events = parse_envelope(decoded)
    gzip = is_gzip(body, content_encoding)
    return (body if gzip else decoded), gzip, events


def _authorize(request: Request) -> None:
    """Server or client keys; the header name is case-insensitive like every HTTP header. Browser
    SDKs sending with `navigator.sendBeacon` cannot set headers and pass the key as `?k=` instead."""
    raw = request.headers.get(CONSOLE_HEADER) or request.query_params.get("k")
    require_sdk_key(request, raw, SERVER_OR_CLIENT)


async def _log_event(request: Request) -> Response:
    _authorize(request)
    body = await request.body()
    intake: BatchIntake = request.app.state.batch_intake
    # Decompressing and parsing block: keep them off the event loop.
    kept, gzip, events = await run_in_threadpool(check_body, body, request.headers.get("content-encoding"))
    return await intake.take(kept, gzip, events)


@router.post(
    "/v1/log_event", summary="Log a batch of SDK events (exposures and custom events)", openapi_extra=BATCH_BODY
)
async def log_event(request: Request) -> Response:
    return await _log_event(request)


@router.post(
    "/v1/rgstr", summary="Log a batch of SDK events (client SDKs' name for log_event)", openapi_extra=BATCH_BODY
)
async def rgstr(request: Request) -> Response:
    return await _log_event(request)
