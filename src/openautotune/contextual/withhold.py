"""Guardrail exclusions in a contextual policy (contextual.md "Guardrails"; docs/contextual.md).

A variant a guardrail excludes (engine/health.py) is **withheld** from the personalized policy for the rest
of the run: the published `cmab_configs` entry scores and lists only the other variants, so the SDK can
neither exploit nor explore it, and the server's own policy (Thompson sampling, propensities, ranked list)
masks it the same way. Its long-term floor is 0: the SDK's explore slice can only draw among the groups
it is given, and a floor would need a group that is explored but never exploited, which the SDK cannot
express.

This is the one place the exclusion reaches a policy:

- `previously_withheld`: the exclusions of the run's latest update, which `training` fits the next
  policy under (so its marginal shares and off-policy value are those of the policy actually served);
- `training.withhold`: in the update's transaction, once this update's health is known, the policy about to be
  published (or the latest stored one, when no new one is fitted) is restricted to the new exclusions,
  so an exclusion found at this update takes effect at this update.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.engine import Connection

from openautotune.domain.autotune import Autotune
from openautotune.stats.srm import shares_from_thresholds
from openautotune.store import health as health_store
from openautotune.store import updates


def allowed_mask(variant_ids: Sequence[str], withheld: Sequence[str]) -> npt.NDArray[np.bool_] | None:
    """False for each withheld variant; None when none is (every variant allowed)."""
    if not any(v in withheld for v in variant_ids):
        return None
    return np.array([v not in withheld for v in variant_ids], dtype=np.bool_)


def previously_withheld(conn: Connection, autotune: Autotune) -> tuple[str, ...]:
    """The variants excluded at the run's latest update (`health.excluded`), in definition order."""
    record = updates.latest_record(conn, autotune.id, autotune.created_ms, autotune.run)
    health = record.record.get("health") if record is not None else None
    excluded = (health or {}).get("excluded") if isinstance(health, dict) else None
    ids = set(excluded) if isinstance(excluded, list) else set()
    return tuple(variant.id for variant in autotune.definition.variants if variant.id in ids)


def restricted(
    config: dict[str, Any], model: dict[str, Any], withheld: Sequence[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A published policy's SDK config without the withheld variants, and its model marking them."""
    kept = {variant_id: weights for variant_id, weights in config.items() if variant_id not in withheld}
    variant_ids = list(model.get("variantIds") or ())
    return kept, {**model, "withheld": [v for v in variant_ids if v in withheld]}


def untrained_groups(conn: Connection, autotune: Autotune, versions: Sequence[int]) -> dict[int, int]:
    """For versions of the run without a policy, how many variants their untrained split listed (those with
    a positive share in the version's allocation, serving/cmab.py), where that is fewer than all."""
    k = len(autotune.definition.variants)
    out: dict[int, int] = {}
    for version, split in health_store.allocations_by_version(conn, autotune.id, versions).items():
        if split.run != autotune.run or len(split.thresholds) != k:
            continue
        listed = sum(1 for share in shares_from_thresholds(split.thresholds) if share > 0)
        if 0 < listed < k:
            out[version] = listed
    return out
