"""One SDK event (a JSON value) -> a checked exposure, a checked custom event, "ignored", or a rejection.

Pure: no database, no clock (the caller passes `now_ms`). Every limit here exists because the
store would otherwise fail on the value (column widths, NUL bytes on PostgreSQL, 64-bit times,
what orjson cannot encode) or because one client key must not store megabytes per event; and one
bad event must never fail its whole batch. The limits are far above what Statsig's SDKs send (they
trim names and values to 64-128 characters and metadata and users to 1-4 KB) and are listed in
docs/ingestion.md. Reasons never quote the event, so they can be counted and logged as they are.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from openautotune.clock import DAY_MS
from openautotune.domain.json_limits import JsonLimits, JsonProblem, check_json, check_text
from openautotune.service.ingest.envelope import Unreadable

EXPOSURE_EVENT = "statsig::config_exposure"
INTERNAL_PREFIX = "statsig::"
USER_ID = "userID"
MAX_FUTURE_MS = DAY_MS
MAX_NAME = 256
MAX_VALUE = 4096
MAX_UNIT_ID = 256
MAX_ID_TYPE = 64
# Each custom id stores one events row per event: the cap bounds what one event can write.
MAX_CUSTOM_IDS = 32
MAX_OBJECT_BYTES = 64 * 1024  # metadata, and the user object, as compact JSON
OBJECT_LIMITS = JsonLimits(max_depth=32, max_string=16 * 1024, max_items=10_000, max_key=1024, allow_nul=False)
MAX_TIME_DIGITS = 20
MAX_CONFIG = 200
MAX_RULE_ID = 128
MAX_VERSION = 2**31 - 1
DROPPED_USER_FIELDS = ("privateAttributes",)
_NUMBER = (int, float)  # tuples, not `int | float`: isinstance is measurably faster with them
_SCALAR = (str, int, float)


class Invalid(Exception):
    """An event that cannot be stored; `reason` is reported to the client with its index."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class UserIds:
    user_id: str | None
    custom_ids: tuple[tuple[str, str], ...]

    def pairs(self) -> list[tuple[str, str]]:
        """(id type, unit id) for every id the user carries: `userID` first, then `customIDs` keys."""
        head = [(USER_ID, self.user_id)] if self.user_id else []
        return head + list(self.custom_ids)


@dataclass(frozen=True)
class CheckedExposure:
    config: str
    rule_id: str
    config_version: int | None
    time_ms: int
    user: dict[str, Any]
    ids: UserIds
    propensity: float | None
    dedup_key: str


@dataclass(frozen=True)
class CheckedEvent:
    name: str
    value: str | None
    metadata: dict[str, Any] | None
    time_ms: int
    ids: UserIds


class Ignored:
    """A Statsig-internal event (diagnostics, gate exposures...): counted, not stored."""


IGNORED = Ignored()


def content_key(parts: list[Any]) -> str:
    """A stable hash of an event's identifying content: the same event re-sent gets the same key."""
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()


def clean_text(value: str, what: str, limit: int) -> str:
    """A text stored as a column: no NUL, at most `limit` characters, valid Unicode."""
    if "\x00" in value:
        raise Invalid(f"{what} contains a NUL character")
    if len(value) > limit:
        raise Invalid(f"{what} is longer than {limit} characters")
    if not value.isascii():  # only then can it hold a lone surrogate
        try:
            check_text(value, what, limit)
        except JsonProblem:
            raise Invalid(f"{what} is not valid Unicode (a lone surrogate)") from None
    return value


def check_object(value: dict[str, Any], what: str) -> dict[str, Any]:
    """A JSON object stored as is (metadata, user): `OBJECT_LIMITS`, at most `MAX_OBJECT_BYTES`."""
    try:
        check_json(value, OBJECT_LIMITS)
    except JsonProblem as problem:
        raise Invalid(f"{what}: {problem.message}") from None
    if len(orjson.dumps(value)) > MAX_OBJECT_BYTES:
        raise Invalid(f"{what} is larger than {MAX_OBJECT_BYTES} bytes as JSON")
    return value


