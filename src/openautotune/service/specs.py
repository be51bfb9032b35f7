"""What SDK config specs are rendered from: every autotune with its latest allocation, as of one change.

Every change to what SDKs see bumps the change marker in its own transaction, so reading the
marker before and after the state and finding it unmoved proves the state is that of one change,
also under PostgreSQL's READ COMMITTED (where each statement may see a newer snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openautotune.domain.autotune import Allocation, Autotune
from openautotune.store import autotunes as autotune_store
from openautotune.store import contextual as contextual_store
from openautotune.store import spec_changes
from openautotune.store.database import Database


@dataclass(frozen=True)
class SpecState:
    changed_ms: int
    pairs: tuple[tuple[Autotune, Allocation | None], ...]
    # Contextual autotunes: the latest policy of the current run, {"version", "sampleRate", "config"}.
    cmab_policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Rows that cannot be read as an autotune at all: id -> why (served as left out, like unrenderable ones).
    unreadable: dict[str, str] = field(default_factory=dict)


def last_change(db: Database) -> int:
    """When anything SDKs see last changed (epoch ms); cheap enough to ask every second."""
    with db.read() as conn:
        return spec_changes.last_change(conn)


ATTEMPTS = 5


def load(db: Database) -> SpecState:
    for _attempt in range(ATTEMPTS):
        with db.read() as conn:
            changed_ms = spec_changes.last_change(conn)
            autotunes, unreadable = autotune_store.readable_autotunes(conn)
            allocations = autotune_store.latest_allocations(conn)
            contextual_ids = [a.id for a in autotunes if a.definition.is_contextual]
            policies = contextual_store.latest_policies(conn, contextual_ids) if contextual_ids else {}
            if spec_changes.last_change(conn) == changed_ms:
                break
    # After ATTEMPTS busy rounds the last state is served; its marker moved, so the next check renders again.
    runs = {a.id: (a.created_ms, a.run) for a in autotunes}
    cmab = {
        autotune_id: {"version": p.version, "sampleRate": p.sample_rate, "config": p.config}
        for autotune_id, p in policies.items()
        if (p.incarnation_ms, p.run) == runs.get(autotune_id)
    }
    return SpecState(changed_ms, tuple((a, allocations.get(a.id)) for a in autotunes), cmab, unreadable)
