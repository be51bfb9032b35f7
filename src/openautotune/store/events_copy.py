"""`openautotune events copy`: move units, events and raw exposures from one event store to another,
resumably.

Reads each table of the source in key order (units by (autotune, run, unit), events and exposures by
dedup key) a page at a time and hands every page to the target's bulk `write_rows`. After each page the last key
is saved in a checkpoint file, so an interrupted copy resumes after the last page it finished; a page
written twice (a crash between the write and the checkpoint) is skipped by the target's idempotent
writes, so nothing is stored twice. At the end the two stores' counts are compared.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

TABLES = ("units", "events", "exposures")
DEFAULT_PAGE = 20_000


class Copyable(Protocol):
    """An event store that can also list its rows in key order (`SqlEvents`, `ClickHouseEvents`)."""

    def write_rows(self, units: Sequence[Any], events: Sequence[Any], exposures: Sequence[Any] = ()) -> int: ...

    def counts(self) -> tuple[int, int]: ...

    def exposure_count(self) -> int: ...

    def close(self) -> None: ...

    def page(self, table: str, after: Sequence[Any] | None, size: int) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class CopyReport:
    source_counts: tuple[int, int]  # (units, events)
    target_counts: tuple[int, int]
    copied: dict[str, int]
    source_exposures: int = 0
    target_exposures: int = 0

    @property
    def verified(self) -> bool:
        return self.source_counts == self.target_counts and self.source_exposures == self.target_exposures


def _load(checkpoint: Path | None) -> dict[str, Any]:
    if checkpoint is None or not checkpoint.exists():
        return {}
    loaded = json.loads(checkpoint.read_text())
    return loaded if isinstance(loaded, dict) else {}


def _save(checkpoint: Path | None, state: dict[str, Any]) -> None:
    if checkpoint is None:
        return
    temporary = checkpoint.with_suffix(checkpoint.suffix + ".tmp")
    temporary.write_text(json.dumps(state))
    os.replace(temporary, checkpoint)  # atomic: a kill leaves the old or the new checkpoint, never half


def _key(table: str, row: dict[str, Any]) -> list[Any]:
    return [row["autotune_id"], row["run"], row["unit_id"]] if table == "units" else [row["dedup_key"]]


def copy_events(
    source: Copyable,
    target: Copyable,
    *,
    checkpoint: Path | None = None,
    page_size: int = DEFAULT_PAGE,
    on_page: Callable[[str, int], None] | None = None,
) -> CopyReport:
    """Copy every unit, event and raw exposure of `source` into `target`; `on_page(table, rows)` reports
    progress."""
    state = _load(checkpoint)
    copied = dict.fromkeys(TABLES, 0)
    for table in TABLES:
        while True:
            after = state.get(table)
            rows = source.page(table, after, page_size)
            if not rows:
                break
            if table == "units":
                target.write_rows(rows, [])
            elif table == "events":
                target.write_rows([], rows)
            else:
                target.write_rows([], [], exposures=rows)
            state[table] = _key(table, rows[-1])
            _save(checkpoint, state)
            copied[table] += len(rows)
            if on_page is not None:
                on_page(table, len(rows))
    return CopyReport(
        source_counts=source.counts(),
        target_counts=target.counts(),
        copied=copied,
        source_exposures=source.exposure_count(),
        target_exposures=target.exposure_count(),
    )
