"""Who is calling: console keys for the Console API, server/client keys for SDK endpoints."""

from __future__ import annotations

from fastapi import Request

from openautotune.api.errors import ApiError
from openautotune.api.rate_limit import spend_console, spend_sdk
from openautotune.domain.autotune import Actor
from openautotune.domain.keys import KeyKind, KeyRecord
from openautotune.service.keys import CONSOLE_HEADER, KeyAuthenticator, require_console_key

CONSOLE_ACTOR_NAME = "CONSOLE API"
FORBIDDEN = "Forbidden resource"


def _authenticator(request: Request) -> KeyAuthenticator:
    authenticator: KeyAuthenticator = request.app.state.keys
    return authenticator


def console_key(request: Request) -> KeyRecord:
    """Any active console key; the request spends the key's read or mutation budget."""
    record = require_console_key(_authenticator(request), request.headers.get(CONSOLE_HEADER))
    spend_console(request, record)
    return record


def writable_console_key(request: Request) -> KeyRecord:
    """An active console key that may change things (mutations)."""
    record = console_key(request)
    if record.read_only:
        raise ApiError(403, FORBIDDEN)
    return record


def console_actor(record: KeyRecord) -> Actor:
    return Actor(id=record.id, name=CONSOLE_ACTOR_NAME)


SERVER_ONLY = frozenset({KeyKind.SERVER})
SERVER_OR_CLIENT = frozenset({KeyKind.SERVER, KeyKind.CLIENT})


def require_sdk_key(request: Request, raw: str | None, allowed: frozenset[KeyKind]) -> KeyRecord:
    """An active key of an `allowed` kind (SDK endpoints), else a 401 in the error shape."""
    record = _authenticator(request).authenticate(raw)
    if record is None or record.kind not in allowed:
        kinds = " or ".join(sorted(kind.value.upper() for kind in allowed))
        raise ApiError(
            401, f"This endpoint only accepts an active {kinds} key, but an invalid key was sent. Key: {raw or ''}"
        )
    spend_sdk(request, record)
    return record
