"""Identifier rules: the autotune id derived from its name, and key prefixes."""

from __future__ import annotations

import re

_OUTSIDE_ID_ALPHABET = re.compile(r"[^a-z0-9_.-]+")
_ID_SHAPE = re.compile(r"[a-z0-9_.-]{1,200}")


def autotune_id_from_name(name: str) -> str:
    """`"A Autotune"` -> `"a_autotune"`: trimmed, lower-cased, other runs become `_`."""
    return _OUTSIDE_ID_ALPHABET.sub("_", name.strip().lower())


def could_be_autotune_id(text: str) -> bool:
    """Ids are names mapped into `[a-z0-9_.-]`: anything else names no autotune and can be answered
    404 before it reaches a database (PostgreSQL refuses a NUL byte in a query parameter, for one)."""
    return _ID_SHAPE.fullmatch(text) is not None


CONSOLE_KEY_PREFIX = "console-"
SERVER_KEY_PREFIX = "secret-"
CLIENT_KEY_PREFIX = "client-"
