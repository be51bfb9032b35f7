"""Every table, registered on one MetaData (imported by Alembic and by tests)."""

from openautotune.store import (
    audit,
    autotunes,
    contextual,
    dashboard_sessions,
    ingest_tables,
    keys,
    rate_limits,
    reviews,
    server_secrets,
    spec_changes,
    updates,
)
from openautotune.store.metadata import metadata

__all__ = [
    "audit",
    "autotunes",
    "contextual",
    "dashboard_sessions",
    "ingest_tables",
    "keys",
    "metadata",
    "rate_limits",
    "reviews",
    "server_secrets",
    "spec_changes",
    "updates",
]
