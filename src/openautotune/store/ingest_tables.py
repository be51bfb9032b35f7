"""What SDKs send us: raw exposures, analysable units, and events (sdk-protocol.md, engine.md).

- `exposures` keeps every exposure as logged (for the log stream and diagnostics).
- `units` holds one row per (autotune, run, unit): the variant and time of the unit's FIRST
  analysable exposure, its allocation version, whether it came through a contextual autotune's
  explore slice (`explore`), the user object as sent (`features`) and, for server-side
  exposures, the exact propensity. The engine reads only this table to count exposed units.
- `events` holds one row per (event, id the user carried), so the engine can join events to units
  by the autotune's id type and by time.
Both raw tables carry a content hash (`dedup_key`, unique) so a re-sent batch inserts nothing twice.
With an event store set (ClickHouse, docs/scale.md) all three live there instead and these stay empty.
"""

from __future__ import annotations

import sqlalchemy as sa

from openautotune.store.metadata import EpochMs, metadata

_BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")

exposures_table = sa.Table(
    "exposures",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("autotune_id", sa.String(200), nullable=False),
    sa.Column("run", sa.Integer, nullable=True),
    sa.Column("unit_id", sa.String(256), nullable=False),
    sa.Column("rule_id", sa.String(128), nullable=False),
    sa.Column("variant_id", sa.String(64), nullable=True),
    sa.Column("explore", sa.Boolean, nullable=False, default=False),
    sa.Column("config_version", sa.Integer, nullable=True),
    sa.Column("time_ms", EpochMs, nullable=False),
    sa.Column("received_ms", EpochMs, nullable=False),
    sa.Column("user", sa.JSON, nullable=True),
    sa.Column("propensity", sa.Float, nullable=True),
    sa.Column("analysable", sa.Boolean, nullable=False),
    sa.Column("reason", sa.String(64), nullable=False, default=""),
    sa.Column("dedup_key", sa.String(64), nullable=False, unique=True),
    sa.Index("ix_exposures_autotune_time", "autotune_id", "time_ms"),
)

units_table = sa.Table(
    "units",
    metadata,
    sa.Column("autotune_id", sa.String(200), primary_key=True),
    sa.Column("run", sa.Integer, primary_key=True),
    sa.Column("unit_id", sa.String(256), primary_key=True),
    sa.Column("variant_id", sa.String(64), nullable=False),
    sa.Column("first_exposure_ms", EpochMs, nullable=False),
    sa.Column("allocation_version", sa.Integer, nullable=True),
    sa.Column("explore", sa.Boolean, nullable=False, default=False),
    sa.Column("features", sa.JSON, nullable=True),
    sa.Column("propensity", sa.Float, nullable=True),
    # A unit of the holdout (rule `<variant>:holdout`, engine.md "Holdout"): kept out of the bandit's
    # aggregates and compared with them. The server default keeps older writers valid.
    sa.Column("holdout", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    # Covering index for the engine's "units matured since the last update" scan (holdout included,
    # since every scan filters on it).
    sa.Index(
        "ix_units_maturity",
        "autotune_id",
        "run",
        "first_exposure_ms",
        "variant_id",
        "allocation_version",
        "unit_id",
        "holdout",
    ),
)

events_table = sa.Table(
    "events",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("id_type", sa.String(64), nullable=False),
    sa.Column("unit_id", sa.String(256), nullable=False),
    sa.Column("event_name", sa.String(256), nullable=False),
    sa.Column("value", sa.Text, nullable=True),
    sa.Column("metadata", sa.JSON, nullable=True),
    sa.Column("time_ms", EpochMs, nullable=False),
    sa.Column("received_ms", EpochMs, nullable=False),
    sa.Column("dedup_key", sa.String(64), nullable=False, unique=True),
    # Attribution joins converted units to their events by (name, id type, unit id, time).
    sa.Index("ix_events_attribution", "event_name", "id_type", "unit_id", "time_ms"),
)
