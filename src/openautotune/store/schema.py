"""Every table, registered on one MetaData (imported by Alembic and by tests)."""

from openautotune.store import (
    audit,
    autotunes,
    batch_log_table,
    contextual,
    contextual_runs,
    dashboard_sessions,
    health,
    ingest_tables,
    keys,
    metric_sources,
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
    "batch_log_table",
    "contextual",
    "contextual_runs",
    "dashboard_sessions",
    "health",
    "ingest_tables",
    "keys",
    "metadata",
    "metric_sources",
    "rate_limits",
    "reviews",
    "server_secrets",
    "spec_changes",
    "updates",
]
