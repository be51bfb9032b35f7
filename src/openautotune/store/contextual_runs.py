"""What a contextual run has learned so far, so that an update reads only newly matured units
(docs/contextual.md, "Incremental updates").

- `contextual_run_state`: one row per (autotune, incarnation, run): the `as_of` it has absorbed units up
  to, a JSON part (vocabulary, raw columns, counters) and a binary part (numpy `.npz`: the sufficient
  statistics, the reservoir sample of logged decisions, the occurrence models' current posteriors).
- `contextual_batches`: the units that matured in one update, encoded once (numbers and category ids,
  variant, outcome, propensity) as one `.npz` blob. Read back only for a full refit on the newest window,
  or when a feature changes type; never to re-read user dicts.
The contents are opaque here: `contextual.incremental` writes and reads them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from openautotune.store.metadata import EpochMs, metadata

state_table = sa.Table(
    "contextual_run_state",
    metadata,
    sa.Column("autotune_id", sa.String(200), primary_key=True),
    sa.Column("incarnation_ms", EpochMs, primary_key=True),
    sa.Column("run", sa.Integer, primary_key=True),
    sa.Column("as_of_ms", EpochMs, nullable=False),
    sa.Column("meta", sa.JSON, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
)

batches_table = sa.Table(
    "contextual_batches",
    metadata,
    sa.Column("autotune_id", sa.String(200), primary_key=True),
    sa.Column("incarnation_ms", EpochMs, primary_key=True),
    sa.Column("run", sa.Integer, primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("as_of_ms", EpochMs, nullable=False),
    sa.Column("units", sa.Integer, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
)


@dataclass(frozen=True)
class RunKey:
    autotune_id: str
    incarnation_ms: int
    run: int


@dataclass(frozen=True)
class StoredState:
    as_of_ms: int
    meta: dict[str, Any]
    payload: bytes


def _where(table: sa.Table, key: RunKey) -> Any:
    return sa.and_(
        table.c.autotune_id == key.autotune_id, table.c.incarnation_ms == key.incarnation_ms, table.c.run == key.run
    )


def get_state(conn: Connection, key: RunKey) -> StoredState | None:
    t = state_table
    row = conn.execute(sa.select(t.c.as_of_ms, t.c.meta, t.c.payload).where(_where(t, key))).first()
    if row is None:
        return None
    meta = orjson.loads(row.meta) if isinstance(row.meta, str | bytes) else row.meta
    return StoredState(int(row.as_of_ms), meta, bytes(row.payload))


def state_as_of(conn: Connection, key: RunKey) -> int | None:
    """The as_of the run's state was last advanced to (without reading the state itself)."""
    t = state_table
    found = conn.execute(sa.select(t.c.as_of_ms).where(_where(t, key))).scalar()
    return None if found is None else int(found)


def delete_run(conn: Connection, key: RunKey) -> None:
    """Forget one run's state and batches (its learning starts again from every matured unit)."""
    conn.execute(state_table.delete().where(_where(state_table, key)))
    conn.execute(batches_table.delete().where(_where(batches_table, key)))


def put_state(conn: Connection, key: RunKey, state: StoredState) -> None:
    conn.execute(state_table.delete().where(_where(state_table, key)))
    conn.execute(
        state_table.insert().values(
            autotune_id=key.autotune_id,
            incarnation_ms=key.incarnation_ms,
            run=key.run,
            as_of_ms=state.as_of_ms,
            meta=state.meta,
            payload=state.payload,
        )
    )


def next_seq(conn: Connection, key: RunKey) -> int:
    t = batches_table
    found = conn.execute(sa.select(sa.func.max(t.c.seq)).where(_where(t, key))).scalar()
    return 0 if found is None else int(found) + 1


def insert_batch(conn: Connection, key: RunKey, seq: int, as_of_ms: int, units: int, payload: bytes) -> None:
    conn.execute(
        batches_table.insert().values(
            autotune_id=key.autotune_id,
            incarnation_ms=key.incarnation_ms,
            run=key.run,
            seq=seq,
            as_of_ms=as_of_ms,
            units=units,
            payload=payload,
        )
    )


def batches_oldest_first(conn: Connection, key: RunKey) -> Iterator[bytes]:
    """Every stored batch of the run, oldest first (a rebuild after a feature changed type)."""
    t = batches_table
    seqs = [int(s) for (s,) in conn.execute(sa.select(t.c.seq).where(_where(t, key)).order_by(t.c.seq))]
    for seq in seqs:  # one at a time: memory stays one batch, not the run
        yield bytes(conn.execute(sa.select(t.c.payload).where(_where(t, key), t.c.seq == seq)).scalar_one())


def batches_newest_first(conn: Connection, key: RunKey, units: int) -> list[bytes]:
    """The newest stored batches holding at least `units` units (fewer when the run has fewer)."""
    t = batches_table
    out: list[bytes] = []
    have = 0
    sizes = conn.execute(sa.select(t.c.seq, t.c.units).where(_where(t, key)).order_by(t.c.seq.desc()))
    wanted = []
    for seq, size in sizes:
        if have >= units:
            break
        wanted.append(int(seq))
        have += int(size)
    for seq in wanted:
        out.append(bytes(conn.execute(sa.select(t.c.payload).where(_where(t, key), t.c.seq == seq)).scalar_one()))
    return out


def delete_runs(conn: Connection, autotune_id: str) -> None:
    conn.execute(state_table.delete().where(state_table.c.autotune_id == autotune_id))
    conn.execute(batches_table.delete().where(batches_table.c.autotune_id == autotune_id))
