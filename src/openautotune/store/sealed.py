"""Secrets sealed at rest: Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from a server secret.

The key is the server secret `metric-source-sealing` (store.server_secrets, created on first use and
shared by every process on one database). A copy of the `metric_sources` table alone, a log line or
an API answer never shows a password; someone who holds the whole database holds the key too — see
docs/metric-sources.md for what that does and does not protect.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

SEALING_SECRET = "metric-source-sealing"


class CannotUnseal(Exception):
    """The ciphertext was sealed under another key (the server secret changed) or was altered."""


def _fernet(secret: str) -> Fernet:
    # Imported here: `cryptography` costs ~90 ms to import, and a server start must not pay it.
    from cryptography.fernet import Fernet

    # Fernet wants 32 url-safe base64 bytes; the stored secret is text of any length.
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()))


def seal(secret: str, plaintext: str) -> str:
    return _fernet(secret).encrypt(plaintext.encode()).decode("ascii")


def unseal(secret: str, sealed: str) -> str:
    from cryptography.fernet import InvalidToken

    try:
        return _fernet(secret).decrypt(sealed.encode("ascii")).decode()
    except (InvalidToken, ValueError) as error:
        raise CannotUnseal("the stored connection URL cannot be decrypted with this server's key") from error
