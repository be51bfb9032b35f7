"""JSON read with limits: the one parser every boundary uses (Console API, SDK endpoints, dashboard).

A value that passes here can be stored, re-encoded by orjson and served by every SDK: nesting at most
`max_depth` deep (orjson encodes at most 254 levels), integers inside 64-bit range (orjson and
PostgreSQL `bigint` refuse larger ones), finite numbers, strings that are valid Unicode (no lone
surrogates: they cannot be encoded as UTF-8) and not longer than `max_string`, containers of at most
`max_items` members. Whatever fails gets a `JsonProblem` naming where, so the caller answers 400 (or
drops one event of a batch) before anything is written.

Two parsers, one set of rules: `parse_json` reads integers exactly (Python's parser with hooks), so a
26-digit integer is refused rather than silently rounded; `parse_json_fast` uses orjson for SDK batches
(a hot path), where an integer beyond 64 bits is read as the float JSON's number model allows.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import orjson

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# A decimal integer of more digits than this is out of 64-bit range; refusing it before int() also
# keeps Python's own 4,300-digit conversion limit (and its quadratic cost) out of reach.
_MAX_INT_DIGITS = 20


@dataclass(frozen=True)
class JsonLimits:
    max_depth: int = 32
    max_string: int = 64 * 1024
    max_items: int = 10_000
    max_key: int = 1024
    # PostgreSQL text cannot hold NUL; fields stored as text or JSON refuse it on both databases.
    allow_nul: bool = True
    # A tighter integer bound than 64 bits where a reader needs one (JavaScript: 2^53 - 1).
    max_abs_int: int = 2**63


DEFAULT_LIMITS = JsonLimits()


class JsonProblem(ValueError):
    """The value breaks a limit (or is not JSON); `path` is where, e.g. `variants[0].json.a`."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def _parse_int(text: str) -> int:
    digits = text.lstrip("-")
    if len(digits) > _MAX_INT_DIGITS:
        raise JsonProblem("", "an integer is outside the 64-bit range")
    return int(text)


def _refuse_constant(name: str) -> Any:
    raise JsonProblem("", f"{name} is not a JSON number")


