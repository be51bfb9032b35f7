"""A batch body -> its `events` list, one element per event, whatever a single event holds.

The fast path is one orjson parse. orjson refuses a whole document for what is wrong in one event
(a lone surrogate, NaN, 1e400, invalid UTF-8, more than 1,024 levels), and refusing the batch
would make the SDK drop every valid event in it; so when it fails, the body is salvaged: the
envelope is walked key by key and each element of `events` is read on its own by Python's lenient
parser (C speed; it reads NaN, huge numbers and lone surrogates as values the per-event checks
then reject). An element it cannot read (too deep, not JSON) is delimited by a scanner that
follows only strings and brackets, with no recursion, and becomes an `Unreadable` the per-event
checks reject. Only a broken envelope refuses the batch, and so does a body whose unreadable
elements hold more than `MAX_SCAN_TOKENS` strings and brackets: scanning is Python-speed, and a
16 MiB body of brackets (16 KB gzipped) must not cost seconds of CPU.

Before any parse, the body's opening brackets are counted (C speed, strings included): that bounds
the containers a parse creates. A real batch has a handful per event (event, user, customIDs,
metadata, secondary exposures), one per 50 bytes or more; 16 MiB of `[{},{},...]` has 5 million,
each a garbage-collected Python object: seconds of CPU and half a gigabyte from 16 KB of gzip.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from openautotune.domain.json_limits import JsonProblem, load_lenient_at

MAX_EVENTS = 10_000
MAX_SCAN_TOKENS = 200_000
MAX_CONTAINERS = 1_000_000
NOT_JSON = "The body is not valid JSON"
NOT_AN_ENVELOPE = 'The body must be a JSON object with an "events" list'
TOO_MANY = f"A batch holds at most {MAX_EVENTS} events"
TOO_COMPLEX = "The body's unreadable events are too large to skip"
TOO_MANY_CONTAINERS = f"The body holds more than {MAX_CONTAINERS} JSON objects and arrays"

_SPACE = re.compile(r"[ \t\n\r]*")  # JSON's whitespace; always matches
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_SCALAR = re.compile(r"[^ \t\n\r,\]}]+")
_STRUCTURE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


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
    if raw.count(b"[") + raw.count(b"{") > MAX_CONTAINERS:
        raise BadEnvelope(TOO_MANY_CONTAINERS, 413)
    try:
        envelope = orjson.loads(raw)
    except orjson.JSONDecodeError:
        events = _Salvage(raw.decode("utf-8", errors="surrogateescape")).events()
    else:
        if not isinstance(envelope, dict) or not isinstance(envelope.get("events"), list):
            raise BadEnvelope(NOT_AN_ENVELOPE)
        events = envelope["events"]
    if len(events) > MAX_EVENTS:
        raise BadEnvelope(TOO_MANY, 413)
    return events


class _Salvage:
    """Walks the envelope object: values other than `events` must be JSON; the elements of
    `events` are read one by one, an unreadable one delimited by scanning."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.scan_budget = MAX_SCAN_TOKENS

    def peek(self) -> str:
        self.pos = _SPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]
        return self.text[self.pos : self.pos + 1]

    def take(self, *allowed: str) -> str:
        char = self.peek()
        if char not in allowed:
            raise BadEnvelope(NOT_JSON)
        self.pos += 1
        return char

    def value(self) -> Any:
        """The JSON value at `pos` (lenient), or `BadEnvelope`."""
        try:
            value, self.pos = load_lenient_at(self.text, self.pos)
        except JsonProblem:
            raise BadEnvelope(NOT_JSON) from None
        return value

    def events(self) -> list[Any]:
        if self.peek() != "{":
            self.value()  # JSON but not an envelope still says so; not JSON raises here
            raise BadEnvelope(NOT_AN_ENVELOPE)
        self.pos += 1
        events: list[Any] | None = None
        if self.peek() == "}":
            raise BadEnvelope(NOT_AN_ENVELOPE)
        while True:
            if self.peek() != '"':
                raise BadEnvelope(NOT_JSON)
            key = self.value()
            self.take(":")
            if key == "events" and self.peek() == "[":
                events = self.elements()
            else:
                self.value()
                if key == "events":
                    events = None  # the last `events` wins, as in every JSON parser
            if self.take(",", "}") == "}":
                break
        if self.peek():
            raise BadEnvelope(NOT_JSON)
        if events is None:
            raise BadEnvelope(NOT_AN_ENVELOPE)
        return events

    def elements(self) -> list[Any]:
        self.take("[")
        items: list[Any] = []
        if self.peek() == "]":
            self.pos += 1
            return items
        while True:
            if len(items) >= MAX_EVENTS:
                raise BadEnvelope(TOO_MANY, 413)
            items.append(self.element())
            if self.take(",", "]") == "]":
                return items

    def element(self) -> Any:
        try:
            value, self.pos = load_lenient_at(self.text, self.pos)
        except JsonProblem as problem:
            self.pos = self.skip()
            return Unreadable(problem.message)
        return value

    def skip(self) -> int:
        """Where the unreadable value at `pos` ends, found from its strings and brackets alone."""
        first = self.peek()
        if first not in ("{", "["):
            # A string with a raw control character, or a bare word: it ends where its token does.
            match = (_STRING if first == '"' else _SCALAR).match(self.text, self.pos)
            if match is None:
                raise BadEnvelope(NOT_JSON)
            return match.end()
        depth = 0
        for token in _STRUCTURE.finditer(self.text, self.pos):
            self.scan_budget -= 1
            if self.scan_budget < 0:
                raise BadEnvelope(TOO_COMPLEX, 413)
            symbol = token.group()
            if symbol in ("{", "["):
                depth += 1
            elif symbol in ("}", "]"):
                depth -= 1
                if depth == 0:
                    return token.end()
        raise BadEnvelope(NOT_JSON)
