"""Server-side decisions for contextual autotunes (contextual.md, "Policy" and "Results").

`/v1/get_config` serves a trained contextual autotune by Thompson sampling from a bank of posterior
draws of the version it publishes (the bank is drawn once per version, seeded by the autotune, run and
version, so every server process holds the same bank), plus the same explore slice as the SDKs, and
records the exact propensity of the variant it chose. `/v1/get_cmab_ranked_groups` ranks every variant
by its published score (posterior-mean linear score plus the exploration bonus), best first.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from openautotune.contextual.policy import ThompsonBank
from openautotune.contextual.training import ServerModel, model_from_json
from openautotune.domain.autotune import Autotune, Status
from openautotune.store import autotunes as autotune_store
from openautotune.store import contextual as contextual_store
from openautotune.store.database import Database

EXPLORE_SUFFIX = ":explore"
log = logging.getLogger("openautotune.engine")


@dataclass(frozen=True)
class Group:
    id: str
    name: str
    value: dict[str, Any]


@dataclass(frozen=True)
class Decision:
    group: Group
    rule_id: str
    propensity: float
    version: int
    explored: bool


@dataclass(frozen=True)
class Decider:
    """One trained contextual autotune, ready to decide (the version published last)."""

    autotune_id: str
    version: int
    groups: tuple[Group, ...]
    server: ServerModel
    bank: ThompsonBank

    def decide(self, user: Mapping[str, Any], rng: np.random.Generator) -> Decision:
        x = self.server.encoding.transform_one(user)
        choice = self.bank.choose(x, rng)
        group = self.groups[choice.variant]
        rule_id = group.id + EXPLORE_SUFFIX if choice.explored else group.id
        return Decision(group, rule_id, choice.propensity, self.version, choice.explored)

    def ranked(self, user: Mapping[str, Any]) -> list[tuple[Group, float]]:
        """Every variant with its published score, best first (the SDK's exploit order)."""
        x = self.server.encoding.transform_one(user)
        return [(self.groups[k], score) for k, score in self.server.policy.ranking(x)]


def bank_seed(autotune_id: str, run: int, version: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{autotune_id}:{run}:{version}".encode()).digest()[:8], "big")


def load_deciders(db: Database) -> dict[str, Decider]:
    """A decider for every running contextual autotune that has a trained policy in its current run."""
    with db.read() as conn:
        # A row that cannot be read as an autotune is left out here as in the specs (reported by /health).
        readable, _ = autotune_store.readable_autotunes(conn)
        autotunes = [a for a in readable if a.definition.is_contextual and a.status is Status.RUNNING]
        policies = (
            contextual_store.latest_policies(conn, [a.id for a in autotunes], with_model=True) if autotunes else {}
        )
    deciders: dict[str, Decider] = {}
    for autotune in autotunes:
        policy = policies.get(autotune.id)
        if policy is None or (policy.incarnation_ms, policy.run) != (autotune.created_ms, autotune.run):
            continue
        try:
            decider = _decider(autotune, policy)
        # Deliberately broad: one unreadable policy must not stop get_config for every other autotune.
        except Exception:
            log.exception("contextual autotune %r: its policy cannot be loaded; served by the equal split", autotune.id)
            continue
        if decider is not None:
            deciders[autotune.id] = decider
    return deciders


def _decider(autotune: Autotune, policy: contextual_store.Policy) -> Decider | None:
    server = model_from_json(policy.model)
    by_id = {variant.id: variant for variant in autotune.definition.variants}
    if tuple(server.variant_ids) != tuple(by_id):
        return None  # the variants changed since this policy (a reset starts a new run): not trained yet
    groups = tuple(Group(v.id, v.name, v.json) for v in autotune.definition.variants)
    bank = server.bank(bank_seed(autotune.id, autotune.run, policy.version))
    return Decider(autotune.id, policy.version, groups, server, bank)
