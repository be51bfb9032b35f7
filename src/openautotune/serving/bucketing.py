"""The one place of Statsig's hash, buckets and unit-id selection (sdk-protocol.md, Bucketing).

Every server-side evaluation and every test that predicts an SDK's choice goes through here, so
the server and the SDKs can never disagree on which bucket a unit falls in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from hashlib import sha256
from typing import Any

BUCKETS = 1000
CMAB_BUCKETS = 10000
USER_ID_TYPE = "userID"


def hash64(text: str) -> int:
    """The first 8 bytes of SHA-256, big-endian: Statsig's `computeUserHash`."""
    return int.from_bytes(sha256(text.encode()).digest()[:8], "big")


def bucket(salt: str, unit_id: str) -> int:
    """The `user_bucket` value of a unit: `h(f"{salt}.{unitID}") % 1000`."""
    return hash64(f"{salt}.{unit_id}") % BUCKETS


def cmab_bucket(salt: str, unit_id: str) -> int:
    """The contextual-autotune hash of a unit: `h(f"{salt}.{unitID}") % 10000`."""
    return hash64(f"{salt}.{unit_id}") % CMAB_BUCKETS


def cmab_equal_split(bucket: int, groups: int) -> int:
    """The group an untrained contextual autotune gives a unit in CMAB bucket `bucket` (its equal split).

    Computed exactly as the core SDK computes it, in double precision: `floor(bucket / (10000 / groups))`.
    An integer split (`bucket * groups // 10000`) differs where the division rounds just below a boundary
    (14 groups at bucket 5000; 28 groups at 2500 and 5000).
    """
    return math.floor(bucket / (CMAB_BUCKETS / groups))


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return str(value)  # the SDKs' StatsigUser stringifies ids the same way


def is_user_id_type(id_type: str) -> bool:
    return id_type.lower() == USER_ID_TYPE.lower()


def raw_unit_id(user: Mapping[str, Any], id_type: str) -> str | None:
    """The unit id of `user` (Statsig JSON form) for `id_type`, None when it has none.

    `userID` matches case-insensitively; any other id type reads `customIDs[id_type]`, falling
    back to the lower-cased name, exactly like the SDKs.
    """
    if is_user_id_type(id_type):
        return _text(user.get("userID"))
    custom_ids = user.get("customIDs")
    if not isinstance(custom_ids, Mapping):
        return None
    value = custom_ids.get(id_type)
    if value is None:
        value = custom_ids.get(id_type.lower())
    return _text(value)


def unit_id(user: Mapping[str, Any], id_type: str) -> str:
    """The unit id bucketing uses: a missing id is `""`."""
    return raw_unit_id(user, id_type) or ""
