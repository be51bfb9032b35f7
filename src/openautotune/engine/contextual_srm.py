"""The sample-ratio check of a contextual autotune: on its explore traffic only (docs/engine.md, "Health").

A personalized policy gives every unit its own probabilities, and only the served variant's propensity is
stored, so the check of plain autotunes (expected units = units x published weights) does not apply to all
traffic. The explore path does have known weights that do not depend on the user:

- a trained version (a policy published under it): the SDK, and the server's Thompson path alike, draw an
  explore unit's variant with ``q_k`` = ``1/(records_k + 1)`` normalised over the variants the policy
  allows (withheld ones: 0), whatever its features (contextual/policy.py);
- an untrained version (the exploration window, or before the first policy): every unit is an explore
  unit, split by the SDK's hash ``floor(h / (10000 / G))`` over the G groups the entry lists (the
  variants with a positive share in that version's allocation, serving/cmab.py): exactly those buckets.

Whether a unit took the explore path is decided before its variant (the hash against the explore share;
the rule id says which path), so given the path, an explore unit's variant is a draw from the known
weights of the version it names, and the explore units of each version are a multinomial sample: the
plain check applies with the versions as periods (same statistic, same look-corrected p-value). Exploit
units are counted (`untestedUnits`) but not tested: their per-unit probabilities of every variant are not
stored. The counts are carried from update to update in the record (`periods[].observed`), since the
contextual step reads only the units matured since the previous update.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from openautotune.contextual.policy import explore_weights
from openautotune.contextual.training import ExploreTraffic
from openautotune.contextual.withhold import allowed_mask
from openautotune.domain.autotune import Autotune
from openautotune.stats.srm import shares_from_thresholds
from openautotune.store import contextual as contextual_store
from openautotune.store import health as health_store

CMAB_BUCKETS = 10_000
"""The SDK's untrained split: ``h = sha256(salt.unitID) % 10000`` (serving/bucketing.py)."""

SCOPE = (
    "contextual autotune: checked on the explore path only, where the published weights do not depend on "
    "the user; exploit units are counted in untestedUnits, not tested (only the served variant's propensity "
    "is stored, not every variant's)"
)


@dataclass(frozen=True)
class ExploreCounts:
    """Explore units per version (definition order), their shares, and the rest."""

    rows: dict[int, list[int]]
    shares: dict[int, tuple[float, ...]]
    unattributed: int
    untested: int


def equal_split_shares(positive: Sequence[bool]) -> tuple[float, ...]:
    """The SDK's untrained split over the variants listed (``positive``): each group's exact share of the
    10,000 buckets (``floor(h / (10000 / G))``, in double precision as the SDK computes it)."""
    listed = [k for k, ok in enumerate(positive) if ok]
    buckets = [0] * len(listed)
    for h in range(CMAB_BUCKETS):
        buckets[math.floor(h / (CMAB_BUCKETS / len(listed)))] += 1
    shares = [0.0] * len(positive)
    for group, k in enumerate(listed):
        shares[k] = buckets[group] / CMAB_BUCKETS
    return tuple(shares)


def _carried(previous: dict[str, Any], variants: int) -> ExploreCounts:
    """The counts the previous update recorded (none when it was not an explore-path check)."""
    srm = previous.get("srm") or {}
    rows: dict[int, list[int]] = {}
    shares: dict[int, tuple[float, ...]] = {}
    if srm.get("traffic") != "explore":
        return ExploreCounts(rows, shares, 0, 0)
    for period in srm.get("periods") or ():
        observed, split = period.get("observed"), period.get("shares")
        if isinstance(observed, list) and isinstance(split, list) and len(observed) == len(split) == variants:
            rows[int(period["period"])] = [int(x) for x in observed]
            shares[int(period["period"])] = tuple(float(x) for x in split)
    return ExploreCounts(rows, shares, int(srm.get("unattributedUnits") or 0), int(srm.get("untestedUnits") or 0))


def _shares_of(conn: Connection, autotune: Autotune, versions: Sequence[int]) -> dict[int, tuple[float, ...]]:
    """The explore weights each version published (versions of another run, or unknown, are left out)."""
    variant_ids = [variant.id for variant in autotune.definition.variants]
    policies = contextual_store.policies_of_versions(conn, autotune.id, autotune.created_ms, autotune.run, versions)
    shares: dict[int, tuple[float, ...]] = {}
    for version, policy in policies.items():
        if list(policy.model.get("variantIds") or ()) == variant_ids:
            records = policy.model["records"]
            q = explore_weights(records, allowed_mask(variant_ids, policy.model.get("withheld") or ()))
            shares[version] = tuple(float(x) for x in q)
    untrained = [v for v in versions if v not in policies]
    for version, split in health_store.allocations_by_version(conn, autotune.id, untrained).items():
        if split.run == autotune.run and len(split.thresholds) == len(variant_ids):
            positive = [share > 0 for share in shares_from_thresholds(split.thresholds)]
            if any(positive):
                shares[version] = equal_split_shares(positive)
    return shares


def explore_counts(
    conn: Connection, autotune: Autotune, previous: dict[str, Any], traffic: ExploreTraffic | None
) -> ExploreCounts:
    """The run's explore units so far: the previous record's counts plus this update's newly matured ones."""
    k = len(autotune.definition.variants)
    counts = ExploreCounts({}, {}, 0, 0) if traffic is None or traffic.from_start else _carried(previous, k)
    if traffic is None:
        return counts
    new_versions = [v for v in traffic.explore if v is not None and v not in counts.shares]
    shares = {**counts.shares, **_shares_of(conn, autotune, new_versions)}
    rows = {version: list(row) for version, row in counts.rows.items()}
    unattributed = counts.unattributed
    for version, observed in traffic.explore.items():
        if version is None or version not in shares:
            unattributed += sum(observed)  # no known split to hold it against
            continue
        slot = rows.setdefault(version, [0] * k)
        for i, n in enumerate(observed):
            slot[i] += n
    return ExploreCounts(rows, {v: shares[v] for v in rows}, unattributed, counts.untested + traffic.other_units)
