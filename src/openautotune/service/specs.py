"""What SDK config specs are rendered from: every autotune with its latest allocation, as of one change.

Reading the change time and the autotunes in one transaction makes the pair consistent: the
specs published with `time = changed_ms` contain exactly the state of that change (or newer).
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


def load(db: Database) -> SpecState:
    with db.read() as conn:
        changed_ms = spec_changes.last_change(conn)
        autotunes = autotune_store.all_autotunes(conn)
        allocations = autotune_store.latest_allocations(conn)
    return SpecState(changed_ms, tuple((a, allocations.get(a.id)) for a in autotunes))
