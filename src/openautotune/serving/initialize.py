"""The `/v1/initialize` answer for client SDKs (sdk-client-protocol.md, sections 3 and 6, and Rulings).

A client SDK (`@statsig/js-client`) cannot evaluate rules: the server evaluates every autotune for
the user and sends only the results, keyed by the hashed autotune name the request asked for. An
entry carries the value, the rule id and the version the SDK echoes in its exposure, and nothing
that would let a page learn the rules (no salts, no thresholds, no other variants).
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from openautotune.serving.entries import Json

HASHES = ("djb2", "sha256", "none")
DEFAULT_HASH = "djb2"
STABLE_ID_TYPE = "stableid"
PRIVATE_USER_FIELDS = ("privateAttributes",)


def djb2(text: str) -> str:
    """`_DJB2` of `@statsig/client-core` (Hashing.js): over UTF-16 code units, unsigned 32-bit decimal."""
    value = 0
    data = text.encode("utf-16-le", "surrogatepass")
    for index in range(0, len(data), 2):
        value = (value * 31 + int.from_bytes(data[index : index + 2], "little")) & 0xFFFFFFFF
    return str(value)


def sha256_name(text: str) -> str:
    """Statsig's `sha256` name hash: base64 of the SHA-256 digest of the UTF-8 name."""
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


@functools.lru_cache(maxsize=65536)
def hashed_name(name: str, algorithm: str) -> str:
    """Cached: every initialize hashes every autotune name, and djb2 in Python is the costly part."""
    if algorithm == "none":
        return name
    if algorithm == "sha256":
        return sha256_name(name)
    return djb2(name)


def client_entry(
    key: str,
    *,
    value: Json,
    rule_id: str,
    group_name: str | None,
    id_type: str,
    version: int | None,
    in_experiment: bool,
) -> Json:
    """One `dynamic_configs` entry: an evaluated value and what the SDK logs with its exposure."""
    entry: Json = {
        "name": key,
        "value": value,
        "rule_id": rule_id,
        "group": rule_id,
        "id_type": id_type,
        "is_device_based": id_type.lower() == STABLE_ID_TYPE,
        "is_experiment_active": in_experiment,
        "is_user_in_experiment": in_experiment,
        "passed": in_experiment,
        "secondary_exposures": [],
    }
    if group_name is not None:
        entry["group_name"] = group_name
    if version is not None:
        entry["version"] = version
    return entry


def public_user(user: Mapping[str, Any]) -> Json:
    """The user echoed back: what the page sent, minus the attributes it asked to keep private."""
    return {key: value for key, value in user.items() if key not in PRIVATE_USER_FIELDS}


def initialize_answer(user: Mapping[str, Any], algorithm: str, time_ms: int, entries: Iterable[Json]) -> Json:
    return {
        "has_updates": True,
        "time": time_ms,
        "hash_used": algorithm,
        "user": public_user(user),
        "feature_gates": {},
        "dynamic_configs": {entry["name"]: entry for entry in entries},
        "layer_configs": {},
    }
