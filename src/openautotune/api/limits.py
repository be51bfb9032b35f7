"""Refuse request bodies over a size limit before any handler buffers them."""

from __future__ import annotations

import contextlib

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1024 * 1024
# SDK event batches (up to 1,000-2,000 events) may exceed 1 MiB; a 413 would make the SDK drop
# the whole batch, so their paths get more room (ingestion bounds the decompressed size itself).
SDK_BATCH_PATHS = ("/v1/log_event", "/v1/rgstr")
MAX_SDK_BATCH_BYTES = 16 * 1024 * 1024


class _TooLarge(Exception):
    pass


async def _send_413(send: Send, limit: int) -> None:
    body = orjson.dumps({"status": 413, "message": f"The request body is larger than {limit} bytes"})
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """ASGI middleware: 413 in the error shape for bodies over `limit` bytes (declared or streamed)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES, sdk_batch_limit: int = MAX_SDK_BATCH_BYTES) -> None:
        self.app = app
        self.default_limit = limit
        self.sdk_batch_limit = sdk_batch_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.sdk_batch_limit if scope.get("path", "") in SDK_BATCH_PATHS else self.default_limit
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _send_413(send, limit)
                    return
        received = 0
        started = False  # the app (or we) began the response: its status can no longer change
        refused = False  # we answered 413: whatever the app sends afterwards is dropped

        async def counting_receive() -> Message:
            # The 413 goes out here, not where _TooLarge is caught below: FastAPI turns any error raised
            # while it reads a body into "400 There was an error parsing the body", so by the time the
            # exception (or that 400) reaches us the status would be wrong (a chunked body has no
            # Content-Length to refuse up front).
            nonlocal received, started, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if not started:
                        started = refused = True
                        await _send_413(send, limit)
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        # Answered 413 above, or the response had already begun and only the body is cut short.
        with contextlib.suppress(_TooLarge):
            await self.app(scope, counting_receive, tracking_send)
