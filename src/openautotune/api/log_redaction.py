"""Keep API keys out of the server's logs: every log record is redacted as it is made.

Keys reach log lines through request paths (`/v2/download_config_specs/secret-….json` in uvicorn's
access log) and through exception messages and tracebacks. A key is shown as its prefix and at most its
last 4 characters (`secret-…Xy9z`): enough to tell keys apart, far too little to use one.

Redaction is installed as the process's log-record factory rather than as a filter: a filter on a logger
misses the records its children propagate, a filter on a handler misses handlers added later (tests'
caplog, an operator's own); the factory sees every record of every logger. Only `openautotune serve`
installs it; the 401 body still echoes the key its caller sent, as Statsig's does.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from openautotune.domain.ids import CLIENT_KEY_PREFIX, CONSOLE_KEY_PREFIX, SERVER_KEY_PREFIX

SHOWN_CHARS = 4
# Below this length even 4 characters would be a large share of the token: show none of it.
MIN_CHARS_TO_SHOW_TAIL = 16
_PREFIXES = "|".join(re.escape(prefix) for prefix in (CONSOLE_KEY_PREFIX, SERVER_KEY_PREFIX, CLIENT_KEY_PREFIX))
# The token runs until a character no key holds: `.json` after a key in a path stays readable.
_KEY = re.compile(rf"(?<![A-Za-z0-9])({_PREFIXES})([A-Za-z0-9_%~+\-]+)")
_PLAIN = (str, int, float, type(None))

RecordFactory = Callable[..., logging.LogRecord]


def _shorten(match: re.Match[str]) -> str:
    prefix, token = match.group(1), match.group(2)
    tail = token[-SHOWN_CHARS:] if len(token) >= MIN_CHARS_TO_SHOW_TAIL else ""
    return f"{prefix}…{tail}"


def redact(text: str) -> str:
    """`text` with every console-, secret- and client- key cut to its prefix and at most its last 4 characters."""
    return _KEY.sub(_shorten, text)


def _redact_value(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


def redact_record(record: logging.LogRecord) -> None:
    """Redact a record in place: its message, its arguments, its exception and stack text."""
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    args = record.args
    if isinstance(args, tuple) and all(isinstance(arg, _PLAIN) for arg in args):
        # Keep the tuple's shape: uvicorn's access formatter reads its five arguments by position.
        record.args = tuple(_redact_value(arg) for arg in args)
    elif isinstance(args, Mapping) and all(isinstance(arg, _PLAIN) for arg in args.values()):
        record.args = {name: _redact_value(arg) for name, arg in args.items()}
    elif args:
        # Any other argument (an exception, a URL object...) could print a key: render the message now.
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a message that does not format: keep both parts, redacted
            message = f"{record.msg} {args!r}"
        record.msg, record.args = redact(message), ()
    if record.exc_info and not record.exc_text:
        # Formatters reuse `exc_text` when it is set, so the traceback is printed redacted.
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def _redacting(factory: RecordFactory) -> RecordFactory:
    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        redact_record(record)
        return record

    make_record.redacts_keys = True  # type: ignore[attr-defined]
    return make_record


def install() -> RecordFactory:
    """Redact every log record made from now on in this process; returns the factory it wrapped."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "redacts_keys", False):
        logging.setLogRecordFactory(_redacting(current))
    return current
