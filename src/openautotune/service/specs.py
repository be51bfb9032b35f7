"""What SDK config specs are rendered from: every autotune with its latest allocation, as of one change.

Every change to what SDKs see bumps the change marker in its own transaction, so reading the
marker before and after the state and finding it unmoved proves the state is that of one change,
also under PostgreSQL's READ COMMITTED (where each statement may see a newer snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass

from openautotune.domain.autotune import Allocation, Autotune
from openautotune.store import autotunes as autotune_store
from openautotune.store import spec_changes
from openautotune.store.database import Database


@dataclass(frozen=True)
class SpecState:
    changed_ms: int
    pairs: tuple[tuple[Autotune, Allocation | None], ...]


def last_change(db: Database) -> int:
    """When anything SDKs see last changed (epoch ms); cheap enough to ask every second."""
    with db.read() as conn:
        return spec_changes.last_change(conn)


ATTEMPTS = 5


def load(db: Database) -> SpecState:
    for _attempt in range(ATTEMPTS):
        with db.read() as conn:
            changed_ms = spec_changes.last_change(conn)
            autotunes = autotune_store.all_autotunes(conn)
            allocations = autotune_store.latest_allocations(conn)
            if spec_changes.last_change(conn) == changed_ms:
                break
    # After ATTEMPTS busy rounds the last state is served; its marker moved, so the next check renders again.
    return SpecState(changed_ms, tuple((a, allocations.get(a.id)) for a in autotunes))
