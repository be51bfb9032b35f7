"""CORS for the endpoints a web page calls (sdk-client-protocol.md, section 5 and Rulings).

Only `/v1/initialize`, `/v1/rgstr` and `/v1/sdk_exception` ever answer a cross-origin request; the
Console API, spec downloads and the dashboard never do, so a page can reach nothing else. And only
with a **client** key: client keys are public by design (they are in every page's source) and see
evaluated values only, while a server key in a browser would be a leaked secret, so a page using
one gets no CORS headers and its browser refuses the answer. No cookies are involved, which is
why allowing any origin (`*`, the default of `cors_allowed_origins`) is safe.

- Preflight (`OPTIONS` with `Access-Control-Request-Method`): 204 with the allowed method and the
  headers the SDKs send, when the origin is allowed and the `k` key, if any, is a client key (the
  `sdk_exception` preflight carries no key); else 403 in the error shape, without CORS headers.
- Other requests with an `Origin`: the answer gets `Access-Control-Allow-Origin` when the origin
  is allowed and the key (`STATSIG-API-KEY` header or `k`) is an active client key.
"""

from __future__ import annotations

from urllib.parse import parse_qs

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openautotune.domain.keys import KeyKind
from openautotune.service.keys import KeyAuthenticator

BROWSER_PATHS = frozenset({"/v1/initialize", "/v1/rgstr", "/v1/sdk_exception"})
ANY_ORIGIN = "*"
# What the JS client sends: the four statsig-* headers of its event batches, and the key, type
# and version headers plus the JSON content type of its exception reports.
ALLOWED_HEADERS = (
    "content-type, statsig-api-key, statsig-event-count, statsig-retry-count, statsig-sdk-type, statsig-sdk-version"
)
PREFLIGHT_MAX_AGE = "86400"
REFUSED = "Cross-origin requests need an allowed origin and a client key"


def parse_origins(setting: str) -> frozenset[str] | None:
    """`*` (any origin) -> None; else the comma-separated origins, e.g. `https://shop.example`."""
    origins = frozenset(origin.strip().rstrip("/") for origin in setting.split(",") if origin.strip())
    return None if not origins or ANY_ORIGIN in origins else origins


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _query_key(scope: Scope) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("k")
    return values[0] if values else None


class SdkCors:
    """ASGI middleware answering preflights and adding CORS headers on the browser SDK paths."""

    def __init__(self, app: ASGIApp, allowed_origins: str, keys: KeyAuthenticator) -> None:
        self.app = app
        self.origins = parse_origins(allowed_origins)
        self.keys = keys

    def _origin_allowed(self, origin: str) -> bool:
        return self.origins is None or origin.rstrip("/") in self.origins

    def _is_client_key(self, raw: str | None) -> bool:
        record = self.keys.authenticate(raw)
        return record is not None and record.kind is KeyKind.CLIENT

    def _allow_origin(self, origin: str) -> list[tuple[bytes, bytes]]:
        if self.origins is None:
            return [(b"access-control-allow-origin", b"*")]
        return [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = _header(scope, b"origin") if scope["type"] == "http" else None
        if origin is None or scope.get("path") not in BROWSER_PATHS:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method") is not None:
            await self._preflight(scope, origin, send)
            return
        key = _header(scope, b"statsig-api-key") or _query_key(scope)
        if not (self._origin_allowed(origin) and self._is_client_key(key)):
            await self.app(scope, receive, send)
            return
        extra = self._allow_origin(origin)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, scope: Scope, origin: str, send: Send) -> None:
        key = _query_key(scope)
        if not self._origin_allowed(origin) or (key is not None and not self._is_client_key(key)):
            body = orjson.dumps(
                {"status": 403, "message": "Cross-origin requests need an allowed origin and a client key"}
            )
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 403, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        headers = [
            *self._allow_origin(origin),
            (b"access-control-allow-methods", b"POST, OPTIONS"),
            (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
            (b"access-control-max-age", PREFLIGHT_MAX_AGE.encode()),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
