"""The untrained path of a `cmab_configs` entry as the server computes it (`serving.cmab.equal_split`): the core
SDK's equal split `groups[floor(h / (10000 / K))]`, `h = sha256(salt.unitID) % 10000`, in the SDK's double
precision. The e2e test `tests/e2e/test_contextual_untrained_agreement.py` checks it against the SDK itself."""

from __future__ import annotations

from typing import Any

from statsig.utils import sha256_hash

from openautotune.serving.bucketing import CMAB_BUCKETS, cmab_bucket, cmab_equal_split
from openautotune.serving.cmab import equal_split
from tests.e2e.users import generated_users


def test_the_split_is_the_integer_split_except_where_double_precision_rounds_down() -> None:
    differing = {
        (groups, bucket)
        for groups in range(1, 41)
        for bucket in range(CMAB_BUCKETS)
        if cmab_equal_split(bucket, groups) != bucket * groups // CMAB_BUCKETS
    }
    assert differing == {(14, 5000), (28, 2500), (28, 5000)}
    assert cmab_equal_split(5000, 14) == 6 and cmab_equal_split(4999, 14) == 6 and cmab_equal_split(5001, 14) == 7


def test_every_group_gets_its_share_of_buckets_within_one() -> None:
    for groups in range(1, 41):
        sizes = [0] * groups
        for bucket in range(CMAB_BUCKETS):
            sizes[cmab_equal_split(bucket, groups)] += 1  # never out of range
        assert max(abs(size - CMAB_BUCKETS / groups) for size in sizes) < 1  # propensity 1/K to within 1e-4


def entry(groups: int, id_type: str = "userID", **extra: Any) -> dict[str, Any]:
    return {
        "salt": "salt-e",
        "defaultValue": {"k": 0},
        "idType": id_type,
        "enabled": True,
        "version": 4,
        "sampleRate": 1.0,
        "higherIsBetter": True,
        "groups": [{"name": f"n{k}", "id": f"g{k}", "parameterValues": {"k": k}} for k in range(groups)],
        **extra,
    }


def test_assignment_follows_the_hash_of_salt_and_unit_id() -> None:
    for groups in (2, 3, 5, 14):
        published = entry(groups)
        seen = set()
        for user in generated_users(600, seed=5):
            assignment = equal_split(published, user)
            assert assignment is not None
            index = cmab_equal_split(sha256_hash(f"salt-e.{user['userID']}") % 10000, groups)
            assert assignment.group == published["groups"][index]
            assert assignment.rule_id == f"g{index}:explore" and assignment.version == 4
            assert assignment.propensity == 1 / groups
            seen.add(index)
        assert seen == set(range(groups))


def test_the_unit_id_is_chosen_like_the_sdk_does() -> None:
    published = entry(14, "companyID")
    edge = next(f"c{i}" for i in range(1_000_000) if cmab_bucket("salt-e", f"c{i}") == 5000)

    def group(user: dict[str, Any]) -> str:
        assignment = equal_split(published, user)
        assert assignment is not None
        return str(assignment.group["id"])

    assert group({"userID": "a", "customIDs": {"companyID": edge}}) == "g6"  # not g7, as integers would say
    assert group({"userID": "b", "customIDs": {"companyid": edge}}) == "g6"  # the lower-cased name as fallback
    missing = published["groups"][cmab_equal_split(cmab_bucket("salt-e", ""), 14)]["id"]
    assert group({"userID": "c"}) == group({"userID": "d", "customIDs": {"other": "x"}}) == missing
    numeric = entry(3)
    assert equal_split(numeric, {"userID": 12}) == equal_split(numeric, {"userID": "12"})


def test_a_trained_entry_has_no_equal_split() -> None:
    weights = {"alpha": 0.0, "intercept": 0.0, "records": 0, "weightsNumerical": {"__bias": 0.0}}
    trained = entry(2, config={f"g{k}": {**weights, "weightsCategorical": {}} for k in range(2)})
    assert equal_split(trained, {"userID": "u"}) is None
