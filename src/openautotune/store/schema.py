"""Every table, registered on one MetaData (imported by Alembic and by tests)."""

from openautotune.store import (
    audit,
    autotunes,
    contextual,
    dashboard_sessions,
    health,
    ingest_tables,
    keys,
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
    "health",
    "ingest_tables",
    "keys",
    "metadata",
    "server_secrets",
    "spec_changes",
    "updates",
]
