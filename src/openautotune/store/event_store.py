"""What the engine, ingestion and the exposure log need from an event store (units, events and raw
exposures), and its one error.

Kept apart from `events.py` (the implementations and `open_events`) so `database.py` can name the type
of `Database.events` without importing any implementation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from openautotune.domain.autotune import Definition
from openautotune.domain.errors import Unavailable
from openautotune.store.attribution import BEGINNING_MS, Aggregate
from openautotune.store.contextual import UnitRow
from openautotune.store.delay import ImmatureCell
from openautotune.store.exposure_log import LoggedExposure

Row = Mapping[str, Any]


class EventStoreUnavailable(Unavailable):
    """The event store could not run a statement (down, unreachable, or refused it); says why."""


class EventStore(Protocol):
    @property
    def label(self) -> str: ...

    def migrate(self, now_ms: int) -> int: ...

    def write_rows(self, units: Sequence[Row], events: Sequence[Row], exposures: Sequence[Row] = ()) -> int: ...

    def matured_aggregates(
        self, *, autotune_id: str, run: int, definition: Definition, matured_after_ms: int, as_of_ms: int
    ) -> list[Aggregate]: ...

    def matured_units(
        self, *, autotune_id: str, run: int, definition: Definition, as_of_ms: int, matured_after_ms: int = BEGINNING_MS
    ) -> list[UnitRow]: ...

    # The reads of an update's holdout and delayed-conversion parts (engine/holdout.py, engine/delayed.py);
    # guardrails read `matured_aggregates` with the guardrail event as the outcome.
    def holdout_aggregates(
        self, *, autotune_id: str, run: int, definition: Definition, matured_after_ms: int, as_of_ms: int
    ) -> list[Aggregate]: ...

    def delay_histogram(
        self, *, autotune_id: str, run: int, definition: Definition, matured_after_ms: int, as_of_ms: int, bins: int
    ) -> list[int]: ...

    def immature_cells(
        self, *, autotune_id: str, run: int, definition: Definition, as_of_ms: int, bins: int
    ) -> list[ImmatureCell]: ...

    # The raw exposures: the dashboard's log stream (newest first) and the results' daily traffic.
    def recent_exposures(self, *, autotune_id: str, limit: int) -> list[LoggedExposure]: ...

    def daily_exposures(self, *, autotune_id: str, run: int) -> dict[tuple[int, str], int]: ...

    def forget_autotune(self, autotune_id: str) -> None:
        """Delete (or submit the deletion of) the units and raw exposures of a deleted autotune (a
        namesake gets the same id and starts at run 1); raises EventStoreUnavailable when it cannot."""
        ...

    def wait_forgotten(self, autotune_id: str) -> bool:
        """Wait, boundedly, until a submitted deletion is done; False when not confirmed."""
        ...

    def close(self) -> None: ...
