"""Bucketing: the hash agrees with the legacy SDK's own function; unit ids are chosen like the SDKs do."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from statsig.utils import sha256_hash

from openautotune.serving.bucketing import bucket, cmab_bucket, hash64, raw_unit_id, unit_id


@given(st.text())
def test_hash_is_the_sdks(text: str) -> None:
    try:
        expected = sha256_hash(text)
    except UnicodeEncodeError:  # lone surrogates: neither side can encode them
        return
    assert hash64(text) == expected


@given(st.text(max_size=40), st.text(max_size=40))
def test_buckets(salt: str, unit: str) -> None:
    try:
        value = sha256_hash(f"{salt}.{unit}")
    except UnicodeEncodeError:
        return
    assert bucket(salt, unit) == value % 1000
    assert cmab_bucket(salt, unit) == value % 10000


def test_known_values() -> None:
    # Pinned so that a change of hash (e.g. a different slice or byte order) cannot pass unnoticed.
    assert hash64("") == 0xE3B0C44298FC1C14
    assert bucket("salt", "user") == hash64("salt.user") % 1000


def test_user_id_type_is_case_insensitive() -> None:
    user = {"userID": "u1", "customIDs": {"companyID": "c1", "stableid": "s1"}}
    assert unit_id(user, "userID") == unit_id(user, "USERID") == unit_id(user, "userid") == "u1"
    assert unit_id(user, "companyID") == "c1"
    assert unit_id(user, "StableID") == "s1"  # falls back to the lower-cased name
    assert unit_id(user, "companyid") == ""  # but not the other way round
    assert unit_id({}, "userID") == "" and raw_unit_id({}, "userID") is None
    assert raw_unit_id({"customIDs": "nonsense"}, "companyID") is None
    assert unit_id({"userID": 12}, "userID") == "12"
