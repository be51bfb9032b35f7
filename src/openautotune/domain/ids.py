"""Identifier rules: the autotune id derived from its name, and key prefixes."""

from __future__ import annotations

import re

_OUTSIDE_ID_ALPHABET = re.compile(r"[^a-z0-9_.-]+")


def autotune_id_from_name(name: str) -> str:
    """`"A Autotune"` -> `"a_autotune"`: trimmed, lower-cased, other runs become `_`."""
    return _OUTSIDE_ID_ALPHABET.sub("_", name.strip().lower())


CONSOLE_KEY_PREFIX = "console-"
SERVER_KEY_PREFIX = "secret-"
CLIENT_KEY_PREFIX = "client-"
