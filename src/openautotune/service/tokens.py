"""Random identifiers and secrets (the only place the service layer draws randomness)."""

from __future__ import annotations

import secrets
import string
import uuid

_ALPHABET = string.ascii_lowercase + string.digits


def opaque_id(length: int = 16) -> str:
    """Lower-case alphanumeric: safe in URLs, rule ids, salts and checksums alike."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def salt() -> str:
    return str(uuid.uuid4())


def secret(length: int = 32) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(length))
