"""A batch body -> its `events` list, one element per event, whatever a single event holds.

The fast path is one orjson parse. orjson refuses a whole document for what is wrong in one event
(a lone surrogate, NaN, 1e400, invalid UTF-8, more than 1,024 levels), and refusing the batch
would make the SDK drop every valid event in it; so when it fails, the body is salvaged: a
scanner finds where each element of `events` starts and ends (strings and brackets only, no
recursion), and each element is read on its own. An element that cannot be read becomes an
`Unreadable` the per-event checks reject; only a broken envelope refuses the batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from openautotune.domain.json_limits import JsonProblem, load_lenient

MAX_EVENTS = 10_000
NOT_JSON = "The body is not valid JSON"
NOT_AN_ENVELOPE = 'The body must be a JSON object with an "events" list'
TOO_MANY = f"A batch holds at most {MAX_EVENTS} events"

_SPACE = re.compile(r"\s*")
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_STRUCTURE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_SCALAR = re.compile(r"[^\s,\]}]+")


class BadEnvelope(ValueError):
    """The body is not `{"events": [...]}`: the batch is refused whole (400, or 413 when too long)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Unreadable:
    """An element of `events` that is not JSON on its own (or nests too deep to read)."""

    problem: str


def read_events(raw: bytes) -> list[Any]:
    """The elements of the body's `events` list; raises `BadEnvelope`."""
    try:
        envelope = orjson.loads(raw)
    except orjson.JSONDecodeError:
        events = _salvage(raw.decode("utf-8", errors="surrogateescape"))
    else:
        if not isinstance(envelope, dict) or not isinstance(envelope.get("events"), list):
            raise BadEnvelope(NOT_AN_ENVELOPE)
        events = envelope["events"]
    if len(events) > MAX_EVENTS:
        raise BadEnvelope(TOO_MANY, 413)
    return events


class _Scanner:
    """Walks the envelope object; values other than `events` are read (and must be JSON), the
    elements of `events` are only delimited and read one by one."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_space(self) -> str:
        self.pos = _SPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]  # \s* always matches
        return self.text[self.pos : self.pos + 1]

    def expect(self, char: str) -> None:
        if self.skip_space() != char:
            raise BadEnvelope(NOT_JSON)
        self.pos += 1

    def value_end(self) -> int:
        """Where the JSON value at `pos` ends, found from its strings and brackets alone."""
        first = self.skip_space()
        if first == '"':
            match = _STRING.match(self.text, self.pos)
            if match is None:
                raise BadEnvelope(NOT_JSON)
            return match.end()
        if first not in ("{", "["):
            match = _SCALAR.match(self.text, self.pos)
            if match is None:
                raise BadEnvelope(NOT_JSON)
            return match.end()
        depth = 0
        for token in _STRUCTURE.finditer(self.text, self.pos):
            symbol = token.group()
            if symbol in ("{", "["):
                depth += 1
            elif symbol in ("}", "]"):
                depth -= 1
                if depth == 0:
                    return token.end()
        raise BadEnvelope(NOT_JSON)

    def elements(self) -> list[Any]:
        self.expect("[")
        items: list[Any] = []
        if self.skip_space() == "]":
            self.pos += 1
            return items
        while True:
            if len(items) >= MAX_EVENTS:
                raise BadEnvelope(TOO_MANY, 413)
            end = self.value_end()
            items.append(_element(self.text[self.pos : end]))
            self.pos = end
            following = self.skip_space()
            self.pos += 1
            if following == "]":
                return items
            if following != ",":
                raise BadEnvelope(NOT_JSON)


def _element(text: str) -> Any:
    try:
        return load_lenient(text)
    except JsonProblem as problem:
        return Unreadable(problem.message)


def _salvage(text: str) -> list[Any]:
    scanner = _Scanner(text)
    if scanner.skip_space() != "{":
        # Not an object at all: a body that is JSON but not an envelope still says so.
        _read(text)
        raise BadEnvelope(NOT_AN_ENVELOPE)
    scanner.pos += 1
    events: list[Any] | None = None
    following = scanner.skip_space()
    if following == "}":
        raise BadEnvelope(NOT_AN_ENVELOPE)
    while True:
        key_end = scanner.value_end()
        key = _read(text[scanner.pos : key_end])
        if not isinstance(key, str):
            raise BadEnvelope(NOT_JSON)
        scanner.pos = key_end
        scanner.expect(":")
        if key == "events" and scanner.skip_space() == "[":
            events = scanner.elements()
        else:
            end = scanner.value_end()
            _read(text[scanner.pos : end])
            scanner.pos = end
            if key == "events":
                events = None  # the last `events` wins, as in every JSON parser
        following = scanner.skip_space()
        scanner.pos += 1
        if following == "}":
            break
        if following != ",":
            raise BadEnvelope(NOT_JSON)
    if scanner.skip_space():
        raise BadEnvelope(NOT_JSON)
    if events is None:
        raise BadEnvelope(NOT_AN_ENVELOPE)
    return events


def _read(text: str) -> Any:
    try:
        return load_lenient(text)
    except JsonProblem:
        raise BadEnvelope(NOT_JSON) from None