def _id(value: Any, what: str) -> str | None:
    """An id as the SDKs stringify it; None or "" means absent."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool) or not isinstance(value, _NUMBER):
        raise Invalid(f"{what} must be a string or a number")
    else:
        text = _number_text(value, what)
    return clean_text(text, what, MAX_UNIT_ID) or None


def _number_text(value: int | float, what: str) -> str:
    try:
        check_json(value)
    except JsonProblem as problem:
        raise Invalid(f"{what}: {problem.message}") from None
    return str(value)


def user_ids(user: Mapping[str, Any]) -> UserIds:
    user_id = _id(user.get(USER_ID), "user.userID")
    raw_custom = user.get("customIDs")
    custom: list[tuple[str, str]] = []
    if raw_custom is not None:
        if type(raw_custom) is not dict and not isinstance(raw_custom, Mapping):  # the ABC check is slow
            raise Invalid("user.customIDs must be an object")
        if len(raw_custom) > MAX_CUSTOM_IDS:
            raise Invalid(f"user.customIDs has more than {MAX_CUSTOM_IDS} ids")
        for id_type, raw in raw_custom.items():
            if not isinstance(id_type, str) or not id_type:
                raise Invalid("user.customIDs keys must be non-empty strings")
            clean_text(id_type, "a user.customIDs key", MAX_ID_TYPE)
            value = _id(raw, "a user.customIDs value")
            if value is not None:
                custom.append((id_type, value))
    return UserIds(user_id=user_id, custom_ids=tuple(custom))


def unit_id(user: Mapping[str, Any], ids: UserIds, id_type: str) -> str | None:
    """The unit id for an autotune's id type, like the SDKs: `userID` case-insensitively, else
    `customIDs[id_type]`, falling back to the lower-cased name."""
    if id_type.lower() == USER_ID.lower():
        return ids.user_id
    custom = dict(ids.custom_ids)
    return custom.get(id_type) or custom.get(id_type.lower())


def check_time(raw: Any, now_ms: int) -> int:
    """Client time in epoch ms as sent (past times are fine); missing means "now"."""
    if raw is None:
        return now_ms
    if isinstance(raw, bool):
        raise Invalid("time must be epoch milliseconds")
    if isinstance(raw, str):
        if len(raw) > MAX_TIME_DIGITS:
            raise Invalid("time must be epoch milliseconds")
        try:
            raw = int(raw.strip())
        except ValueError:
            raise Invalid("time must be epoch milliseconds") from None
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise Invalid("time must be epoch milliseconds")
        raw = int(raw)
    if not isinstance(raw, int):
        raise Invalid("time must be epoch milliseconds")
    if raw < 0:
        raise Invalid("time must not be negative")
    if raw > now_ms + MAX_FUTURE_MS:
        raise Invalid("time is more than 24 hours ahead of the server clock")
    return raw


def config_version(raw: Any) -> int | None:
    """`configVersion` as a number; the legacy SDK sends it as a string. Anything else: unknown."""
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, str):
        text = raw.strip()
        if not text.isdigit() or len(text) > 10:
            return None
        raw = int(text)
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, int) and 0 <= raw <= MAX_VERSION:
        return raw
    return None


def stored_user(user: Mapping[str, Any]) -> dict[str, Any]:
    """The user object kept as the unit's features source (private attributes are never kept)."""
    return {key: value for key, value in user.items() if key not in DROPPED_USER_FIELDS}


def exposure_key(config: str, rule_id: str, version: int | None, time_ms: int, ids: UserIds) -> str:
    return content_key(["exposure", config, rule_id, version, time_ms, ids.user_id, sorted(ids.custom_ids)])


def _user(event: Mapping[str, Any]) -> tuple[dict[str, Any], UserIds]:
    """The user as stored (checked like metadata) and its ids."""
    user = event.get("user")
    if not isinstance(user, dict):
        raise Invalid("user must be an object")
    ids = user_ids(user)
    return check_object(stored_user(user), "user"), ids


def _exposure(event: Mapping[str, Any], now_ms: int) -> CheckedExposure:
    metadata = event.get("metadata")
    if not isinstance(metadata, dict):
        raise Invalid("an exposure needs a metadata object")
    config = metadata.get("config")
    if not isinstance(config, str) or not config:
        raise Invalid("metadata.config must be a non-empty string")
    clean_text(config, "metadata.config", MAX_CONFIG)
    rule_id = metadata.get("ruleID")
    if rule_id is None:
        rule_id = ""
    if not isinstance(rule_id, str):
        raise Invalid("metadata.ruleID must be a string")
    clean_text(rule_id, "metadata.ruleID", MAX_RULE_ID)
    user, ids = _user(event)
    time_ms = check_time(event.get("time"), now_ms)
    version = config_version(metadata.get("configVersion"))
    return CheckedExposure(
        config=config,
        rule_id=rule_id,
        config_version=version,
        time_ms=time_ms,
        user=user,
        ids=ids,
        propensity=None,
        dedup_key=exposure_key(config, rule_id, version, time_ms, ids),
    )


def _value(raw: Any) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, _SCALAR):
        raise Invalid("value must be a string or a number")
    if isinstance(raw, str):
        return clean_text(raw, "value", MAX_VALUE)
    if isinstance(raw, float) and raw.is_integer() and abs(raw) < 2**53:
        # The core SDK sends every number as a float: `log_event(user, "buy", 3)` arrives as 3.0.
        # One text per number, whichever SDK logged it, so "3" matches a successEventValue of "3".
        return str(int(raw))
    return _number_text(raw, "value")


def _custom(event: Mapping[str, Any], name: str, now_ms: int) -> CheckedEvent:
    clean_text(name, "eventName", MAX_NAME)
    value = _value(event.get("value"))
    metadata = event.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise Invalid("metadata must be an object")
        check_object(metadata, "metadata")
    _, ids = _user(event)
    if not ids.user_id and not ids.custom_ids:
        raise Invalid("user carries no id (userID or customIDs)")
    time_ms = check_time(event.get("time"), now_ms)
    return CheckedEvent(name=name, value=value, metadata=metadata or None, time_ms=time_ms, ids=ids)


def check_event(event: Any, now_ms: int) -> CheckedExposure | CheckedEvent | Ignored:
    """Classify one element of a batch's `events`; raises `Invalid` for what cannot be stored."""
    if isinstance(event, Unreadable):
        raise Invalid(f"the event cannot be read: {event.problem}")
    if not isinstance(event, dict):
        raise Invalid("an event must be an object")
    name = event.get("eventName")
    if not isinstance(name, str) or not name:
        raise Invalid("eventName must be a non-empty string")
    if name == EXPOSURE_EVENT:
        return _exposure(event, now_ms)
    if name.startswith(INTERNAL_PREFIX):
        return IGNORED
    return _custom(event, name, now_ms)


def event_key(event: CheckedEvent, id_type: str, unit: str) -> str:
    return content_key(["event", event.name, event.time_ms, event.value, event.metadata, id_type, unit])
