"""JSON request bodies read by `domain.json_limits`, never by FastAPI's own `json.loads`.

Python's parser accepts what nothing downstream can store or re-encode (lone surrogates, integers
of any size, nesting deep enough to break orjson), so a request carrying one used to be written and
then fail every later read. Routers whose bodies are JSON use one of these route classes: the body
is parsed with limits before FastAPI sees it (a `JsonProblem` becomes a 400 in `api.errors`, before
any handler runs, so nothing is written), and FastAPI's body validation then reads the parsed value.

- `ConsoleJsonRoute`: exact parse (Console API: a 4,000-digit integer is refused, never rounded).
- `SdkJsonRoute`: orjson's parse (SDK request bodies: a hot path; an integer beyond 64 bits is read
  as a float, which every later step can store and serve).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from openautotune.domain.json_limits import parse_json, parse_json_fast

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class _ParsedRequest(Request):
    """A request whose `json()` is the value our parser read (FastAPI's validation calls it); None for
    a blank body."""

    parsed: Any = None

    async def json(self) -> Any:
        return self.parsed


class _LimitedJsonRoute(APIRoute):
    # Which of the two readers of domain.json_limits this route's bodies go through (set by each subclass).
    parse: Callable[[bytes], Any] = staticmethod(parse_json)

    def get_route_handler(self) -> Handler:
        handle = super().get_route_handler()

        async def parse_then_handle(request: Request) -> Response:
            parsed = _ParsedRequest(request.scope, request.receive)
            raw = await parsed.body()
            # Whatever the content type: a body that is not JSON is refused either way (FastAPI would
            # not read a text/plain body as one), and some SDKs are careless with the header.
            if raw.strip():
                parsed.parsed = self.parse(raw)  # JsonProblem: a 400 before the handler runs
            return await handle(parsed)

        return parse_then_handle


class ConsoleJsonRoute(_LimitedJsonRoute):
    """Console API bodies: integers read exactly (a 4,000-digit one is refused, never rounded)."""

    parse = staticmethod(parse_json)


class SdkJsonRoute(_LimitedJsonRoute):
    """SDK request bodies: orjson's fast reader (a hot path), with the same limits."""

    parse = staticmethod(parse_json_fast)