def decode_utf8(raw: bytes | str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise JsonProblem("", "the body is not valid UTF-8") from None


def parse_json(raw: bytes | str, limits: JsonLimits = DEFAULT_LIMITS) -> Any:
    """Parse exactly (integers are never rounded) and check every limit; raises `JsonProblem`."""
    text = decode_utf8(raw)
    try:
        value = json.loads(text, parse_int=_parse_int, parse_constant=_refuse_constant)
    except RecursionError:
        raise JsonProblem("", f"nesting is deeper than {limits.max_depth} levels") from None
    except json.JSONDecodeError as error:
        raise JsonProblem("", f"the body is not valid JSON ({error.msg} at position {error.pos})") from None
    check_json(value, limits)
    return value


def _lenient_int(text: str) -> int:
    # Out of range either way; the sentinel keeps int() away from thousands of digits.
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        return INT64_MIN - 1 if text.startswith("-") else INT64_MAX + 1
    return int(text)


_LENIENT = json.JSONDecoder(parse_int=_lenient_int)
_JSON_SPACE = re.compile(r"[ \t\n\r]*")  # always matches


def load_lenient(text: str) -> Any:
    """Read what the strict parsers refuse (NaN, Infinity, huge integers, lone surrogates) as values that
    `check_json` then refuses; raises `JsonProblem` only for text that is not JSON or nests too deep to read."""
    value, end = load_lenient_at(text, 0)
    if text[end:].strip():
        raise JsonProblem("", "not valid JSON (Extra data)")
    return value


def load_lenient_at(text: str, start: int) -> tuple[Any, int]:
    """`load_lenient` of the one value starting at `start` (after any whitespace): the value and where it ends."""
    try:
        return _LENIENT.raw_decode(text, _JSON_SPACE.match(text, start).end())  # type: ignore[union-attr]
    except RecursionError:
        raise JsonProblem("", "nesting is too deep to read") from None
    except json.JSONDecodeError as error:
        raise JsonProblem("", f"not valid JSON ({error.msg})") from None


def parse_json_fast(raw: bytes | str, limits: JsonLimits = DEFAULT_LIMITS) -> Any:
    """orjson's parse (valid UTF-8, no NaN, at most 1,024 levels) followed by the same checks."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise JsonProblem("", f"the body is not valid JSON ({error.msg})") from None
    check_json(value, limits)
    return value


def check_json(value: Any, limits: JsonLimits = DEFAULT_LIMITS, path: str = "") -> None:
    """Check an already-parsed value (from any parser) against the limits; raises `JsonProblem`."""
    # Nearly every value passes: a walk that only answers yes or no (no path text built per member,
    # exact-type dispatch) goes first, and the walk that names the place runs only when it says no.
    # The log processor checks every user and metadata object of every event: this halved its checks.
    if not _fits(value, limits, 0):
        _check(value, limits, path, 0)


def _utf8(text: str) -> bool:
    """Valid Unicode (no lone surrogate), for a string that is not ASCII."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _fits(value: Any, limits: JsonLimits, depth: int) -> bool:
    """True when `_check` would pass; False when it would raise (or the type is unusual: `_check` decides).
    Scalars inside a container are checked inline: a function call per member was most of the cost."""
    kind = type(value)
    if kind is dict or kind is list:
        if depth >= limits.max_depth or len(value) > limits.max_items:
            return False
        items = value.values() if kind is dict else value
        if kind is dict:
            max_key, nul_ok = limits.max_key, limits.allow_nul
            for key in value:
                if type(key) is not str or len(key) > max_key or (not nul_ok and "\x00" in key):
                    return False
                if not key.isascii() and not _utf8(key):
                    return False
        max_string, nul_ok = limits.max_string, limits.allow_nul
        for item in items:
            kind = type(item)
            if kind is str:
                if len(item) > max_string or (not nul_ok and "\x00" in item):
                    return False
                if not item.isascii() and not _utf8(item):
                    return False
            elif item is None or kind is bool:
                continue
            elif not _fits(item, limits, depth + 1):
                return False
        return True
    if kind is str:
        if len(value) > limits.max_string or (not limits.allow_nul and "\x00" in value):
            return False
        return value.isascii() or _utf8(value)
    if kind is bool or value is None:
        return True
    if kind is int:
        return bool(INT64_MIN <= value <= INT64_MAX and abs(value) <= limits.max_abs_int)
    if kind is float:
        return math.isfinite(value)
    return False


def _check(value: Any, limits: JsonLimits, path: str, depth: int) -> None:
    if isinstance(value, str):
        _check_string(value, limits.max_string, path, limits.allow_nul)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise JsonProblem(path, "an integer is outside the 64-bit range")
        if abs(value) > limits.max_abs_int:
            raise JsonProblem(path, f"an integer is larger in magnitude than {limits.max_abs_int}")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise JsonProblem(path, "a number is not finite")
    elif isinstance(value, dict):
        if depth >= limits.max_depth:
            raise JsonProblem(path, f"nesting is deeper than {limits.max_depth} levels")
        if len(value) > limits.max_items:
            raise JsonProblem(path, f"an object has more than {limits.max_items} members")
        for key, item in value.items():
            if not isinstance(key, str):
                raise JsonProblem(path, "an object key is not a string")
            _check_string(key, limits.max_key, path, limits.allow_nul)
            _check(item, limits, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, list | tuple):
        if depth >= limits.max_depth:
            raise JsonProblem(path, f"nesting is deeper than {limits.max_depth} levels")
        if len(value) > limits.max_items:
            raise JsonProblem(path, f"an array has more than {limits.max_items} items")
        for index, item in enumerate(value):
            _check(item, limits, f"{path}[{index}]", depth + 1)
    else:
        raise JsonProblem(path, f"a {type(value).__name__} is not a JSON value")


def _check_string(text: str, limit: int, path: str, allow_nul: bool = True) -> None:
    if len(text) > limit:
        raise JsonProblem(path, f"a string is longer than {limit} characters")
    if not allow_nul and "\x00" in text:
        raise JsonProblem(path, "a string contains a NUL character")
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise JsonProblem(path, "a string holds a lone surrogate (not valid Unicode)") from None


def check_text(text: str, what: str, limit: int) -> str:
    """A single text field (description, id, name): valid Unicode, no NUL, at most `limit` characters."""
    if "\x00" in text:
        raise JsonProblem(what, "contains a NUL character")
    _check_string(text, limit, what)
    return text
